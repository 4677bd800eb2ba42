"""Where a CJS student decision spends its time on the GPU: the parts of one forward timed apart (random
weights, bf16, 24 jobs in the system, CUDA graphs, median of 48 calls, as ``evaluation.bench``) —
``tokens`` (the DAG encoder and the job/decide tokens), ``backbone`` (fused: ``FusedSequence``; or the
PyTorch one-chunk forward), ``heads`` (the pointer heads) and the whole decision — plain and compiled; then
a CUDA kernel table of the fused decision at the largest batch (``torch.profiler``, eager).

    python3 scripts/device/cjs_parts_bench.py OUT_DIR [BATCHES, default 1,16,256] [plain|compiled|both]
"""
import json
import sys
import time
from pathlib import Path

import torch

from agents.cjs_llm import CJSStudent, CJSStudentConfig
from agents.student_kernels import available
from evaluation.bench import bench_forward, cjs_inputs
from traces.atomic import write_text_atomic

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
batches = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "1,16,256").split(",")]
modes = {"both": ["plain", "compiled"]}.get(sys.argv[3] if len(sys.argv) > 3 else "both", [sys.argv[3:4][0]])
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # on a CPU: eager, float32 (a smoke test)
dt = torch.bfloat16 if dev.type == "cuda" else torch.float32
fusable = [False, True] if available(dev) else [False]
torch.manual_seed(0)
model = CJSStudent(CJSStudentConfig()).to(dev, dt).eval()
res = {"gpu": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu", "torch": torch.__version__, "runs": {}}
t0 = time.perf_counter()


def save():
    write_text_atomic(out / "parts.json", json.dumps(res, indent=1, default=float))


for b in batches:
    obs = cjs_inputs(b, 24, dev, dt)
    with torch.no_grad():
        x, h, y, n = model.task.tokens(obs)
        mid = model.backbone(x)
    parts = {"tokens": (lambda o: model.task.tokens(o), obs),
             "backbone": (lambda v: model.run_backbone(v), x),
             "heads": (lambda v: model.task.heads(v, h, y, n, obs), mid),
             "decision": (model, obs)}
    for fused in fusable:
        model.fuse(fused)
        for mode in modes:
            for name, (fn, inp) in parts.items():
                if name in ("tokens", "heads") and fused:
                    continue  # the same code either way
                key = f"b{b}-{name}" + ("-fused" if fused and name in ("backbone", "decision") else "") + f"-{mode}"
                try:
                    res["runs"][key] = bench_forward(fn, inp, b, dev, dev.type == "cuda", mode == "compiled")
                except Exception as err:  # noqa: BLE001 - a failed path is a reported row
                    res["runs"][key] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
                res["runs"][key]["seconds_since_start"] = time.perf_counter() - t0
                save()
                print(key, round(res["runs"][key].get("latency_ms_median", -1), 4), flush=True)
    model.fuse(False)

if dev.type != "cuda":
    sys.exit(0)
b = batches[-1]
obs = cjs_inputs(b, 24, dev, dt)
model.fuse()
from torch.profiler import ProfilerActivity, profile  # noqa: E402

with torch.no_grad():
    for _ in range(3):
        model(obs)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(10):
            model(obs)
        torch.cuda.synchronize()
table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=70)
(out / f"profile_fused_b{b}.txt").write_text(table)
print(table[:6000])
