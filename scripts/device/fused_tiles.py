"""Launch settings of the fused one-shot backbone (``agents.student_kernels.FusedSequence``) on the GPU: one
CJS decision (24 jobs) and one VP prediction of the default students (random weights, bf16, CUDA graphs,
median of 48 calls, as ``evaluation.bench``) at each batch, for each setting — the projections' tile
(rows × outputs) and warps, the Mamba/attention kernels' warps, the Mamba heads per program and the
activations' dtype between kernels. Session 12 ran it twice (the first settings list is in git history).
Every result is saved as it lands.

    python3 scripts/device/fused_tiles.py OUT.json [BATCHES, default 1,16,256] [cjs,vp]
"""
import json
import sys
import time
from pathlib import Path

import torch

from agents.cjs_llm import CJSStudent, CJSStudentConfig
from agents.vp_llm import VPStudent, VPStudentConfig
from evaluation.bench import bench_forward, cjs_inputs
from traces.atomic import write_text_atomic

out = Path(sys.argv[1])
batches = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "1,16,256").split(",")]
tasks = (sys.argv[3] if len(sys.argv) > 3 else "cjs,vp").split(",")
dev, dt = torch.device("cuda"), torch.bfloat16
bf16 = {"activations": torch.bfloat16}
big = dict(block_rows=64, block_out=128, linear_warps=4)
SETTINGS = {  # name -> FusedSequence arguments; "default" = what the class picks on its own
    "default": {},
    "bf16": bf16,
    "bf16-h2": dict(heads_per_program=2, **bf16),
    "bf16-h4": dict(heads_per_program=4, **bf16),
    "bf16-h8": dict(heads_per_program=8, **bf16),
    "bf16-h8-seq8": dict(heads_per_program=8, seq_warps=8, **bf16),
    "64x128w4-bf16": dict(**big, **bf16),
    "64x128w4-bf16-h2": dict(heads_per_program=2, **big, **bf16),
    "64x128w4-bf16-h4": dict(heads_per_program=4, **big, **bf16),
    "64x128w4-bf16-h8": dict(heads_per_program=8, **big, **bf16),
    "64x64w4-bf16-h4": dict(block_rows=64, block_out=64, linear_warps=4, heads_per_program=4, **bf16),
    "128x128w4-bf16-h4": dict(block_rows=128, block_out=128, linear_warps=4, heads_per_program=4, **bf16),
}
res = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "runs": {}}
t0 = time.perf_counter()
for task in tasks:
    torch.manual_seed(0)
    if task == "cjs":
        model = CJSStudent(CJSStudentConfig()).to(dev, dt).eval()

        def inputs(b):
            return cjs_inputs(b, 24, dev, dt)
    else:
        model = VPStudent(VPStudentConfig()).to(dev, dt).eval()

        def inputs(b):
            return torch.randn(b, model.cfg.history, 3, device=dev, dtype=dt) * 30
    for b in batches:
        inp = inputs(b)
        for name, kw in SETTINGS.items():
            key = f"{task}-b{b}-{name}"
            try:
                model.fuse(**kw)
                res["runs"][key] = bench_forward(model, inp, b, dev, True, False)
            except Exception as err:  # noqa: BLE001 - a failed setting is a reported row
                res["runs"][key] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
            res["runs"][key]["seconds_since_start"] = time.perf_counter() - t0
            write_text_atomic(out, json.dumps(res, indent=1, default=float))
            print(key, round(res["runs"][key].get("latency_ms_median", -1), 4), flush=True)
        model.fuse(False)
