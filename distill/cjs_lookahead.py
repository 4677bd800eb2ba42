"""A rollout expert over the CJS GNN, and DAgger of the GNN toward it (issue #25; the GNN that ships, 40fef29,
came from two runs of this with foresight on, on the project CPU: docs/RESULTS.md).

    python -m distill.cjs lookahead --init agents/pretrained/cjs_gnn --rounds 3 --episodes 16 --jobs 50 \\
        --workers 16 --out DIR
    PYTHONPATH=. python experiments/cjs_lookahead.py --seeds 2000-2001 --jobs 100   (the expert as a scheduler)

**Expert** (:class:`Lookahead`): one step of rollout policy improvement (Bertsekas) over a scheduler. At a
decision with two or more choices, the scheduler's ``k`` best stage choices (each at the scheduler's own limit
for that stage's job; "wait" only where the scheduler itself would wait) are played on copies of the simulator;
the scheduler (greedy) then runs ``horizon_s`` simulated seconds on each copy, and the choice with the least
job-time wins: job-seconds in the system until then, plus for the jobs still there their flow time if the
cluster served them shortest-remaining-work-first at full speed (Σ_i Σ_{k≤i} w_k / executors). The copies share
the duration stream at the decision (common random numbers) and see the workload's future arrivals: the expert
is *clairvoyant*, a labeller of training states, never a scheduler in a comparison (``foresee=False``: the
copies see no arrival within the horizon and draw durations from a stream of their own — a scheduler's view).

**DAgger** (:func:`train`): each round the GNN schedules ``episodes`` training workloads, one per CPU process,
following the expert's choice with probability ``beta^round``; the expert labels every state reached; the
labelled states join the data set and the GNN is refit (``epochs`` over all of it, on ``device``, with a KL
term to the starting GNN as a trust region). The weights kept are the best mean JCT on validation workloads
(seeds 2000… at ``val_jobs`` jobs, the start included).
"""

from __future__ import annotations

import copy
import heapq
import random
import time
from dataclasses import dataclass

import numpy as np
import torch

from agents.cjs_gnn import DecimaGNN, ModelScheduler, load_checkpoint, to_tensors, trim
from envs.cjs.core import ARRIVAL

from .cjs_imitation import DecisionSet, Episodes, _fit, keep_best, run_gnn_trainer


def clone_env(env):
    """A copy of a ``CJSEnv`` to play a choice on; it shares what the simulator only reads (job DAGs, duration
    tables, spaces, the adjacency cache) and the jobs that have completed."""
    sim = env.sim
    memo = {id(sim.templates): sim.templates, id(sim.config): sim.config, id(env._adj_cache): env._adj_cache,
            id(env.observation_space): env.observation_space, id(env.action_space): env.action_space}
    for job in sim.jobs:
        for part in (job.dag, job.draws, job.mean_ms, job.children):
            memo[id(part)] = part
    for j in sim.completed:
        memo[id(sim.jobs[j])] = sim.jobs[j]
    return copy.deepcopy(env, memo)


class Lookahead:
    """The expert over ``base`` (a greedy :class:`ModelScheduler`); :meth:`act` reads the environment itself."""

    name = "lookahead"

    def __init__(self, base: ModelScheduler, k: int = 3, horizon_s: float = 60.0, wait: str = "base",
                 foresee: bool = True):
        if k < 1 or horizon_s <= 0 or wait not in ("base", "any"):
            raise ValueError(f"Lookahead(k={k}, horizon_s={horizon_s}, wait={wait!r}): k ≥ 1, horizon_s > 0, "
                             "wait 'base' or 'any'")
        self.base, self.k, self.horizon_ms, self.wait = base, k, horizon_s * 1000.0, wait
        self.foresee = foresee  # False: the copies see no future arrival and draw durations from a fresh stream
        self._streams = 0
        self.compared = 0  # decisions where choices were played out

    @torch.no_grad()
    def candidates(self, obs) -> list[np.ndarray]:
        """The base scheduler's ``k`` best stage choices (env actions), best first, each at its argmax limit;
        with ``wait="base"`` "wait" is among them only as the base's first choice: a clairvoyant wait (for an
        arrival it foresees) is no label a scheduler can learn (it learned to wait everywhere and failed)."""
        J, S = np.asarray(obs["node_features"]).shape[:2]
        small, _ = trim(obs)
        K = small["job_features"].shape[0]
        o = to_tensors(small, self.base.device)
        logits, lim = self.base.model(o)
        logits = logits[0].float()
        valid = torch.nonzero(logits > -1e8)[:, 0]
        order = valid[torch.argsort(logits[valid], descending=True, stable=True)].tolist()
        if self.wait == "base" and order[0] != K * S:  # "wait" only where the base scheduler itself waits
            order = [sl for sl in order if sl != K * S]
        out = []
        for sl in order[: self.k]:
            if sl == K * S:
                out.append(np.asarray([J * S, 0]))
            else:
                ll = lim[0, sl // S].float().masked_fill(o["limit_mask"][0, sl // S] == 0, -1e9)
                out.append(np.asarray([sl, int(ll.argmax())]))
        return out

    @staticmethod
    def job_time_ms(env) -> float:
        """Job-ms so far plus the SRPT flow time of the jobs in the system."""
        sim = env.sim
        work = np.sort([sim.jobs[j].remaining_work_ms() for j in sim.active])
        return sim.area_ms + float(np.cumsum(work).sum()) / sim.config.num_executors

    def act(self, env, obs) -> np.ndarray:
        choices = self.candidates(obs)
        if len(choices) < 2:
            return choices[0]
        self.compared += 1
        end = env.sim.now + self.horizon_ms
        copies, seen, live = [], [], []
        self._streams += 1
        for a in choices:
            c = clone_env(env)
            if not self.foresee:  # a scheduler's view: no arrivals ahead, durations not the real draws
                # arrivals wait past the horizon (removing them would leave jobs that never come)
                c.sim.events = [(max(e[0], end + 1.0), *e[1:]) if e[2] == ARRIVAL else e for e in c.sim.events]
                heapq.heapify(c.sim.events)
                c.sim.prng = random.Random(self._streams)  # one stream for every choice (common random numbers)
            o, _, term, _, _ = c.step(a)
            copies.append(c), seen.append(o), live.append(not term)
        while True:  # the copies side by side: one batched forward of the base scheduler per round
            idx = [i for i in range(len(copies)) if live[i] and copies[i].sim.now < end]
            if not idx:
                break
            for i, a in zip(idx, self.base.act_list([seen[i] for i in idx])):
                seen[i], _, term, _, _ = copies[i].step(a)
                live[i] = not term
        return choices[int(np.argmin([self.job_time_ms(c) for c in copies]))]


@dataclass
class LookaheadDAgger:
    out: str = "runs/cjs_gnn_lookahead"  # checkpoint folder (the best on validation, written as it improves)
    init: str = "agents/pretrained/cjs_gnn"  # the GNN to start from (also the expert's base, re-read each round)
    rounds: int = 3
    episodes: int = 16  # workloads labelled a round (seeds 30000 + 10000·seed + 100·round + i), one per worker
    jobs: int = 50  # jobs per training workload
    beta: float = 0.5  # round r follows the expert with probability beta^r
    k: int = 3  # choices the expert plays out
    wait: str = "base"  # base: the expert waits only where the base scheduler does; any: "wait" is a choice too
    foresee: bool = False  # the expert's copies see future arrivals and the real durations (the runs in the notes did)
    horizon_s: float = 60.0  # simulated seconds of the base scheduler after each choice
    expert_base: str = "start"  # start: the expert rolls out the starting GNN every round; current: the refit one
    epochs: int = 2
    lr: float = 1e-4
    kl_beta: float = 0.5  # KL(start GNN ‖ model) at temperature 2 (distill.cjs_imitation._fit): a trust region
    batch: int = 256
    val_seeds: int = 8  # validation workloads (seeds 2000…)
    val_jobs: int = 200
    workers: int = 2
    time_budget_s: float = 0.0  # > 0: no round starts past this many seconds
    seed: int = 0  # torch's seed; also moves the training workloads (a fresh run sees other ones)
    threads: int = 0
    device: str = "cuda" if torch.cuda.is_available() else "cpu"


def _label_episode(task: tuple) -> dict:
    """One DAgger workload in a worker: the GNN (``state``) acts, following the expert's label with probability
    ``follow``; every state is kept trimmed with the expert's label. Returns observations, labels, mean JCT."""
    state, expert_state, cfg, jobs, seed, follow, k, horizon_s, wait, foresee = task
    from envs.cjs import CJSConfig, CJSEnv

    torch.set_num_threads(1)
    model, base = DecimaGNN(cfg), DecimaGNN(cfg)
    model.load_state_dict(state)
    base.load_state_dict(expert_state)
    policy = ModelScheduler(model=model.eval())
    expert = Lookahead(ModelScheduler(model=base.eval()), k, horizon_s, wait, foresee)
    env = CJSEnv(CJSConfig(num_jobs=jobs))
    obs, info = env.reset(seed=int(seed))
    coin = np.random.default_rng(int(seed))
    obs_kept, labels, term = [], [], False
    while not term:
        label = expert.act(env, obs)
        small, slot = trim(obs, np.asarray([label[0]]))
        obs_kept.append(small)
        labels.append([int(slot[0]), int(label[1])])
        a = label if coin.random() < follow else policy.act(obs, info)
        obs, _, term, _, info = env.step(a)
    return {"obs": obs_kept, "acts": np.asarray(labels, dtype=np.int64), "mean_jct_s": float(env.sim.jct_s().mean()),
            "compared": expert.compared}


def train(args: LookaheadDAgger, log=print, save_best=None) -> tuple[DecimaGNN, dict]:
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.expert_base not in ("start", "current"):
        raise SystemExit(f"--expert-base {args.expert_base!r}: use start or current")
    device = torch.device(args.device)
    model, _ = load_checkpoint(args.init)
    model.to(device)
    start_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    anchor = None
    if args.kl_beta > 0:
        anchor, _ = load_checkpoint(args.init)
        anchor.to(device).eval()
    val_seeds = [2000 + i for i in range(args.val_seeds)]
    pool = Episodes(args.workers)
    t0 = time.perf_counter()
    best = pool.mean_jct(model, args.val_jobs, val_seeds, log=log)
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    history = [{"stage": "init", "val_mean_jct_s": best}]
    log(f"start: validation mean JCT {best:.2f} s ({time.perf_counter() - t0:.0f} s)")
    data = DecisionSet(device)
    for rnd in range(1, args.rounds + 1):
        if args.time_budget_s and time.perf_counter() - t0 > args.time_budget_s:
            log(f"time budget spent after {rnd - 1} rounds")
            break
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        expert_state = start_state if args.expert_base == "start" else state
        follow = args.beta ** rnd
        first = 30_000 + 10_000 * args.seed + 100 * rnd  # this round's training workloads
        tasks = [(state, expert_state, model.cfg, args.jobs, first + i, follow, args.k, args.horizon_s, args.wait,
                  args.foresee) for i in range(args.episodes)]
        trajs = pool.map(_label_episode, tasks)
        for t in trajs:
            data.add(t["obs"], t["acts"])
        roll = float(np.mean([t["mean_jct_s"] for t in trajs]))
        log(f"round {rnd}: {sum(len(t['acts']) for t in trajs)} states labelled ({sum(t['compared'] for t in trajs)} "
            f"compared), rollouts JCT {roll:.2f} s (expert followed {follow:.2f}) ({time.perf_counter() - t0:.0f} s)")
        loss = _fit(model, opt, data, args.epochs, rnd, log, f"round {rnd}", batch=args.batch, teacher=anchor,
                    kl_beta=args.kl_beta)
        val = pool.mean_jct(model, args.val_jobs, val_seeds, log=log)
        history.append({"stage": "dagger", "round": rnd, "follow": follow, "rollout_mean_jct_s": roll, "loss": loss,
                        "decisions": len(data), "val_mean_jct_s": val, "seconds": time.perf_counter() - t0})
        log(f"round {rnd}: validation mean JCT {val:.2f} s ({time.perf_counter() - t0:.0f} s)")
        best, best_state = keep_best(model, val, best, best_state, history, save_best)
    pool.close()
    model.load_state_dict(best_state)
    return model.cpu().eval(), {"val_mean_jct_s": best, "history": history, "val_seeds": val_seeds,
                                "train_seconds": time.perf_counter() - t0}


def main(argv=None) -> None:
    run_gnn_trainer(LookaheadDAgger, train, argv, "python -m distill.cjs lookahead", __doc__)
