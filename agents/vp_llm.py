"""Viewport prediction with the NetLLM-style teacher and the Mamba student (same tokens, same head).

Tokens: the 10 history samples (yaw-unwrapped degrees) become 10 tokens — per step the offset from
the last sample and the displacement from the previous one (6 features, as TRACK reads them) through
a linear layer — followed by 20 learned *query* tokens, one per future step; a position embedding is
added and the backbone (causal) runs over all 30. The head reads the 20 query outputs and regresses
each future sample's offset from the last history sample (degrees / ``scale_deg``). Non-autoregressive
(one pass per prediction), as NetLLM's VP head.

* :class:`VPTeacher` — the LLM backbone (SmolLM2-135M by default, frozen, LoRA rank 32 as NetLLM uses
  for VP) fed with ``inputs_embeds``.
* :class:`VPStudent` — the hybrid Mamba backbone of :mod:`agents.student`; at inference on CUDA it can
  run that backbone in fused Triton kernels (:meth:`VPStudent.fuse`, as the CJS student).
* :class:`VPModelPolicy` — either one as a :class:`Policy` for ``mamba4net/VP-v0`` / ``evaluate_vp``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from traces.viewport import FUTURE, HISTORY, unwrap_yaw, wrap_deg

from .base import BatchPolicy
from .checkpoint import PRETRAINED_DIR, CheckpointError, load_weights, read_checkpoint, read_meta, write_checkpoint
from .hybrid import FusedInference, HybridShape

PRETRAINED_TEACHER = PRETRAINED_DIR / "teacher_vp"
PRETRAINED_STUDENT = PRETRAINED_DIR / "student_vp"


@dataclass(frozen=True)
class VPTeacherConfig:
    backbone: str = "smollm2-135m"
    lora_rank: int = 32  # NetLLM's rank for VP
    lora_alpha: int = 32
    history: int = HISTORY
    future: int = FUTURE
    scale_deg: float = 90.0


@dataclass(frozen=True)
class VPStudentConfig(HybridShape):
    history: int = HISTORY
    future: int = FUTURE
    scale_deg: float = 90.0

    def backbone(self):
        return self.hybrid(max_len=self.history + self.future)


class VPTokens(nn.Module):
    def __init__(self, d: int, history: int, future: int, scale_deg: float):
        super().__init__()
        self.inp = nn.Linear(6, d)
        self.query = nn.Parameter(torch.randn(future, d) * 0.02)
        self.pos = nn.Embedding(history + future, d)
        self.norm = nn.LayerNorm(d)
        self.scale = scale_deg

    def forward(self, hist: torch.Tensor) -> torch.Tensor:  # (B, h, 3) unwrapped degrees -> (B, h + f, d)
        rel = (hist - hist[:, -1:]) / self.scale
        vel = torch.diff(hist, dim=1, prepend=hist[:, :1]) / self.scale
        x = torch.cat([self.inp(torch.cat([rel, vel], -1)), self.query.expand(len(hist), -1, -1)], 1)
        return self.norm(x + self.pos.weight[None, : x.shape[1]])


class VPTeacher(nn.Module):
    def __init__(self, cfg: VPTeacherConfig, backbone: nn.Module | None = None):
        super().__init__()
        from .teacher import frozen_with_lora, load_backbone

        self.cfg = cfg
        backbone = backbone if backbone is not None else load_backbone(cfg.backbone)
        self.backbone = backbone = frozen_with_lora(backbone, cfg.lora_rank, cfg.lora_alpha)
        d = backbone.config.hidden_size
        self.tokens = VPTokens(d, cfg.history, cfg.future, cfg.scale_deg)
        self.head = nn.Linear(d, 3)

    def forward(self, hist: torch.Tensor) -> torch.Tensor:
        """(B, h, 3) unwrapped degrees -> (B, f, 3) offsets from the last history sample, degrees."""
        h = self.backbone(inputs_embeds=self.tokens(hist)).last_hidden_state[:, self.cfg.history:]
        return self.head(h) * self.cfg.scale_deg

    def trainable_state(self) -> dict[str, torch.Tensor]:
        from .teacher import trained_tensors

        return trained_tensors(self)


class VPStudent(FusedInference, nn.Module):
    def __init__(self, cfg: VPStudentConfig):
        super().__init__()
        from .hybrid import HybridBackbone

        self.cfg = cfg
        self.backbone = HybridBackbone(cfg.backbone())
        self.tokens = VPTokens(cfg.d_model, cfg.history, cfg.future, cfg.scale_deg)
        self.head = nn.Linear(cfg.d_model, 3)

    def forward(self, hist: torch.Tensor) -> torch.Tensor:
        h = self.run_backbone(self.tokens(hist))[:, self.cfg.history:]
        return self.head(h) * self.cfg.scale_deg

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.named_parameters()}


def predict_degrees(model: nn.Module, history_deg: np.ndarray, batch: int = 2048, device: str = "cpu") -> np.ndarray:
    """(B, h, 3) raw degrees -> (B, f, 3) predicted degrees, yaw wrapped."""
    hist = unwrap_yaw(history_deg)
    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(hist), batch):
            h = torch.as_tensor(hist[i:i + batch], dtype=torch.float32, device=device)
            out.append((model(h) + h[:, -1:]).float().cpu().numpy().astype(np.float64))
    pred = np.concatenate(out) if out else np.zeros((0, model.cfg.future, 3))
    pred[..., 2] = wrap_deg(pred[..., 2])
    return pred


def save_vp(model: nn.Module, folder: str | Path, extra: dict) -> Path:
    kind = "vp-teacher" if isinstance(model, VPTeacher) else "vp-student"
    tensors = {k: v.to(torch.bfloat16).cpu() for k, v in model.trainable_state().items()}
    return write_checkpoint(folder, tensors, kind, model.cfg, {"task": "vp", **extra},
                            weights="adapter.safetensors" if kind == "vp-teacher" else "model.safetensors")


def load_vp(folder: str | Path, device: str = "cpu", backbone: nn.Module | None = None):
    folder = Path(folder)
    kind = read_meta(folder, "python -m distill.vp teacher|student").get("model")
    if kind == "vp-teacher":
        weights, cfg, meta = read_checkpoint(folder, VPTeacherConfig, "python -m distill.vp teacher",
                                             weights="adapter.safetensors", kind=kind, task="vp")
        from .teacher import load_trained

        model = VPTeacher(cfg, backbone)
        load_trained(model, weights, folder)
    elif kind == "vp-student":
        weights, cfg, meta = read_checkpoint(folder, VPStudentConfig, "python -m distill.vp student", kind=kind,
                                             task="vp")
        model = VPStudent(cfg)
        load_weights(model, {k: v.float() for k, v in weights.items()}, folder)
    else:
        raise CheckpointError(f"{folder}/config.json: model {kind!r} is not a VP teacher or student")
    return model.to(device).eval(), meta


class VPModelPolicy(BatchPolicy):
    """A VP teacher or student as a :class:`Policy` (observation = time + angles of the history).
    ``fused``: a student's backbone in fused Triton kernels (:meth:`VPStudent.fuse`; default: on a CUDA
    device with triton installed)."""

    def __init__(self, model: nn.Module, name: str, device: str = "cpu", fused: bool | None = None):
        self.model, self.name, self.device = model, name, device
        if isinstance(model, VPStudent):
            from .hybrid.kernels import available

            model.fuse(available(device) and torch.device(device).type == "cuda" if fused is None else bool(fused))

    def act_batch(self, obs, info=None):
        return predict_degrees(self.model, np.asarray(obs, dtype=np.float64)[..., 1:], device=self.device).astype(np.float32)
