"""The student's recurrent step with its Mamba layers run by mamba-ssm (state-spaces/mamba), the field's
reference implementation: a backend choice for the same weights, not a second model.

``MambaSSMStep(model, batch)`` copies each Mamba layer's weights into a ``mamba_ssm.Mamba2`` module (the
same parameterisation: ``in_proj`` → z | x B C | dt, depthwise causal conv, ``dt_bias``, ``A_log``, ``D``,
gated RMSNorm, ``out_proj``) and steps it with mamba-ssm's ``Mamba2.step`` — its Triton
``selective_state_update`` for the SSM — while the attention layers keep our PyTorch step.
``step(returns, states, prev_actions, timesteps, keep)`` has :meth:`agents.student.ABRStudent.step`'s
meaning; rows with ``keep == 0`` start a new episode (their conv and SSM states are zeroed first). State is
float32 whatever the weights' dtype. Needs CUDA and an importable ``mamba_ssm`` (see :func:`import_mamba_ssm`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import torch


def import_mamba_ssm(stub_mamba1: bool = False):
    """``mamba_ssm.Mamba2``. The PyPI release's package import also loads its Mamba-1 CUDA extension
    ``selective_scan_cuda``, which ``Mamba2`` never calls; a wheel built without CUDA extensions lacks it.
    ``stub_mamba1=True`` registers an empty module under that name first (used by the benchmark and the
    GPU tests only, and said so in docs/STUDENT.md)."""
    if stub_mamba1 and "selective_scan_cuda" not in sys.modules and importlib.util.find_spec("selective_scan_cuda") is None:
        sys.modules["selective_scan_cuda"] = types.ModuleType("selective_scan_cuda")
    from mamba_ssm.modules.mamba2 import Mamba2

    return Mamba2


def copy_mixer_weights(ours, ref):
    """Our :class:`~agents.hybrid.mixers.MambaMixer`'s weights into a reference Mamba-2 module of the same
    shape (mamba-ssm's ``Mamba2`` or transformers' ``Mamba2Mixer``: both name them alike); returns ``ref``."""
    with torch.no_grad():
        ref.in_proj.weight.copy_(ours.in_proj.weight)
        ref.conv1d.weight.copy_(ours.conv_weight[:, None, :])
        ref.conv1d.bias.copy_(ours.conv_bias)
        ref.dt_bias.copy_(ours.dt_bias)
        ref.A_log.copy_(ours.A_log)
        ref.D.copy_(ours.D)
        ref.norm.weight.copy_(ours.norm.weight)
        ref.out_proj.weight.copy_(ours.out_proj.weight)
    return ref


def available(device) -> bool:
    return torch.device(device).type == "cuda" and importlib.util.find_spec("mamba_ssm") is not None


class MambaSSMStep:
    def __init__(self, model, batch: int, stub_mamba1: bool = True):
        Mamba2 = import_mamba_ssm(stub_mamba1)
        self.model, self.batch = model, batch
        dev = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        self.layers, self.state = [], []
        for i, (norm, m) in enumerate(zip(model.backbone.norms, model.backbone.mixers)):
            if m.kind != "m":
                self.layers.append(("a", norm, m))
                self.state.append(m.init_state(batch, dev, torch.float32 if dtype == torch.float32 else dtype))
                continue
            ref = Mamba2(d_model=m.in_proj.in_features, d_state=m.N, d_conv=m.K, expand=m.di // m.in_proj.in_features,
                         headdim=m.P, ngroups=m.G, rmsnorm=True, norm_before_gate=False, bias=False, conv_bias=True,
                         chunk_size=m.chunk, use_mem_eff_path=False, layer_idx=i, device=dev, dtype=dtype)
            copy_mixer_weights(m, ref).eval()
            conv = torch.zeros(batch, m.conv_ch, m.K, device=dev, dtype=dtype)
            ssm = torch.zeros(batch, m.H, m.P, m.N, device=dev, dtype=torch.float32)
            self.layers.append(("m", norm, ref))
            self.state.append({"conv": conv, "ssm": ssm})

    def reset_state(self) -> None:
        for st in self.state:
            for v in st.values():
                v.zero_()

    @torch.no_grad()
    def step(self, returns, states, prev_actions, timesteps, keep):
        model = self.model
        x = model.tokens(returns, states, prev_actions, timesteps)
        keep_f = keep.to(x.dtype)
        for (kind, norm, layer), st in zip(self.layers, self.state):
            if kind == "a":
                x = x + layer.step(norm(x), st, keep_f)
                continue
            st["conv"].mul_(keep_f[:, None, None])
            st["ssm"].mul_(keep[:, None, None, None].to(st["ssm"].dtype))
            out, _, _ = layer.step(norm(x)[:, None], st["conv"], st["ssm"])  # mamba-ssm updates both in place
            x = x + out[:, 0]
        return model.head(model.backbone.final_norm(x))
