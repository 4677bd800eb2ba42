"""Time and peak memory of the ABR offline optimum on trace sets of growing size.

    MAMBA4NET_DATA=../shared/data python benchmarks/offline_optimal_memory.py \\
        [--sets fcc-test,PATH/oboe,synthetic:2000] [--memory-gb 1] [--workers 1] --out results/bench_optimum.json

Each set is solved in a fresh subprocess (so its peak resident memory is its own, read from
``getrusage``): every trace from its start row, the default grid (Δ = 0.05 s), blocks sized from
``--memory-gb``. ``synthetic:N`` is N Markov traces from :func:`traces.synthetic_trace_set` (seed 0).
Targets (issue #28): peak under 2 GB for any number of traces; time per trace no worse than ≈ 0.9 s.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = """
import json, resource, sys, time
import numpy as np
from agents.offline import solve_offline_optimal
from traces import load_abr_traces, load_abr_video, synthetic_trace_set
name, memory, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
traces = (synthetic_trace_set(np.random.default_rng(0), count=int(name.split(":")[1])) if name.startswith("synthetic:")
          else load_abr_traces(name))
video = load_abr_video("video1")
t0 = time.perf_counter()
_, values = solve_offline_optimal(traces, video, np.arange(len(traces)), traces.start_index, memory_bytes=memory,
                                  workers=workers)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"traces": len(traces), "seconds": seconds, "seconds_per_trace": seconds / len(traces),
                  "peak_rss_bytes": peak, "peak_rss_worker_bytes": children,
                  "mean_return": float(values.mean())}))
"""


def main() -> None:
    from traces.atomic import write_text_atomic

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="fcc-test,synthetic:2000", help="dataset names, folders or synthetic:N")
    parser.add_argument("--memory-gb", type=float, default=1.0, help="the solver's memory budget per process")
    parser.add_argument("--workers", type=int, default=1, help="processes over blocks")
    parser.add_argument("--out", default="results/bench_optimum.json")
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "memory_gb": args.memory_gb, "workers": args.workers, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "sets": {}}
    for name in args.sets.split(","):
        proc = subprocess.run([sys.executable, "-c", CHILD, name, str(int(args.memory_gb * 2**30)), str(args.workers)],
                              cwd=ROOT, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"{name}: the solver failed:\n{proc.stderr[-2000:]}")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        result["sets"][name] = row
        print(f"{name}: {row['traces']} traces, {row['seconds']:.1f} s ({row['seconds_per_trace']:.3f} s/trace), "
              f"peak {row['peak_rss_bytes'] / 2**30:.2f} GiB", flush=True)
        write_text_atomic(out, json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
