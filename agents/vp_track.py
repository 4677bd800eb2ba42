"""TRACK-style viewport predictor: an LSTM encoder-decoder on the head-movement history.

After TRACK (Rondón et al., TPAMI 2021) without its saliency branch: the encoder reads the history
as offsets from the last sample and per-step displacements; the decoder unrolls 20 steps, each
predicting the next displacement from the previous one. Angles are yaw-unwrapped before and wrapped
after. Trained on NetLLM's Jin2022 train split with early stopping on the valid split
(:mod:`distill.vp_track`, ``python -m distill.vp track``).

Checkpoint: ``model.safetensors`` + ``config.json`` (architecture, data, metrics, code version).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from traces.viewport import FUTURE, HISTORY, unwrap_yaw, wrap_deg

from .base import BatchPolicy
from .checkpoint import PRETRAINED_DIR, load_weights, read_checkpoint, write_checkpoint

PRETRAINED = PRETRAINED_DIR / "vp_track"


@dataclass(frozen=True)
class TrackConfig:
    hidden: int = 128  # LSTM width: 10 input steps of 6 features need little; 128 trains in minutes on CPU
    layers: int = 2  # encoder and decoder depth (TRACK stacks 2)
    history: int = HISTORY  # 2 s at 5 Hz (NetLLM)
    future: int = FUTURE  # 4 s at 5 Hz (NetLLM)
    scale_deg: float = 90.0  # angles are divided by this so inputs/outputs are O(0.1)


class TrackLSTM(nn.Module):
    def __init__(self, cfg: TrackConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.LSTM(6, cfg.hidden, cfg.layers, batch_first=True)
        self.decoder = nn.LSTM(3, cfg.hidden, cfg.layers, batch_first=True)
        self.head = nn.Linear(cfg.hidden, 3)

    def forward(self, hist: torch.Tensor) -> torch.Tensor:
        """``hist`` (B, h, 3) yaw-unwrapped degrees -> (B, f, 3) offsets from the last sample, degrees."""
        s = self.cfg.scale_deg
        rel = (hist - hist[:, -1:]) / s  # (B, h, 3)
        vel = torch.diff(hist, dim=1, prepend=hist[:, :1]) / s  # (B, h, 3)
        _, state = self.encoder(torch.cat([rel, vel], dim=-1))
        step = vel[:, -1:]  # (B, 1, 3)
        pos = torch.zeros_like(step)
        outs = []
        for _ in range(self.cfg.future):
            o, state = self.decoder(step, state)
            step = self.head(o)
            pos = pos + step
            outs.append(pos)
        return torch.cat(outs, dim=1) * s  # (B, f, 3)


def predict_degrees(model: TrackLSTM, history_deg: np.ndarray, batch: int = 4096) -> np.ndarray:
    """(B, h, 3) raw degrees -> (B, f, 3) predicted degrees, yaw wrapped."""
    hist = unwrap_yaw(history_deg)
    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(hist), batch):
            h = torch.as_tensor(hist[i:i + batch], dtype=torch.float32)
            out.append((model(h) + h[:, -1:]).numpy().astype(np.float64))
    pred = np.concatenate(out) if out else np.zeros((0, model.cfg.future, 3))
    pred[..., 2] = wrap_deg(pred[..., 2])
    return pred


def save_checkpoint(model: TrackLSTM, folder: str | Path, extra: dict) -> Path:
    return write_checkpoint(folder, model.state_dict(), "track-lstm", model.cfg, extra)


def load_checkpoint(folder: str | Path = PRETRAINED) -> tuple[TrackLSTM, dict]:
    tensors, cfg, meta = read_checkpoint(folder, TrackConfig, "python -m distill.vp track --out DIR", kind="track-lstm")
    model = TrackLSTM(cfg)
    load_weights(model, tensors, folder)
    model.eval()
    return model, meta


class TrackVP(BatchPolicy):
    """The TRACK-style predictor as a :class:`~agents.base.Policy` (loads the shipped checkpoint by default)."""

    name = "track"

    def __init__(self, folder: str | Path = PRETRAINED):
        self.model, self.meta = load_checkpoint(folder)

    def act_batch(self, obs, info=None):
        return predict_degrees(self.model, np.asarray(obs, dtype=np.float64)[..., 1:]).astype(np.float32)
