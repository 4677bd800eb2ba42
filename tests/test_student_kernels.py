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
from agents.hybrid.kernels import FusedStep, available

assert available("cpu")
torch.manual_seed(0)
# two groups, a window shorter than the episode (the KV ring wraps), attention between Mamba layers; timesteps
# past the embedding's last row (clamped)
cfg = StudentConfig(layers="mmam", d_model=32, d_state=16, headdim=16, attn_heads=2, max_len=8, ngroups=2,
                    max_timestep=10)
model = ABRStudent(cfg).eval()
B, T = 3, 14
state = model.init_state(B)
fused = FusedStep(model, B)  # token embedding and head in Triton too
plain = FusedStep(model, B, io="torch")
worst = 0.0
with torch.no_grad():
    for t in range(T):
        r, s = torch.randn(B) * 20, torch.randn(B, 6, 6)  # negative features: both sides of the LeakyReLU
        a, ts = torch.randint(0, 7, (B,)), torch.full((B,), t)
        keep = torch.ones(B)
        if t == 0:
            keep.zero_()
        if t == 9:
            keep[1] = 0.0  # row 1 starts a new episode mid-batch
        ref = model.step(r, s, a, ts, state, keep)
        for f in (fused, plain):
            out = f.step(r, s, a, ts, keep)
            worst = max(worst, float((ref - out).abs().max()))
            assert torch.equal(ref.argmax(-1), out.argmax(-1)), t
# the fused SSM state is the PyTorch state (Mamba layer 0); the arrival counters are back at zero
assert torch.allclose(fused.state[0]["ssm"], state[0]["ssm"], atol=1e-5)
assert int(fused.count.abs().sum()) == 0
# without the return-to-go token (condition "none") the Triton embedding drops it too
nr = ABRStudent(StudentConfig(layers="a", d_model=32, attn_heads=2, max_len=8, condition="none")).eval()
with torch.no_grad():
    r, s, a, ts, k = torch.randn(2) * 20, torch.randn(2, 6, 6), torch.tensor([6, 2]), torch.tensor([0, 3]), torch.zeros(2)
    assert torch.allclose(FusedStep(nr, 2).step(r, s, a, ts, k), nr.step(r, s, a, ts, nr.init_state(2), k), atol=1e-5)
    try:  # a history of another length would be read as garbage: refused
        FusedStep(nr, 2).step(r, torch.randn(2, 6, 8), a, ts, k)
    except ValueError as err:
        assert "(2, 6, 6)" in str(err)
    else:
        raise AssertionError("a wrong observation shape must be refused")
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


SEQUENCE = r"""
import torch
from agents.cjs_llm import CJSStudent, CJSStudentConfig, for_inference
from agents.hybrid import HybridBackbone
from agents.student import StudentConfig
from agents.hybrid.seq_kernels import FusedSequence
from evaluation.bench import cjs_inputs

torch.manual_seed(0)
# two groups, attention between Mamba layers; larger dt so the decays matter
cfg = StudentConfig(layers="mmam", d_model=32, d_state=16, headdim=16, attn_heads=2, max_len=40, ngroups=2)
bb = HybridBackbone(cfg).eval()
with torch.no_grad():
    for m in bb.mixers:
        if m.kind == "m":
            m.dt_bias.add_(1.0)
fused = FusedSequence(bb)
worst = 0.0
with torch.no_grad():
    for B, T in [(3, 9), (2, 17), (1, 33), (2, 1)]:  # TB 16, 32, 64; one token
        x = torch.randn(B, T, 32)
        worst = max(worst, float((bb(x) - fused(x)).abs().max()))
    # longer than the attention window: the PyTorch forward, unchanged
    x = torch.randn(1, 41, 32)
    assert torch.equal(fused(x), bb(x))
print("backbone max abs diff", worst)
assert worst < 1e-5, worst
# the large-batch launch (bigger projection tiles, two heads of a group per SSD program) computes the same;
# bf16 buffers between the kernels round, and nothing more
from agents.hybrid.seq_kernels import LARGE_ROWS, LARGE_TILE, SMALL_TILE

assert fused._tile(LARGE_ROWS) == SMALL_TILE  # float32 weights: the small launch at every size
fused.prec = "tf32"  # as for bf16 weights
assert fused._tile(LARGE_ROWS - 1) == SMALL_TILE and fused._tile(LARGE_ROWS) == LARGE_TILE
fused.prec = "ieee"
x = torch.randn(3, 9, 32)
with torch.no_grad():
    ref = bb(x)
    big = FusedSequence(bb, block_rows=64, block_out=128, heads_per_program=2)(x)
    half = FusedSequence(bb, activations=torch.bfloat16)(x)
assert float((big - ref).abs().max()) < 1e-5, float((big - ref).abs().max())
assert 1e-5 < float((half - ref).abs().max()) < 0.05, float((half - ref).abs().max())

# the CJS student: fused logits equal the PyTorch ones (padding after the decide token included)
scfg = CJSStudentConfig(layers="mma", d_model=32, d_state=16, headdim=16, attn_heads=2, hidden=8, rounds=2)
model = CJSStudent(scfg).eval()
obs = cjs_inputs(2, 11, "cpu", torch.float32)
obs["job_features"][1, 7:, 0] = 0  # row 1 has 7 jobs: its decide token at 7, padding after it
with torch.no_grad():
    ref = model(obs)
    out = model.fuse()(obs)
    assert model.fused
    with torch.enable_grad():  # training never goes through the kernels
        assert model(obs)[0].requires_grad
    back = model.fuse(False)(obs)
for r, o, p in zip(ref, out, back):
    assert torch.allclose(r, o, atol=1e-4, rtol=1e-5), float((r - o).abs().max())
    assert torch.equal(r, p)
assert not for_inference(model).fused  # on the CPU the student stays in PyTorch
print("cjs student same logits")

# the VP student: a prediction (10 history tokens + 20 queries, one forward) fused equals PyTorch
import numpy as np
from agents.vp_llm import VPModelPolicy, VPStudent, VPStudentConfig

vp = VPStudent(VPStudentConfig(layers="mma", d_model=32, d_state=16, headdim=16, attn_heads=2)).eval()
hist = torch.cumsum(torch.randn(5, 10, 3) * 4, 1)
with torch.no_grad():
    ref = vp(hist)
    out = vp.fuse()(hist)
    back = vp.fuse(False)(hist)
assert torch.allclose(ref, out, atol=1e-3, rtol=1e-5), float((ref - out).abs().max())  # degrees
assert torch.equal(ref, back)
assert not VPModelPolicy(vp, "student").model.fused  # on the CPU the policy keeps PyTorch
obs = np.concatenate([np.zeros((5, 10, 1)), hist.numpy()], -1)
a = VPModelPolicy(vp, "student", fused=False).act_batch(obs)
b = VPModelPolicy(vp, "student", fused=True).act_batch(obs)
assert np.allclose(a, b, atol=1e-3), np.abs(a - b).max()
print("vp student same predictions", float((ref - out).abs().max()))
try:
    FusedSequence(HybridBackbone(StudentConfig(layers="m", d_model=48, headdim=16, d_state=16, attn_heads=2)))
except ValueError as err:
    assert "power-of-two" in str(err)
else:
    raise AssertionError("a 48-wide model must be refused")
"""


def test_fused_sequence_equals_torch_forward():
    out = _interpreted(SEQUENCE)
    assert "cjs student same logits" in out
    assert "vp student same predictions" in out
