"""The fused Triton paths against the PyTorch ones on a real GPU (the CPU tests run Triton's serial
interpreter, which cannot show races between programs). Marked ``gpu``: CI deselects them; on the GPU
machine ``python -m pytest -m gpu tests/gpu``.

* ABR: :class:`agents.hybrid.kernels.FusedStep` (token embedding and head in Triton or PyTorch) against
  ``ABRStudent.step``, default size, batch 1/16/256,
  120 decisions with random per-row resets: float32 equal to 1e-3, bfloat16 the same action on ≥ 98.5%.
* CJS: the shipped student's fused one-shot backbone against its PyTorch forward (float32).
* VP: the shipped student, fused and PyTorch, on random histories (float32).
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu
DEV = "cuda"


@pytest.mark.parametrize("io", ["triton", "torch"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("batch", [1, 16, 256])
def test_abr_fused_step_equals_pytorch_step(dtype, batch, io):
    from agents.hybrid.kernels import FusedStep
    from agents.student import ABRStudent, StudentConfig

    torch.manual_seed(0)
    model = ABRStudent(StudentConfig()).to(DEV, dtype).eval()
    state = model.init_state(batch, DEV, dtype)
    fused = FusedStep(model, batch, num_warps=4, block_out=16, io=io)
    g = torch.Generator(device=DEV).manual_seed(batch)
    worst, agree = 0.0, []
    with torch.no_grad():
        for t in range(120):
            r = torch.randn(batch, device=DEV, dtype=dtype)
            s = torch.rand(batch, 6, 6, device=DEV, dtype=dtype)
            a = torch.randint(0, 7, (batch,), device=DEV)
            ts = torch.full((batch,), t % 64, device=DEV)
            keep = (torch.rand(batch, device=DEV, generator=g) > 0.05).to(dtype) if t else \
                torch.zeros(batch, device=DEV, dtype=dtype)
            ref = model.step(r, s, a, ts, state, keep).float()
            out = fused.step(r, s, a, ts, keep).float()
            worst = max(worst, float((ref - out).abs().max()))
            agree.append((ref.argmax(-1) == out.argmax(-1)).float().mean().item())
    if dtype == torch.float32:
        assert worst < 1e-3
    # bf16: the PyTorch step rounds every op to bf16 (the embedding sum too), the fused one keeps float32 up to each
    # stored activation; random weights leave near-ties, so a few argmaxes flip (98.85% at batch 16 with the Triton
    # token embedding on one H100, 2026-12-07; every other case >= 99%). float32 above is the exactness check.
    assert sum(agree) / len(agree) >= 0.985


@pytest.mark.parametrize("jobs", [8, 24, 64])
@pytest.mark.parametrize("batch", [1, 16, 256])
def test_cjs_fused_backbone_equals_pytorch_forward(jobs, batch):
    from agents.cjs_llm import PRETRAINED_STUDENT, load_cjs
    from evaluation.bench import cjs_inputs

    model = load_cjs(PRETRAINED_STUDENT, device=DEV)[0]
    obs = cjs_inputs(batch, jobs, DEV, torch.float32, seed=jobs * 1000 + batch)
    with torch.no_grad():
        ref = [t.float() for t in model.fuse(False)(obs)]
        out = [t.float() for t in model.fuse(True)(obs)]
    model.fuse(False)
    assert float((ref[0] - out[0]).abs().max()) < 1e-3
    assert float((ref[1] - out[1]).abs().max()) < 2e-2
    assert float((ref[0].argmax(-1) == out[0].argmax(-1)).float().mean()) >= 0.99


def test_vp_fused_backbone_equals_pytorch_forward():
    from agents.vp_llm import PRETRAINED_STUDENT, load_vp

    model = load_vp(PRETRAINED_STUDENT, device=DEV)[0]
    torch.manual_seed(0)
    hist = torch.cumsum(torch.randn(256, 10, 3, device=DEV), 1) * 5
    with torch.no_grad():
        ref, out = model.fuse(False)(hist), model.fuse(True)(hist)
    model.fuse(False)
    assert float((ref - out).abs().max()) < 0.05  # degrees
