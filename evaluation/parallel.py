"""Scale-out over Ray: shard ABR traces or CJS seeds over Ray tasks, same results as one process.

    python -m evaluation.compare --env abr --ray            # a local Ray cluster on this machine
    python -m evaluation.compare --env abr --ray auto       # the cluster this node belongs to
    python -m evaluation.compare --env cjs --ray ray://head:10001 --workers 64
    python -m distill.abr pool --policy robustmpc,bba --ray     # pools too

Each task builds its own agent (by name) and evaluates a contiguous shard; the driver concatenates
the shards in trace (or seed) order. Every trace / seed is evaluated exactly as in the single-process
run (per-session arithmetic does not depend on which sessions share a batch), so tables are
identical — tested. On a multi-node cluster start Ray on each node (``ray start --head`` on one,
``ray start --address HEAD:6379`` on the others, each with this package and the data installed and
``MAMBA4NET_DATA`` set) and pass ``--ray auto`` from any node, or ``--ray ray://HEAD:10001`` from
outside.
"""

from __future__ import annotations

import os

import numpy as np


def init_ray(address: str | None, workers: int | None = None):
    """Connect to ``address`` (``auto`` / ``ray://...``) or start a local cluster of ``workers`` CPUs."""
    import ray

    if not ray.is_initialized():
        env = {"env_vars": {k: os.environ[k] for k in ("MAMBA4NET_DATA", "MAMBA4NET_CACHE", "HF_HUB_OFFLINE")
                            if k in os.environ}}
        if address:
            ray.init(address=address, runtime_env=env, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, runtime_env=env)
    return ray


def _shards(n: int, k: int) -> list[np.ndarray]:
    return [p for p in np.array_split(np.arange(n), max(1, min(k, n))) if len(p)]


def _abr_task(name, traces, video, start_index, keep_obs, history):
    from agents import make_agent
    from evaluation.abr import evaluate_abr

    return evaluate_abr(make_agent("abr", name, video=video, traces=traces), traces, video, history=history, start_index=start_index,
                        keep_obs=keep_obs)


def evaluate_abr_ray(name: str, traces, video, address: str | None = None, workers: int | None = None,
                     start_index=None, keep_obs: bool = False, history: int = 6):
    """:func:`evaluation.abr.evaluate_abr` of the agent called ``name``, traces sharded over Ray tasks."""
    from evaluation.abr import ABRRun

    ray = init_ray(address, workers)
    n_tasks = workers or int(ray.cluster_resources().get("CPU", 1))
    starts = traces.start_index if start_index is None else np.asarray(start_index, dtype=np.int64)
    task = ray.remote(_abr_task)
    refs = [task.remote(name, traces.subset(p), video, starts[p], keep_obs, history) for p in _shards(len(traces), n_tasks)]
    runs = ray.get(refs)
    records = {k: np.concatenate([r.records[k] for r in runs]) for k in runs[0].records}
    return ABRRun(runs[0].agent, traces.names, records, {**runs[0].meta, "traces": traces.name, "ray_tasks": len(refs)})


def _cjs_task(name, seeds, config, workloads):
    from agents import make_agent
    from evaluation.cjs import evaluate_cjs

    return evaluate_cjs(make_agent("cjs", name), seeds, config, workloads=workloads)


def evaluate_cjs_ray(name: str, seeds, config, address: str | None = None, workers: int | None = None,
                     workloads: dict | None = None):
    """:func:`evaluation.cjs.evaluate_cjs` with the workload seeds sharded over Ray tasks."""
    from evaluation.cjs import CJSRun

    ray = init_ray(address, workers)
    seeds = list(seeds)
    n_tasks = workers or int(ray.cluster_resources().get("CPU", 1))
    task = ray.remote(_cjs_task)
    runs = ray.get([task.remote(name, [seeds[i] for i in p], config,
                                None if workloads is None else {seeds[i]: workloads[seeds[i]] for i in p})
                    for p in _shards(len(seeds), n_tasks)])
    return CJSRun(runs[0].agent, seeds, [j for r in runs for j in r.jct_s], [m for r in runs for m in r.makespan_s],
                  [d for r in runs for d in r.decisions])
