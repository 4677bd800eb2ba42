"""Launch settings of the ABR student's fused step (issue #27: the batch-1 decision against the 7B shape).

    python experiments/fused_step_sweep.py --out $OUT/sweep.json [--batches 1,16,256]

Times :class:`agents.hybrid.kernels.FusedStep` (no torch.compile: the kernels alone, the token embedding and
head in PyTorch) under a CUDA graph for every reduction block × output block × warps, at each batch, as
``evaluation.bench`` times a decision (inputs staged off the clock, a sync after each replay; median of
``--iters``). Also the floor of that timing: a graph of one tiny kernel and a graph of as many tiny kernels
as the step launches, replayed and synced the same way. Random weights of the shipped student's shape, bf16.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _median_ms(fn, iters: int) -> float:
    """``fn`` captured in a CUDA graph, timed replay by replay as ``evaluation.bench`` times a decision."""
    from evaluation.timing import _graph, _summary, _time

    cuda = torch.device("cuda")
    replay, _ = _graph(fn, cuda)
    return _summary(_time(lambda i: replay(), cuda, iters=iters, warmup=5), 1)["latency_ms_median"]


def main(argv=None) -> None:
    from agents.hybrid.kernels import STEP_LARGE, FusedStep
    from agents.student import ABRStudent, StudentConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--batches", default="1,16,256")
    ap.add_argument("--iters", type=int, default=200)
    args = ap.parse_args(argv)
    shipped = json.loads((Path(__file__).resolve().parents[1] / "agents/pretrained/student_abr/config.json").read_text())
    cfg = StudentConfig(**shipped["config"])
    torch.manual_seed(0)
    model = ABRStudent(cfg).to("cuda", torch.bfloat16).eval()
    rows = []
    with torch.no_grad():
        tiny = torch.zeros(1, device="cuda")
        floor = {"one_kernel_ms": _median_ms(lambda: tiny.add_(1), args.iters)}
        n_kernels = 2 * len(model.backbone.mixers)
        floor[f"{n_kernels}_kernels_ms"] = _median_ms(lambda: [tiny.add_(1) for _ in range(n_kernels)],
                                                      args.iters)
        for batch in [int(b) for b in args.batches.split(",")]:
            inp = (torch.zeros(batch, device="cuda", dtype=torch.bfloat16),
                   torch.rand(batch, 6, cfg.history, device="cuda", dtype=torch.bfloat16),
                   torch.zeros(batch, dtype=torch.long, device="cuda"), torch.zeros(batch, dtype=torch.long, device="cuda"),
                   torch.ones(batch, device="cuda", dtype=torch.bfloat16))
            for bk, bo, warps in itertools.product((32, 64, 128, 256), (8, 16, 32, 64), (1, 2, 4, 8)):
                row = {"batch": batch, "block_k": bk, "block_out": bo, "warps": warps}
                try:
                    fused = FusedStep(model, batch, block_k=bk, block_out=bo, num_warps=warps, io="torch")
                    row["step_ms"] = _median_ms(lambda: fused.step(*inp), args.iters)
                    x = model.tokens(*inp[:4]).contiguous()
                    keep = inp[4]
                    row["layers_ms"] = _median_ms(lambda: fused._layers(x, keep), args.iters)
                except Exception as err:  # noqa: BLE001 - a setting that does not compile is a row, not a stop
                    row["failed"] = f"{type(err).__name__}: {str(err)[:160]}"
                rows.append(row)
                print(json.dumps(row), flush=True)
    best = {}
    for b in sorted({r["batch"] for r in rows}):
        ok = [r for r in rows if r["batch"] == b and "step_ms" in r]
        best[b] = min(ok, key=lambda r: r["step_ms"])
        default = next(r for r in ok if (r["block_k"], r["block_out"], r["warps"]) == STEP_LARGE)
        print(f"batch {b}: best {best[b]} | {STEP_LARGE} {default['step_ms']:.4f} ms")
    out = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "floor": floor, "best": best,
           "rows": rows}
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(floor))


if __name__ == "__main__":
    main()
