"""Batched CJS rollouts: several workloads scheduled side by side, one batched decision per round.

:func:`batched_rollout` is the engine behind CJS evaluation of batched schedulers, DAgger labelling and
pool recording; :func:`mean_jct` scores a model on validation workloads with it.
"""

from __future__ import annotations

import numpy as np

from envs.cjs import CJSConfig, CJSEnv

DECISIONS_PER_JOB_CAP = 600  # ~4× what wfair needs per job (~130): past it, an episode is cut


def make_envs(jobs: int, n: int) -> list[CJSEnv]:
    """``n`` fresh environments of ``jobs`` jobs each."""
    return [CJSEnv(CJSConfig(num_jobs=jobs)) for _ in range(n)]


def jct_so_far(sim) -> np.ndarray:
    """Per-job JCT of an episode cut short: the finished jobs', and the running ones' time so far."""
    running = [(sim.now - sim.jobs[j].arrival_ms) / 1000.0 for j in sim.active]
    return np.concatenate([sim.jct_s(), running])


def batched_rollout(envs, seeds, policy, expert=None, follow: float = 0.0, record: bool = True,
                    max_decisions: int | None = None, on_done=None, workloads: list | None = None) -> list[dict]:
    """Run one episode per env side by side: each round, every unfinished env asks ``policy`` (one
    batched :meth:`ModelScheduler.act_list` call when it has one) and steps. With ``expert``, the
    recorded action is the expert's label of each state and the executed one is the expert's with
    probability ``follow``, else the policy's (DAgger; the coin is seeded by the workload seed). A
    policy or expert with ``act_envs(envs)`` reads the environments themselves (the lookahead expert).
    Returns per env: trimmed observations, actions (slot remapped to the trimmed layout, limit − 1),
    rewards, decision times, mean JCT, per-job JCT, makespan and the number of decisions. An episode
    past ``max_decisions`` is cut (``truncated``; its mean JCT then counts the jobs still running up to
    now — a lower bound): a poor scheduler can otherwise take hours of simulated time. ``on_done(i,
    result)`` is called as each env's episode ends (e.g. to save a long run's finished workloads).
    ``workloads``: a recorded job sequence per env instead of the one its seed generates."""
    from agents.cjs_gnn import trim  # numpy only, in the module of the models that read its output

    def ask(pol, active):
        if hasattr(pol, "act_envs"):  # an expert that reads the simulators themselves
            return pol.act_envs([envs[i] for i in active])
        obs_list, infos = [obs[i] for i in active], [info[i] for i in active]
        if hasattr(pol, "act_list"):
            return pol.act_list(obs_list, infos)
        return [pol.act(o, i) for o, i in zip(obs_list, infos)]

    wls = [None] * len(envs) if workloads is None else workloads
    obs, info = zip(*[e.reset(seed=int(s), options=None if w is None else {"workload": w})
                      for e, s, w in zip(envs, seeds, wls)])
    obs, info = list(obs), list(info)
    coins = [np.random.default_rng(int(s)) for s in seeds]
    out = [{"obs": [], "acts": [], "rewards": [], "times": []} for _ in envs]
    active = list(range(len(envs)))
    while active:
        acts = ask(policy, active)
        labels = acts if expert is None else ask(expert, active)
        for i, a, label in zip(active, acts, labels):
            if expert is not None and coins[i].random() < follow:
                a = label
            t = out[i]
            if record:
                small, slot = trim(obs[i], np.asarray([label[0]]))
                t["obs"].append(small)
                t["acts"].append([int(slot[0]), int(label[1])])
            t["times"].append(envs[i].sim.now)
            obs[i], r, term, _, info[i] = envs[i].step(a)
            t["rewards"].append(r)
            if term:
                t.update(mean_jct_s=float(info[i]["mean_jct_s"]), jct_s=envs[i].sim.jct_s(),
                         makespan_s=envs[i].sim.makespan_s(), decisions=len(t["rewards"]), truncated=False)
            elif max_decisions is not None and len(t["rewards"]) >= max_decisions:
                sim = envs[i].sim
                jct = jct_so_far(sim)
                t.update(mean_jct_s=float(jct.mean()), jct_s=jct, makespan_s=sim.makespan_s(),
                         decisions=len(t["rewards"]), truncated=True)
            if on_done is not None and "mean_jct_s" in t:
                on_done(i, t)
        active = [i for i in active if "mean_jct_s" not in out[i]]
    for t in out:
        t["acts"] = np.asarray(t["acts"], dtype=np.int64).reshape(-1, 2)
        t["rewards"], t["times"] = np.asarray(t["rewards"]), np.asarray(t["times"])
    return out

def mean_jct(model, envs, seeds, device="cpu", forward=None, log=None, cap_per_job: int = DECISIONS_PER_JOB_CAP) -> float:
    """Mean JCT of ``model`` (greedy) over ``seeds``, one env per seed, side by side; ``inf`` when
    an episode needs over ``cap_per_job`` decisions per job: such a model is not kept."""
    from agents.cjs_gnn import ModelScheduler

    pol = ModelScheduler(model=model, greedy=True, device=device, forward=forward)
    cap = cap_per_job * envs[0].config.num_jobs
    trajs = batched_rollout(envs, seeds, pol, record=False, max_decisions=cap)
    value = float(np.mean([t["mean_jct_s"] for t in trajs]))
    if any(t["truncated"] for t in trajs):
        if log is not None:
            log(f"validation cut after {cap} decisions (mean JCT so far ≥ {value:.1f} s)")
        return float("inf")
    return value
