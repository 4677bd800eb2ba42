"""The Mamba4Net ABR student: the teacher's state encoder and head around the hybrid backbone
(:mod:`agents.hybrid`, default ``mmmmmmmmmmaa`` — the paper's 10 Mamba-2 + 2 attention layers near the
output).

Token layout (deviation from the teacher, stated): the teacher spends three tokens per decision
(return-to-go, state, previous action). The student sums the three embeddings into **one token per
decision**, so one recurrent step of the backbone yields one decision, whatever the episode's length.
Positions enter once, as the timestep embedding added to each token.

Inference: :class:`StudentPolicy` steps the PyTorch backbone, or on CUDA with triton the fused step
of :mod:`agents.hybrid.kernels` (two Triton kernels per layer, equal to float tolerance).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .base import BatchPolicy
from .checkpoint import PRETRAINED_DIR, load_weights, read_checkpoint, write_checkpoint
from .hybrid import HybridBackbone, HybridConfig
from .teacher import ABRStateEncoder

PRETRAINED_ABR = PRETRAINED_DIR / "student_abr"


@dataclass(frozen=True)
class StudentConfig(HybridConfig):
    history: int = 6
    levels: int = 6
    max_timestep: int = 64
    return_scale: float = 10.0
    encoder_width: int = 128
    condition: str = "return"  # "return" (return-to-go token) or "none"


class ABRStudent(nn.Module):
    """ABR student: one token per decision = LN(return + state + previous action + timestep embeddings)."""

    def __init__(self, cfg: StudentConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.embed_return = nn.Linear(1, d)
        self.embed_state = ABRStateEncoder(cfg.history, cfg.levels, cfg.encoder_width, d)
        self.embed_action = nn.Embedding(cfg.levels + 1, d)  # previous level; ``levels`` = none yet
        self.embed_time = nn.Embedding(cfg.max_timestep, d)
        self.norm = nn.LayerNorm(d)
        self.backbone = HybridBackbone(cfg)
        self.head = nn.Linear(d, cfg.levels)

    def tokens(self, returns, states, prev_actions, timesteps):
        if self.cfg.condition == "none":
            returns = torch.zeros_like(returns)
        lead = returns.shape
        s = self.embed_state(states.reshape(-1, *states.shape[-2:])).reshape(*lead, -1)
        r = self.embed_return(returns[..., None] / self.cfg.return_scale)
        t = self.embed_time(timesteps.clamp(max=self.cfg.max_timestep - 1))
        return self.norm(r + s + self.embed_action(prev_actions) + t)

    def forward(self, returns, states, prev_actions, timesteps):
        """Whole episodes: ``returns`` (B, T), ``states`` (B, T, 6, H), ``prev_actions`` (B, T),
        ``timesteps`` (B, T) -> logits (B, T, levels). Causal: right padding does not change earlier rows."""
        return self.head(self.backbone(self.tokens(returns, states, prev_actions, timesteps)))

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.named_parameters()}

    def init_state(self, batch: int, device=None, dtype=torch.float32):
        return self.backbone.init_state(batch, device, dtype)

    def step(self, returns, states, prev_actions, timesteps, state, keep):
        """One decision per row: inputs without the time axis; ``keep`` (B,) float, 0 starts a new episode."""
        return self.head(self.backbone.step(self.tokens(returns, states, prev_actions, timesteps), state, keep))


def save_student(model: ABRStudent, folder: str | Path, extra: dict, dtype=torch.bfloat16) -> Path:
    tensors = {k: v.detach().to(dtype).cpu() for k, v in model.state_dict().items()}
    return write_checkpoint(folder, tensors, "mamba4net-student", model.cfg,
                            {"task": "abr", "dtype": str(dtype).removeprefix("torch."), **extra})


def load_student(folder: str | Path = PRETRAINED_ABR, device: str = "cpu") -> tuple[ABRStudent, dict]:
    weights, cfg, meta = read_checkpoint(folder, StudentConfig, "python -m distill.abr student",
                                         kind="mamba4net-student", task="abr")
    model = ABRStudent(cfg)
    load_weights(model, {k: v.float() for k, v in weights.items()}, folder)
    return model.to(device).eval(), meta


class StudentPolicy(BatchPolicy):
    """The student as a :class:`~agents.base.Policy`: per row the return-to-go, the previous action and
    the recurrent state; a row with ``info["step"] == 0`` starts over (its state is zeroed in the step)."""

    name = "student"

    def __init__(self, model: ABRStudent, target_return: float, device: str = "cpu", fused: bool | None = None):
        """``fused``: step with the Triton kernels of :mod:`agents.hybrid.kernels` (default: when the
        device is CUDA and triton is installed); otherwise the PyTorch step."""
        from .hybrid.kernels import available

        self.model = model.eval()
        self.target_return = float(target_return)
        self.device = device
        self.fused = available(device) and torch.device(device).type == "cuda" if fused is None else bool(fused)
        self.reset()

    def reset(self, seed=None):
        super().reset(seed)
        self.state = None
        self.batch = -1

    @torch.no_grad()
    def act_batch(self, obs, info):
        obs = np.asarray(obs, dtype=np.float32)
        B = obs.shape[0]
        if B != self.batch:
            self.batch = B
            if self.fused:
                from .hybrid.kernels import FusedStep

                self.state = FusedStep(self.model, B)
            else:
                self.state = self.model.init_state(B, self.device)
            self.rtg = np.zeros(B, np.float32)
            self.prev = np.full(B, self.model.cfg.levels, np.int64)
        step = np.asarray(info["step"], dtype=np.int64)
        new = step == 0
        self.rtg = np.where(new, self.target_return, self.rtg - np.where(new, 0.0, np.asarray(info.get("qoe", 0.0))))
        self.prev = np.where(new, self.model.cfg.levels, self.prev)
        dev = self.device
        args = (torch.as_tensor(self.rtg, dtype=torch.float32, device=dev), torch.as_tensor(obs, device=dev),
                torch.as_tensor(self.prev, device=dev), torch.as_tensor(step, device=dev))
        keep = torch.as_tensor(~new, dtype=torch.float32, device=dev)
        if self.fused:
            logits = self.state.step(*args, keep)
        else:
            logits = self.model.step(*args, self.state, keep)
        act = logits.argmax(-1).cpu().numpy()
        self.prev = act.astype(np.int64)
        return act
