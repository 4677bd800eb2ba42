"""CJS evaluation: a scheduler over workloads; JCT from the simulator's state.

Seeds have one role each. **Test**: the ten workloads of the reference run of spark_sched_sim
(``$MAMBA4NET_DATA/cjs/reference/workloads_seed{1..10}.csv``, replayed job for job; Decima's 54.08 s
there is the anchor). **Validation**: generated 200-job workloads of seeds 2000–2019, for every choice
of model, checkpoint or rule. **Training**: every other generated seed (by convention from 10000).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.cjs import CJSConfig, CJSEnv

VALIDATION_SEEDS = tuple(range(2000, 2020))  # generated workloads that pick models and rules
TRAINING_SEEDS_FROM = 10_000  # training workloads: generated seeds from here on


def reference_workloads(folder: str | None = None) -> dict[int, list]:
    """The test workloads: the reference run's job sequences (``folder`` or ``$MAMBA4NET_DATA/cjs/reference``)."""
    from traces.tpch import load_workloads

    if folder is None:
        from traces.datasets import resolve

        folder = resolve("cjs-reference").path  # $MAMBA4NET_DATA/cjs/reference (or the cache); says how if missing
    return load_workloads(folder)


@dataclass
class CJSRun:
    agent: str
    seeds: list[int]
    jct_s: list[np.ndarray]  # per seed, per completed job
    makespan_s: list[float]
    decisions: list[int]

    def summary(self) -> dict[str, float]:
        per_seed = np.asarray([j.mean() for j in self.jct_s])
        allj = np.concatenate(self.jct_s)
        return {"seeds": len(self.seeds), "mean_jct_s": float(per_seed.mean()),
                "mean_jct_std_s": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else 0.0,
                "median_jct_s": float(np.median(allj)), "p90_jct_s": float(np.percentile(allj, 90)),
                "makespan_s": float(np.mean(self.makespan_s)), "decisions": float(np.mean(self.decisions))}


def evaluate_cjs(policy, seeds=VALIDATION_SEEDS, config: CJSConfig = CJSConfig(), env: CJSEnv | None = None,
                 progress=None, on_done=None, workloads: dict | None = None) -> CJSRun:
    """``policy`` on each seed's workload (generated from the seed, or ``workloads[seed]``, a recorded job
    sequence); ``progress(n)`` counts finished workloads, ``on_done(seed, jct_s, makespan_s, decisions)``
    hands over each one as it finishes."""
    if hasattr(policy, "act_list") and env is None:  # a batched scheduler: every seed side by side
        from .rollout import batched_rollout

        policy.reset(seed=int(seeds[0]))
        done = None if on_done is None else \
            (lambda i, t: on_done(int(seeds[i]), t["jct_s"], t["makespan_s"], t["decisions"]))
        trajs = batched_rollout([CJSEnv(config) for _ in seeds], seeds, policy, record=False, on_done=done,
                                workloads=None if workloads is None else [workloads[s] for s in seeds])
        if progress is not None:
            progress(len(seeds))
        return CJSRun(getattr(policy, "name", type(policy).__name__), list(seeds), [t["jct_s"] for t in trajs],
                      [t["makespan_s"] for t in trajs], [t["decisions"] for t in trajs])
    env = env or CJSEnv(config)
    jcts, spans, decisions = [], [], []
    for seed in seeds:
        policy.reset(seed=seed)
        obs, info = env.reset(seed=int(seed), options=None if workloads is None else {"workload": workloads[seed]})
        term, n = False, 0
        while not term:
            obs, _, term, _, info = env.step(policy.act(obs, info))
            n += 1
        jcts.append(env.sim.jct_s())
        spans.append(env.sim.makespan_s())
        decisions.append(n)
        if on_done is not None:
            on_done(int(seed), jcts[-1], spans[-1], n)
        if progress is not None:
            progress(1)
    return CJSRun(getattr(policy, "name", type(policy).__name__), list(seeds), jcts, spans, decisions)
