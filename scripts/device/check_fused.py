"""The fused Triton step against the PyTorch step on a real GPU (the CPU test runs Triton's serial
interpreter, which cannot show races between programs): default student size, batch 1/16/256, 120
decisions with random per-row resets; float32 (max |Δ logits|) and bfloat16 (action agreement).
With MAMBA4NET_DATA set, also the shipped student as a policy on fcc-test, fused vs PyTorch step.

    python3 scripts/device/check_fused.py [OUT_JSON]
"""
import os

import json
import sys

import torch

from agents.student import ABRStudent, StudentConfig
from agents.student_kernels import FusedStep

torch.manual_seed(0)
dev = "cuda"
report = {"device": torch.cuda.get_device_name(), "runs": []}
for dtype in (torch.float32, torch.bfloat16):
    model = ABRStudent(StudentConfig()).to(dev, dtype).eval()
    for B in (1, 16, 256):
        state = model.init_state(B, dev, dtype)
        fused = FusedStep(model, B, num_warps=4, block_out=16)
        worst, agree, n = 0.0, 0, 0
        g = torch.Generator(device=dev).manual_seed(B)
        with torch.no_grad():
            for t in range(120):
                r = torch.randn(B, device=dev, dtype=dtype)
                s = torch.rand(B, 6, 6, device=dev, dtype=dtype)
                a = torch.randint(0, 7, (B,), device=dev)
                ts = torch.full((B,), t % 64, device=dev)
                keep = (torch.rand(B, device=dev, generator=g) > 0.05).to(dtype) if t else torch.zeros(B, device=dev, dtype=dtype)
                ref = model.step(r, s, a, ts, state, keep).float()
                out = fused.step(r, s, a, ts, keep).float()
                worst = max(worst, float((ref - out).abs().max()))
                agree += int((ref.argmax(-1) == out.argmax(-1)).sum())
                n += B
        row = {"dtype": str(dtype), "batch": B, "max_abs_diff": worst, "action_agreement": agree / n}
        report["runs"].append(row)
        print(row, flush=True)
fp32 = [r for r in report["runs"] if r["dtype"] == "torch.float32"]
report["fp32_ok"] = all(r["max_abs_diff"] < 1e-3 for r in fp32)
print("fp32 equal to 1e-3:", report["fp32_ok"])
if os.environ.get("MAMBA4NET_DATA"):
    import numpy as np

    from agents.student import StudentPolicy, load_student
    from evaluation.abr import evaluate_abr
    from traces import load_abr_traces, load_abr_video

    model, meta = load_student(device=dev)
    traces, video = load_abr_traces("fcc-test"), load_abr_video("video1")
    runs = {f: evaluate_abr(StudentPolicy(model, meta["target_return"], device=dev, fused=f), traces, video,
                            keep_obs=True) for f in (False, True)}
    same = float(np.mean(runs[False].records["action"] == runs[True].records["action"]))
    report["policy_fcc_test"] = {"qoe_torch": runs[False].summary()["qoe"], "qoe_fused": runs[True].summary()["qoe"],
                                 "action_agreement": same}
    print(report["policy_fcc_test"], flush=True)
if len(sys.argv) > 1:
    with open(sys.argv[1], "w") as f:
        json.dump(report, f, indent=2)
