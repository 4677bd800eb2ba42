"""The hybrid backbone as a model (after state-spaces/mamba's ops → modules → models): a list of layer
kinds (``m`` = Mamba-2 mixer, ``a`` = attention mixer), each a pre-norm residual block
``x + mixer(rmsnorm(x))``, then a final RMSNorm. Task models (the ABR, VP and CJS students) put their
own encoder and head around it.

* :class:`HybridShape` — the fields every student config shares; :class:`HybridConfig` adds the
  attention window and checks the widths.
* :class:`HybridBackbone` — ``forward`` over a sequence, ``init_state`` / ``step`` for one token.
* :class:`FusedInference` — a mixin for task models whose decision is one forward over a short
  sequence: :meth:`~FusedInference.fuse` swaps the backbone's inference path for the fused Triton
  kernels of :mod:`agents.hybrid.kernels`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from .mixers import AttentionMixer, MambaMixer
from .ops import RMSNorm


@dataclass(frozen=True)
class HybridShape:
    """The hybrid backbone's shape: the fields every student config shares (ABR's :class:`StudentConfig`
    and the VP / CJS students' configs); :meth:`hybrid` gives the backbone's config for a window."""

    layers: str = "mmmmmmmmmmaa"  # m = Mamba-2 block, a = attention block (paper: 10 Mamba + 2 attention)
    d_model: int = 256
    d_state: int = 64  # N: equals the teacher's head dim, so CWR maps K→B and Q→C without truncation
    headdim: int = 64  # P
    expand: int = 2  # d_inner = expand * d_model
    ngroups: int = 1  # B/C groups (heads share them within a group)
    d_conv: int = 4
    attn_heads: int = 4
    chunk: int = 64  # SSD chunk length of the full-sequence path

    def hybrid(self, max_len: int) -> "HybridConfig":
        """The backbone's config for an attention window of ``max_len`` tokens."""
        return HybridConfig(**{f.name: getattr(self, f.name) for f in fields(HybridShape)}, max_len=max_len)


@dataclass(frozen=True)
class HybridConfig(HybridShape):
    max_len: int = 64  # attention window (tokens) = KV ring length

    def __post_init__(self):
        name = type(self).__name__
        bad = set(self.layers) - {"m", "a"}
        if bad or not self.layers:
            raise ValueError(f"{name}.layers={self.layers!r}: use a non-empty string of 'm' and 'a'")
        if (self.expand * self.d_model) % self.headdim:
            raise ValueError(f"{name}: expand*d_model must be a multiple of headdim")
        if ((self.expand * self.d_model) // self.headdim) % self.ngroups:
            raise ValueError(f"{name}: the number of heads must be a multiple of ngroups")
        if self.d_model % self.attn_heads:
            raise ValueError(f"{name}: d_model must be a multiple of attn_heads")


MIXERS = {"m": MambaMixer, "a": AttentionMixer}


class HybridBackbone(nn.Module):
    def __init__(self, cfg: HybridConfig):
        super().__init__()
        self.mixers = nn.ModuleList(MIXERS[k](cfg) for k in cfg.layers)
        self.norms = nn.ModuleList(RMSNorm(cfg.d_model) for _ in cfg.layers)
        self.final_norm = RMSNorm(cfg.d_model)

    def forward(self, x):  # (b, T, d)
        for norm, mixer in zip(self.norms, self.mixers):
            x = x + mixer(norm(x))
        return self.final_norm(x)

    def init_state(self, batch: int, device=None, dtype=torch.float32) -> list[dict]:
        return [m.init_state(batch, device, dtype) for m in self.mixers]

    def step(self, x, state: list[dict], keep):  # (b, d)
        for norm, mixer, st in zip(self.norms, self.mixers, state):
            x = x + mixer.step(norm(x), st, keep)
        return self.final_norm(x)


class FusedInference:
    """For students whose decision is one forward over a short sequence (VP's 30 tokens, a CJS decision's
    ≤ 65): :meth:`fuse` runs the backbone through :class:`agents.hybrid.seq_kernels.FusedSequence` (three
    Triton kernels per layer; CUDA, or ``TRITON_INTERPRET=1``) at inference, and :meth:`run_backbone` is
    the forward's call of the backbone. Training (grad enabled) always runs the PyTorch backbone."""

    _fused = None  # a FusedSequence after fuse()

    def fuse(self, on: bool = True, **launch):
        """Fused inference on (``on=False``: the PyTorch backbone again). Call it after moving the model
        and after training: it keeps a concatenated copy of the attention layers' q/k/v weights.
        ``launch``: the kernels' launch settings (``FusedSequence``'s arguments; by default picked per call)."""
        from .seq_kernels import FusedSequence

        self._fused = FusedSequence(self.backbone, **launch) if on else None
        return self

    @property
    def fused(self) -> bool:
        """Whether inference runs the backbone in the fused kernels (:meth:`fuse`)."""
        return self._fused is not None

    def run_backbone(self, x: torch.Tensor) -> torch.Tensor:
        return self._fused(x) if self._fused is not None and not torch.is_grad_enabled() else self.backbone(x)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
