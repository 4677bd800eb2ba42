"""Score CJS GNN checkpoints on validation workloads side by side, one 200-job episode per CPU process:
``python experiments/cjs_gnn_score.py --seeds 2008-2019 --workers 16 DIR [DIR ...] > scores.json``
(per checkpoint: per-seed mean JCT and the mean; the GNN runs greedy, as it is evaluated)."""

from __future__ import annotations

import argparse
import json

import numpy as np

from agents.cjs_gnn import load_checkpoint
from distill.cjs_imitation import Episodes
from evaluation.rollout import DECISIONS_PER_JOB_CAP


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--seeds", default="2008-2019", help="first-last validation seeds")
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--workers", type=int, default=16)
    a = ap.parse_args()
    first, last = (int(x) for x in a.seeds.split("-"))
    seeds = list(range(first, last + 1))
    episodes = Episodes(a.workers)
    out = {}
    for folder in a.folders:
        model, _ = load_checkpoint(folder)
        trajs = episodes.run(model, a.jobs, seeds, None, DECISIONS_PER_JOB_CAP * a.jobs)
        per = [float(t["mean_jct_s"]) for t in trajs]
        out[folder] = {"seeds": seeds, "mean_jct_s": per, "mean": float(np.mean(per)),
                       "truncated": any(t["truncated"] for t in trajs)}
    episodes.close()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
