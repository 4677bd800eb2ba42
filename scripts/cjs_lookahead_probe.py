"""Probe (session 9, not part of the package): does a one-step lookahead over wfair beat wfair on the CJS
simulator?

At each decision where wfair has two or more candidate jobs, the simulator's mutable state is snapshotted
(clock, event heap, RNG, executors, unfinished jobs: 0.26 ms, against 470 ms for a ``deepcopy``); each of
wfair's first three candidates and "wait" is played, wfair rolls out ``--horizon-s`` simulated seconds,
and the option with the least job-time is taken (plus, as a terminal guess, the active jobs' remaining
work spread over the 50 executors, × 2). Clairvoyant: the rollout sees the future arrivals and task
durations (the same RNG stream), so this is an oracle expert for a pool, not a baseline.

    MAMBA4NET_DATA=../shared/data PYTHONPATH=. python scripts/cjs_lookahead_probe.py [--seeds 0,1] [--jobs 50]

Project CPU, 2026-11-28, 50-job workloads: seed 0 wfair 44.26 s, lookahead 41.58 s (234 s of compute);
seed 1 wfair 61.15 s, lookahead 61.54 s (568 s). Mixed, and too slow in pure Python to label a pool
(docs/RESULTS.md).
"""
import argparse
import copy
import time

import numpy as np

from envs.cjs import CJSConfig, CJSEnv

JOB_ARRAYS = ("unlaunched", "heading", "running", "done_tasks", "parents_left", "stage_done", "last_duration_ms")
EXEC_ARRAYS = ("exec_state", "exec_job", "exec_stage", "exec_free_since", "exec_fresh")


def snapshot(sim) -> dict:
    """The simulator's mutable state; jobs already completed never change again and are left out."""
    done = set(sim.completed)
    jobs = [(j, [getattr(j, a).copy() for a in JOB_ARRAYS], set(j.executors), j.limit, j.n_moving, j.n_idle,
             j.completion_ms) for j in sim.jobs if j.id not in done]
    return {"now": sim.now, "events": list(sim.events), "seq": copy.copy(sim.seq),
            "rng": copy.deepcopy(sim.rng.bit_generator.state), "exec": [getattr(sim, a).copy() for a in EXEC_ARRAYS],
            "active": list(sim.active), "completed": list(sim.completed), "jct": sim.jct_total_ms,
            "area": sim.area_ms, "log": len(sim.log), "jobs": jobs}


def restore(sim, s: dict) -> None:
    sim.now, sim.events, sim.seq = s["now"], list(s["events"]), copy.copy(s["seq"])
    sim.rng.bit_generator.state = s["rng"]
    for name, arr in zip(EXEC_ARRAYS, s["exec"]):
        getattr(sim, name)[:] = arr
    sim.active, sim.completed = list(s["active"]), list(s["completed"])
    sim.jct_total_ms, sim.area_ms = s["jct"], s["area"]
    del sim.log[s["log"]:]
    for job, arrays, executors, limit, moving, idle, completion in s["jobs"]:
        for name, arr in zip(JOB_ARRAYS, arrays):
            getattr(job, name)[:] = arr
        job.executors, job.limit, job.n_moving, job.n_idle, job.completion_ms = set(executors), limit, moving, idle, completion
        job.touch()


def wfair_candidates(sim, exponent: float = 0.5) -> list[tuple[int, int, int]]:
    """``agents.cjs.WeightedFair`` on the simulator's state: (job, stage, limit) for every job below its
    share with a schedulable stage, least remaining work first (its first entry is wfair's choice)."""
    E = sim.config.num_executors
    jobs = [sim.jobs[j] for j in sim.visible()]
    if not jobs:
        return []
    work = [j.remaining_work_ms() for j in jobs]
    w = np.maximum(np.asarray(work) / 1e6, 1e-3) ** exponent
    share = np.maximum(np.ceil(E * w / w.sum()), 1).astype(int)
    ranked = sorted((work[k], k) for k, job in enumerate(jobs)
                    if job.any_schedulable() and sim.can_grow(job)
                    and (len(job.executors) < share[k] or job.n_idle > 0))
    return [(jobs[k].id, int(np.flatnonzero(jobs[k].schedulable())[0]),
             min(max(int(share[k]), len(jobs[k].executors) + 1), E)) for _, k in ranked]


def play(sim, choice) -> None:
    if choice is None:
        sim.advance(wait=True)
    else:
        sim.apply(*choice)
        sim.advance()


def rollout_cost(sim, horizon_ms: float) -> float:
    end = sim.now + horizon_ms
    while not sim.done and sim.now < end:
        c = wfair_candidates(sim)
        play(sim, c[0] if c else None)
    left = sum(sim.jobs[j].remaining_work_ms() for j in sim.active)
    return sim.area_ms + 2.0 * left / sim.config.num_executors


def run(seed: int, jobs: int, lookahead: bool, horizon_ms: float, options: int = 3):
    env = CJSEnv(CJSConfig(num_jobs=jobs))
    env.reset(seed=seed)
    sim, n, t0 = env.sim, 0, time.time()
    while not sim.done:
        c = wfair_candidates(sim)
        choice = c[0] if c else None
        if lookahead and len(c) > 1:
            s = snapshot(sim)
            costs = []
            for option in c[:options] + [None]:
                restore(sim, s)
                play(sim, option)
                costs.append((rollout_cost(sim, horizon_ms), option is None, option))
            restore(sim, s)
            choice = min(costs, key=lambda x: (x[0], x[1]))[2]
        play(sim, choice)
        n += 1
    return float(sim.jct_s().mean()), n, time.time() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--jobs", type=int, default=50)
    p.add_argument("--horizon-s", type=float, default=60.0)
    args = p.parse_args()
    for seed in (int(s) for s in args.seeds.split(",")):
        for look in (False, True):
            jct, n, secs = run(seed, args.jobs, look, args.horizon_s * 1000.0)
            print(f"seed {seed} {'lookahead' if look else 'wfair'}: mean JCT {jct:.2f} s, {n} decisions, {secs:.0f} s",
                  flush=True)


if __name__ == "__main__":
    main()
