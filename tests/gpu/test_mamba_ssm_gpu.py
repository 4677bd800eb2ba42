"""The three ways to run the student's recurrent step give the same logits over a 48-decision episode:
our PyTorch step, our fused Triton step, and the Mamba layers through mamba-ssm (``MambaSSMStep``).
Marked ``gpu``; needs mamba_ssm (a wheel built without its CUDA extensions: the Mamba-1 extension it
imports is stubbed, see docs/STUDENT.md)."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu
DEV = "cuda"


@pytest.mark.parametrize("batch", [1, 16, 256])
def test_pytorch_fused_and_mamba_ssm_steps_agree(batch):
    from agents.hybrid.kernels import FusedStep
    from agents.hybrid.mamba_ssm_backend import MambaSSMStep
    from agents.student import ABRStudent, StudentConfig

    torch.manual_seed(batch)
    model = ABRStudent(StudentConfig()).to(DEV).eval()
    state = model.init_state(batch, DEV, torch.float32)
    fused, ref = FusedStep(model, batch), MambaSSMStep(model, batch)
    worst = {"fused": 0.0, "mamba-ssm": 0.0}
    with torch.no_grad():
        for t in range(48):
            args = (torch.randn(batch, device=DEV), torch.rand(batch, 6, 6, device=DEV),
                    torch.randint(0, 7, (batch,), device=DEV), torch.full((batch,), t, device=DEV))
            keep = torch.full((batch,), 0.0 if t == 0 else 1.0, device=DEV)
            a = model.step(*args, state, keep)
            worst["fused"] = max(worst["fused"], float((fused.step(*args, keep) - a).abs().max()))
            worst["mamba-ssm"] = max(worst["mamba-ssm"], float((ref.step(*args, keep) - a).abs().max()))
    assert worst["fused"] < 1e-3 and worst["mamba-ssm"] < 1e-3, worst
