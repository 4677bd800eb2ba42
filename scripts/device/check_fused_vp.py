"""The VP student's fused one-shot backbone (``VPStudent.fuse``) against its PyTorch forward on a real GPU:
the shipped student (float32) on the 1,698 Jin2022 test windows — MAE with and without the kernels,
and the largest difference of a prediction — and a random default-size student in bfloat16 at batch 1, 16
and 256 (largest difference, degrees). The test windows come as an ``.npz`` of plain arrays (history,
future, history_t), written on the project CPU from ``traces.viewport.make_windows(load_jin2022_split("test"))``.

    python3 scripts/device/check_fused_vp.py TEST.npz OUT_JSON
"""
import json
import sys

import numpy as np
import torch

from agents import PRETRAINED_VP
from agents.vp_llm import VPModelPolicy, VPStudent, VPStudentConfig, load_vp
from evaluation.vp import evaluate_vp
from traces.atomic import write_text_atomic
from traces.viewport import Windows

dev = "cuda" if torch.cuda.is_available() else "cpu"  # on a CPU: TRITON_INTERPRET=1, a smoke test
arr = np.load(sys.argv[1], allow_pickle=False)
n = len(arr["history"])
w = Windows(arr["history"], arr["future"], arr["history_t"], np.zeros(n, np.int64), np.zeros(n, np.int64),
            np.zeros(n, np.int64))
report = {"device": torch.cuda.get_device_name() if dev == "cuda" else "cpu", "windows": n}
shipped, _ = load_vp(PRETRAINED_VP["student"], device=dev)
for fused in (False, True):
    report[f"shipped_fp32_mae_{'fused' if fused else 'torch'}"] = evaluate_vp(
        VPModelPolicy(shipped, "student", device=dev, fused=fused), w).summary()["mae"]
hist = torch.as_tensor(arr["history"], dtype=torch.float32, device=dev)
with torch.no_grad():
    report["shipped_fp32_max_abs_diff_deg"] = float((shipped.fuse(False)(hist) - shipped.fuse(True)(hist)).abs().max())
torch.manual_seed(0)
rand = VPStudent(VPStudentConfig()).to(dev, torch.bfloat16).eval()
for b in [b for b in (1, 16, 256) if b <= n]:
    h = hist[:b].to(torch.bfloat16)
    with torch.no_grad():
        ref, out = rand.fuse(False)(h).float(), rand.fuse(True)(h).float()
    report[f"random_bf16_b{b}_max_abs_diff_deg"] = float((ref - out).abs().max())
    report[f"random_bf16_b{b}_mean_abs_diff_deg"] = float((ref - out).abs().mean())
print(json.dumps(report, indent=1))
write_text_atomic(sys.argv[2], json.dumps(report, indent=1))
