"""Session-8 GPU check: one CJS decision of the student with the one-chunk SSD path (agents.student.
ONE_CHUNK_MAX, the default) and without it (0: the chunked path of earlier sessions), against the CJS
teacher (SmolLM2-135M shape, LoRA merged = rank 0), on the same GPU, as evaluation.bench --tasks cjs times
them (random weights, bf16, 24 jobs in the system, CUDA graphs).

    python3 scripts/device/cjs_onechunk_bench.py OUT.json plain|compiled student|teacher [BATCHES, default 1,16,256]
"""
import json
import sys
import time

import torch

import agents.student as S
from agents.cjs_llm import CJSStudent, CJSStudentConfig, CJSTeacher, CJSTeacherConfig
from evaluation.bench import _backbone, bench_forward, cjs_inputs
from traces.atomic import write_text_atomic

out, mode = sys.argv[1], sys.argv[2]
teacher = len(sys.argv) > 3 and sys.argv[3] == "teacher"
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # cpu: a smoke test of this script
dt = torch.bfloat16 if dev.type == "cuda" else torch.float32
graph = dev.type == "cuda"
compiled = mode == "compiled"
res = {"gpu": torch.cuda.get_device_name(0) if graph else "cpu", "mode": mode, "runs": {}}
t0 = time.perf_counter()


def save():
    write_text_atomic(out, json.dumps(res, indent=1, default=float))


for b in [int(x) for x in (sys.argv[4] if len(sys.argv) > 4 else "1,16,256").split(",")]:
    if teacher:
        cfg = CJSTeacherConfig(backbone="shape:smollm2-135m", lora_rank=0)
        model = CJSTeacher(cfg, _backbone("shape:smollm2-135m", dev, dt)).to(dev, dt).eval()
        res["runs"][f"teacher-b{b}"] = bench_forward(model, cjs_inputs(b, 24, dev, dt), b, dev, graph, compiled)
    else:
        torch.manual_seed(0)
        model = CJSStudent(CJSStudentConfig()).to(dev, dt).eval()
        for cap in (0, S.ONE_CHUNK_MAX):
            S.ONE_CHUNK_MAX = cap
            key = f"student-{'one-chunk' if cap else 'chunked'}-b{b}"
            res["runs"][key] = bench_forward(model, cjs_inputs(b, 24, dev, dt), b, dev, graph, compiled)
        S.ONE_CHUNK_MAX = 128
    res["seconds"] = time.perf_counter() - t0
    save()
    print(json.dumps({k: round(v.get("latency_ms_median", -1), 3) for k, v in res["runs"].items()}),
          flush=True)
