"""The fused Triton step of the student equals its PyTorch step (Triton's interpreter, on the CPU).

Run in a subprocess: ``TRITON_INTERPRET=1`` must be set before triton is imported, and must not leak
into other tests."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import torch
from agents.student import ABRStudent, StudentConfig
from agents.student_kernels import FusedStep, available

assert available("cpu")
torch.manual_seed(0)
# two groups, a window shorter than the episode (the KV ring wraps), attention between Mamba layers
cfg = StudentConfig(layers="mmam", d_model=32, d_state=16, headdim=16, attn_heads=2, max_len=8, ngroups=2)
model = ABRStudent(cfg).eval()
B, T = 3, 14
state = model.init_state(B)
fused = FusedStep(model, B)
worst = 0.0
with torch.no_grad():
    for t in range(T):
        r, s = torch.randn(B), torch.rand(B, 6, 6)
        a, ts = torch.randint(0, 7, (B,)), torch.full((B,), t)
        keep = torch.ones(B)
        if t == 0:
            keep.zero_()
        if t == 9:
            keep[1] = 0.0  # row 1 starts a new episode mid-batch
        ref = model.step(r, s, a, ts, state, keep)
        out = fused.step(r, s, a, ts, keep)
        worst = max(worst, float((ref - out).abs().max()))
        assert torch.equal(ref.argmax(-1), out.argmax(-1)), t
# the fused SSM state is the PyTorch state (Mamba layer 0)
assert torch.allclose(fused.state[0]["ssm"], state[0]["ssm"], atol=1e-5)
# the backbone alone (as a caller with its own tokens would use it); the step counter advances once
with torch.no_grad():
    h = torch.randn(B, cfg.d_model)
    t_before = int(fused.t)
    assert torch.allclose(fused.backbone_step(h, torch.ones(B)), model.backbone.step(h, state, torch.ones(B)), atol=1e-5)
    assert int(fused.t) == t_before + 1 == T + 1
fused.reset_state()
assert all(float(v.abs().sum()) == 0 for st in fused.state for v in st.values())
print("max abs diff", worst)
assert worst < 1e-5, worst
try:
    FusedStep(ABRStudent(StudentConfig(layers="m", d_model=48, headdim=16, d_state=16, attn_heads=2)), 1)
except ValueError as err:
    assert "power-of-two" in str(err)
else:
    raise AssertionError("a 48-wide model must be refused")
"""


def _interpreted(script: str) -> str:
    """Run ``script`` in a fresh interpreter with Triton's CPU interpreter on; its stdout."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def test_fused_step_equals_torch_step():
    assert "max abs diff" in _interpreted(SCRIPT)


POLICY = r"""
import numpy as np
import torch
from agents.student import ABRStudent, StudentConfig, StudentPolicy
from evaluation.abr import evaluate_abr
from traces import load_abr_traces, load_abr_video

torch.manual_seed(1)
model = ABRStudent(StudentConfig(layers="mam", d_model=32, d_state=16, headdim=16, attn_heads=2, max_len=16))
traces, video = load_abr_traces("fcc-test").subset(range(3)), load_abr_video("video1")
runs = [evaluate_abr(StudentPolicy(model, 40.0, fused=f), traces, video, keep_obs=True) for f in (False, True)]
assert StudentPolicy(model, 40.0).fused is False  # the automatic choice on a CPU: the PyTorch step
a, b = (r.records["action"] for r in runs)
assert np.array_equal(a, b), (a != b).sum()
print("same actions", a.shape)
"""


def test_policy_with_fused_step_plays_like_the_pytorch_step():
    assert "same actions" in _interpreted(POLICY)
