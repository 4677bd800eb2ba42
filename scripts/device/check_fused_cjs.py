"""The fused one-shot backbone (``agents.student_kernels.FusedSequence``) against the PyTorch forward on a
real GPU (the CPU test runs Triton's serial interpreter): the shipped CJS student in float32 (max |Δ| of
the stage/wait and limit logits, and agreement of the chosen stage) and a random student in bfloat16
(agreement), at 8, 24 and 64 jobs in the system and batch 1/16/256.

    python3 scripts/device/check_fused_cjs.py OUT_JSON [fp32|bf16, default both]
"""
import json
import sys

import torch

from agents import PRETRAINED_CJS_STUDENT
from agents.cjs_llm import CJSStudent, CJSStudentConfig, load_cjs
from evaluation.bench import cjs_inputs
from traces.atomic import write_text_atomic

dev = "cuda"
report = {"device": torch.cuda.get_device_name(), "runs": []}
which = sys.argv[2] if len(sys.argv) > 2 else "fp32,bf16"
torch.manual_seed(0)
models = []
if "fp32" in which:
    models.append(("shipped fp32", load_cjs(PRETRAINED_CJS_STUDENT, device=dev)[0], torch.float32))
if "bf16" in which:
    models.append(("random bf16", CJSStudent(CJSStudentConfig()).to(dev, torch.bfloat16).eval(), torch.bfloat16))
for label, model, dtype in models:
    for jobs in (8, 24, 64):
        for B in (1, 16, 256):
            obs = cjs_inputs(B, jobs, dev, dtype, seed=jobs * 1000 + B)
            with torch.no_grad():
                ref = [t.float() for t in model.fuse(False)(obs)]
                out = [t.float() for t in model.fuse(True)(obs)]
            model.fuse(False)
            row = {"model": label, "jobs": jobs, "batch": B,
                   "max_abs_diff_stage": float((ref[0] - out[0]).abs().max()),
                   "max_abs_diff_limit": float((ref[1] - out[1]).abs().max()),
                   "stage_agreement": float((ref[0].argmax(-1) == out[0].argmax(-1)).float().mean()),
                   "limit_agreement": float((ref[1].argmax(-1) == out[1].argmax(-1)).float().mean())}
            report["runs"].append(row)
            print(row, flush=True)
write_text_atomic(sys.argv[1], json.dumps(report, indent=1))
