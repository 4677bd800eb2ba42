"""A clairvoyant lookahead expert over wfair (pools recorded with it: :mod:`distill.cjs_pool`).

At each decision where wfair (:class:`agents.cjs.WeightedFair`) has two or more candidate jobs, the
expert snapshots the simulator (:meth:`envs.cjs.core.SparkSim.snapshot`), plays each of wfair's first
``options`` candidates (job, its first schedulable stage, limit = its share) and "wait", lets wfair
schedule ``horizon_s`` simulated seconds on, and keeps the option with the least job-time: the time all
jobs spent in the system within the horizon, plus a terminal guess for the jobs still there — their
flow time if the cluster served them shortest remaining work first at full speed
(``Σ_i Σ_{k ≤ i} w_k / executors``, ``terminal="srpt"``) or twice their remaining work over the
executors (``"linear"``). One policy-improvement step over wfair (rollout, Bertsekas), truncated.

It is **clairvoyant**: a rollout sees the workload's future arrivals and task durations (the same RNG
stream), which no scheduler can. So it is an oracle that labels experience pools for learned schedulers
(as NetLLM's pools came from a stronger scheduler), never a baseline in a comparison table.

Cost: one 50-job workload is 4,000–9,000 decisions and 2–10 min of one CPU core (the rollouts dominate:
~60 ms per 60 s of simulated time). ``--no-wait`` compares wfair's candidate jobs only: a smaller gain
over wfair, but labels a learner can follow (its waits depend on the future).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cjs import WFAIR_EXPONENT, WeightedFair

@dataclass(frozen=True)
class LookaheadConfig:
    horizon_s: float = 60.0  # simulated seconds of wfair after each option
    options: int = 3  # wfair's first this many candidate jobs are tried, plus "wait"
    terminal: str = "srpt"  # srpt | linear: the guess of the job-time left after the horizon
    exponent: float = WFAIR_EXPONENT  # wfair's share exponent (agents.cjs.WeightedFair)
    wait: bool = True  # "wait" is an option too (off: only wfair's candidate jobs are compared)

    def __post_init__(self):
        if self.terminal not in ("srpt", "linear"):
            raise ValueError(f"LookaheadConfig.terminal={self.terminal!r}: use 'srpt' or 'linear'")
        if self.options < 1 or self.horizon_s <= 0:
            raise ValueError("LookaheadConfig: options ≥ 1 and horizon_s > 0")


def wfair_candidates(sim, rule: WeightedFair) -> list[tuple[int, int, int]]:
    """wfair's candidates on the simulator's state, in the order it serves them: (job id, first
    schedulable stage, limit). Its first entry is what :class:`WeightedFair` picks from the observation."""
    E = sim.config.num_executors
    jobs = [sim.jobs[j] for j in sim.visible()]
    if not jobs:
        return []
    work = np.fromiter((j.remaining_work_ms() / 1e6 for j in jobs), float, len(jobs))
    executors = np.fromiter((len(j.executors) for j in jobs), np.int64, len(jobs))
    idle = np.fromiter((j.n_idle for j in jobs), np.int64, len(jobs))
    eligible = np.fromiter((j.any_schedulable() and sim.can_grow(j) for j in jobs), bool, len(jobs))
    ranked, share = rule.ranking(work, executors, idle, eligible, E)
    return [(jobs[k].id, int(np.flatnonzero(jobs[k].schedulable())[0]), min(max(int(share[k]), int(executors[k]) + 1), E))
            for k in ranked]


def _play(sim, choice) -> None:
    if choice is None:
        sim.advance(wait=True)
    else:
        sim.apply(*choice)
        sim.advance()


class Lookahead:
    """The expert; :meth:`choose` works on a :class:`~envs.cjs.core.SparkSim` and leaves it as it found
    it, :meth:`act_env` returns the equivalent ``CJSEnv`` action."""

    name = "lookahead"

    def __init__(self, config: LookaheadConfig = LookaheadConfig()):
        self.config = config
        self.rule = WeightedFair(exponent=config.exponent)

    def _cost(self, sim) -> float:
        end = sim.now + self.config.horizon_s * 1000.0
        while not sim.done and sim.now < end:
            c = wfair_candidates(sim, self.rule)
            _play(sim, c[0] if c else None)
        work = np.sort([sim.jobs[j].remaining_work_ms() for j in sim.active])
        E = sim.config.num_executors
        if self.config.terminal == "srpt":
            return sim.area_ms + float(np.cumsum(work).sum()) / E
        return sim.area_ms + 2.0 * float(work.sum()) / E

    def choose(self, sim):
        """(job id, stage, limit), or ``None`` to wait."""
        c = wfair_candidates(sim, self.rule)
        if len(c) < 2:
            return c[0] if c else None
        snap = sim.snapshot()
        best = None
        waits = [None] if self.config.wait and sim.events else []  # waiting needs a future event
        for option in c[: self.config.options] + waits:
            _play(sim, option)
            key = (self._cost(sim), option is None)  # ties: act rather than wait
            if best is None or key < best[0]:
                best = (key, option)
            sim.restore(snap)
        return best[1]

    def act_envs(self, envs) -> list[np.ndarray]:
        """For :func:`evaluation.rollout.batched_rollout`: label (or act in) several environments."""
        return [self.act_env(e) for e in envs]

    def act_env(self, env) -> np.ndarray:
        choice = self.choose(env.sim)
        if choice is None:
            return np.asarray([env.J * env.S, 0])
        job, stage, limit = choice
        return np.asarray([env.sim.visible().index(job) * env.S + stage, limit - 1])
