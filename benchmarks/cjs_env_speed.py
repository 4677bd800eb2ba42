"""CJS env steps (scheduling decisions) per second with FIFO and Fair, against spark-sched-sim's ~750.

    MAMBA4NET_DATA=../shared/data python benchmarks/cjs_env_speed.py --out results/bench_cjs_env.json

Full episodes of the standard workload (200 TPC-H jobs, 50 executors), policy time included, as an
agent would see it. The reference point (about 750 steps/s for spark-sched-sim on this machine class)
comes from the issue; spark-sched-sim is not installable here to rerun it beside ours.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.cjs import FIFO, Fair  # noqa: E402
from envs.cjs import CJSConfig, CJSEnv  # noqa: E402
from traces.atomic import write_text_atomic  # noqa: E402

REFERENCE_STEPS_PER_S = 750.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--out", default="results/bench_cjs_env.json")
    args = parser.parse_args()
    env = CJSEnv(CJSConfig(num_jobs=args.jobs))
    results = {}
    for policy in (FIFO(), Fair()):
        steps, seconds = 0, 0.0
        for seed in range(args.seeds):
            obs, info = env.reset(seed=seed)
            term = False
            t0 = time.perf_counter()
            while not term:
                obs, _, term, _, info = env.step(policy.act(obs, info))
                steps += 1
            seconds += time.perf_counter() - t0
        results[policy.name] = {"steps_per_s": steps / seconds, "steps": steps, "seconds": seconds,
                                "x_reference": steps / seconds / REFERENCE_STEPS_PER_S}
        print(f"{policy.name:>5}: {steps / seconds:8,.0f} steps/s over {steps} steps "
              f"({steps / seconds / REFERENCE_STEPS_PER_S:.1f}x the 750 steps/s reference)")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = {"unit": "scheduling decisions (env steps) per second", "results": results,
           "reference_steps_per_s": REFERENCE_STEPS_PER_S, "jobs": args.jobs, "seeds": args.seeds,
           "machine": {"cpu": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version()},
           "commit": commit, "date": time.strftime("%Y-%m-%d")}
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
