"""Probe (issue #25): the rollout expert of :mod:`distill.cjs_lookahead` as a scheduler, against the GNN it
plans over, one workload per process (JSON lines, then the means and wins):

    MAMBA4NET_DATA=../shared/data PYTHONPATH=. python experiments/cjs_lookahead.py --seeds 2000-2001 --jobs 100 \\
        --workers 2 [--foresee false]

It is no scheduler to compare (with foresight it sees the workload's future; either way ~0.2 s a decision):
it measures how much better a policy exists near the GNN's (docs/experiments/cjs-schedulers.md).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from distill.cjs_imitation import Episodes
from distill.cjs_lookahead import Lookahead


def _probe_episode(task) -> dict:
    """One workload scheduled by the GNN and by the expert over it (same seed): mean JCTs and seconds."""
    seed, jobs, k, horizon_s, wait, foresee = task
    from agents import make_agent
    from envs.cjs import CJSConfig, CJSEnv

    torch.set_num_threads(1)
    gnn = make_agent("cjs", "gnn")
    out = {"seed": seed}
    for name in ("gnn", "lookahead"):
        env = CJSEnv(CJSConfig(num_jobs=jobs))
        obs, info = env.reset(seed=seed)
        expert = Lookahead(gnn, k, horizon_s, wait, foresee)
        t0, term, n = time.perf_counter(), False, 0
        while not term:
            a = gnn.act(obs, info) if name == "gnn" else expert.act(env, obs)
            obs, _, term, _, info = env.step(a)
            n += 1
        out[name] = float(env.sim.jct_s().mean())
        out[name + "_seconds"] = time.perf_counter() - t0
        out["decisions"], out["compared"] = n, expert.compared
    return out


def main(argv=None) -> None:
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="2000-2001")
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--horizon", type=float, default=60.0)
    ap.add_argument("--wait", default="base")
    ap.add_argument("--foresee", default="true", choices=("true", "false"))
    a = ap.parse_args(argv)
    first, last = (int(x) for x in a.seeds.split("-"))
    pool = Episodes(a.workers)
    tasks = [(s, a.jobs, a.k, a.horizon, a.wait, a.foresee == "true") for s in range(first, last + 1)]
    rows = pool.map(_probe_episode, tasks)
    pool.close()
    for r in rows:
        print(json.dumps(r))
    d = np.asarray([r["lookahead"] - r["gnn"] for r in rows])
    print(json.dumps({"gnn": float(np.mean([r["gnn"] for r in rows])),
                      "lookahead": float(np.mean([r["lookahead"] for r in rows])), "diff": float(d.mean()),
                      "wins": int((d < 0).sum()), "losses": int((d > 0).sum())}))


if __name__ == "__main__":
    main()
