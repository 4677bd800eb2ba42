"""GPU timing of one CJS decision, model by model, each result saved as it lands (a call cut by its time
limit keeps what finished): the student on its three backbone paths — ``chunked`` (the chunked SSD of
sessions 5–7, ``agents.student.ONE_CHUNK_MAX = 0``), ``one-chunk`` (the PyTorch default since session 8)
and ``fused`` (``agents.hybrid.seq_kernels.FusedSequence``, three Triton kernels per layer, session 9) — the
CJS teacher (SmolLM2-135M shape, LoRA merged = rank 0) and the Decima GNN, as ``evaluation.bench --tasks
cjs`` times them (random weights, bf16, 24 jobs in the system, CUDA graphs, optionally compiled).

    python3 experiments/cjs_decision_bench.py OUT.json plain|compiled MODEL[,MODEL...] [BATCHES, default 1,16,256]

MODEL: student-chunked, student, student-fused (student-fused-16x32: row x output tile of its projections),
teacher, gnn. On a CPU it runs eagerly (a smoke test).
"""
import json
import sys
import time
from pathlib import Path

import torch

import agents.student as S
from agents.cjs_gnn import DecimaGNN, GNNConfig
from agents.cjs_llm import CJSStudent, CJSStudentConfig, CJSTeacher, CJSTeacherConfig
from evaluation.bench import _backbone, bench_forward, cjs_inputs
from traces.atomic import write_text_atomic

out, mode, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
batches = [int(x) for x in (sys.argv[4] if len(sys.argv) > 4 else "1,16,256").split(",")]
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
dt = torch.bfloat16 if dev.type == "cuda" else torch.float32
graph = dev.type == "cuda"
res = json.loads(Path(out).read_text()) if Path(out).is_file() else {"runs": {}}  # runs of earlier calls kept
res.update({"gpu": torch.cuda.get_device_name(0) if graph else "cpu", "torch": torch.__version__})
t0 = time.perf_counter()


def build(name):
    torch.manual_seed(0)
    if name == "teacher":
        cfg = CJSTeacherConfig(backbone="shape:smollm2-135m", lora_rank=0)
        return CJSTeacher(cfg, _backbone("shape:smollm2-135m", dev, dt)).to(dev, dt).eval()
    if name == "gnn":
        return DecimaGNN(GNNConfig()).to(dev, dt).eval()
    model = CJSStudent(CJSStudentConfig()).to(dev, dt).eval()
    if name.startswith("student-fused"):  # student-fused[-BRxBO]: the projections' row x output tile
        br, bo = (int(v) for v in name.split("-")[2].split("x")) if name.count("-") == 2 else (None, None)
        model.fuse(block_rows=br, block_out=bo)  # None: FusedSequence's own pick by batch
    return model


for name in names:
    model = build(name)
    S.ONE_CHUNK_MAX = 0 if name == "student-chunked" else 128
    for b in batches:
        key = f"{name}-{mode}-b{b}"
        try:
            res["runs"][key] = bench_forward(model, cjs_inputs(b, 24, dev, dt), b, dev, graph, mode == "compiled")
        except Exception as err:  # noqa: BLE001 - a failed path is a reported row
            res["runs"][key] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
        res["runs"][key]["seconds_since_start"] = time.perf_counter() - t0
        write_text_atomic(out, json.dumps(res, indent=1, default=float))
        print(key, round(res["runs"][key].get("latency_ms_median", -1), 4), flush=True)
    S.ONE_CHUNK_MAX = 128
    del model
