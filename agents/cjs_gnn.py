"""Decima-style GNN scheduler for ``mamba4net/CJS-v0``: the model and its policy (training:
:mod:`distill.cjs_imitation`, ``python -m distill.cjs gnn``).

Model (after Decima, Mao et al. SIGCOMM 2019): stage features are embedded, then messages flow from
child stages to parents for ``rounds`` steps (``h = h0 + f(A·h)``: a parent sees its descendants'
work, a learned critical path); a job summary pools its stages with the job features; a global
summary pools the jobs. The stage head scores every stage slot (masked softmax, plus a "wait" score
from the global summary); the limit head scores parallelism limits 1..E for the chosen stage's job
(masked to limits above its executors).

:class:`ModelScheduler` turns any model with this forward contract (observation dict → stage logits
(B, J·S + 1), limit logits (B, J, E)) into a batched :class:`~agents.base.Policy`: the GNN, and the LLM
teacher and Mamba student of :mod:`agents.cjs_llm`. :func:`trim` and :func:`pad_stack` cut
observations to their present jobs and batch them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .base import BatchPolicy
from .checkpoint import PRETRAINED_DIR, load_weights, read_checkpoint, write_checkpoint

PRETRAINED = PRETRAINED_DIR / "cjs_gnn"
OBS_KEYS = ("node_features", "job_features", "adjacency", "stage_mask", "limit_mask")


@dataclass(frozen=True)
class GNNConfig:
    hidden: int = 32  # embedding width (Decima uses 16–32)
    rounds: int = 8  # message-passing steps ≥ the depth of TPC-H DAGs, so sinks reach sources
    node_features: int = 5
    job_features: int = 6
    num_executors: int = 50
    max_stages: int = 20  # stage slots per job (the env's max_stages)
    stage_position: bool = True  # a learned embedding of the stage's slot (heuristics break ties by it)
    wait_from_jobs: bool = True  # the "wait" score also sees each job (wait when no job wants more)


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.LeakyReLU(), nn.Linear(h, o))


class DAGEncoder(nn.Module):
    """Stage embeddings with child→parent message passing, and a summary per job (Decima's first two
    levels). Shared by :class:`DecimaGNN` and the LLM / Mamba schedulers of :mod:`agents.cjs_llm`."""

    def __init__(self, hidden: int, rounds: int, node_features: int, job_features: int, max_stages: int,
                 stage_position: bool = True):
        super().__init__()
        H = hidden
        self.rounds = rounds
        self.node_in = _mlp(node_features, H, H)
        self.stage_pos = nn.Embedding(max_stages, H) if stage_position else None
        self.msg = _mlp(H, H, H)
        self.job = _mlp(H + job_features, H, H)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage embeddings (B, J, S, H) and job summaries (B, J, H) (zero for absent jobs)."""
        x = obs["node_features"]  # (B, J, S, F)
        adj = obs["adjacency"].to(x.dtype)  # (B, J, S, S): [i, j] = i is a parent of j
        jobf = obs["job_features"]  # (B, J, G)
        S = x.shape[2]
        live = (x[..., 0] > 0) | (x[..., 2] > 0) | (x[..., 3] > 0)  # (B, J, S) stages with work left
        h0 = self.node_in(x)
        if self.stage_pos is not None:
            h0 = h0 + self.stage_pos.weight[:S]
        h0 = h0 * live[..., None]
        h = h0
        for _ in range(self.rounds):
            h = h0 + self.msg(adj @ h) * live[..., None]  # children -> parents
        y = self.job(torch.cat([h.sum(2), jobf], -1)) * jobf[..., 0:1]  # absent jobs -> 0
        return h, y


class DecimaGNN(nn.Module):
    def __init__(self, cfg: GNNConfig = GNNConfig()):
        super().__init__()
        self.cfg = cfg
        H = cfg.hidden
        self.enc = DAGEncoder(H, cfg.rounds, cfg.node_features, cfg.job_features, cfg.max_stages, cfg.stage_position)
        self.glob = _mlp(H, H, H)
        self.stage_head = _mlp(3 * H + cfg.node_features, H, 1)
        self.wait_head = _mlp(H, H, 1)
        self.wait_job = _mlp(2 * H, H, 1) if cfg.wait_from_jobs else None
        self.limit_head = _mlp(2 * H, H, cfg.num_executors)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns masked stage logits (B, J·S + 1) and limit logits (B, J, E) (unmasked)."""
        x = obs["node_features"]
        B, J, S, _ = x.shape
        h, y = self.enc(obs)
        present = obs["job_features"][..., 0:1]  # (B, J, 1)
        z = self.glob(y.sum(1))  # (B, H)
        stage_in = torch.cat([h, y[:, :, None].expand(-1, -1, S, -1), z[:, None, None].expand(-1, J, S, -1), x], -1)
        stage = self.stage_head(stage_in).reshape(B, J * S)
        wait = self.wait_head(z)
        if self.wait_job is not None:  # minus a soft maximum over jobs of how much each wants executors
            want = self.wait_job(torch.cat([y, z[:, None].expand(-1, J, -1)], -1))[..., 0]  # (B, J)
            wait = wait - torch.logsumexp(want.masked_fill(present[..., 0] == 0, -1e9), -1, keepdim=True)
        logits = torch.cat([stage, wait], -1)
        logits = logits.masked_fill(obs["stage_mask"] == 0, -1e9)
        limits = self.limit_head(torch.cat([y, z[:, None].expand(-1, J, -1)], -1))
        return logits, limits


def to_tensors(obs: dict, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    out = {k: torch.as_tensor(np.asarray(obs[k]), device=device) for k in OBS_KEYS}
    # add the batch axis to single observations
    if out["node_features"].dim() == 3:
        out = {k: v[None] for k, v in out.items()}
    out["node_features"] = out["node_features"].float()
    out["job_features"] = out["job_features"].float()
    return out


def trim(obs: dict, slots: np.ndarray | None = None):
    """Keep only the job slots up to the last present job (the rest are padding): the GNN's cost
    scales with the slots it sees. Stage-slot indices below the cut are unchanged; the wait action
    moves from ``J·S`` to ``K·S``. Returns the trimmed observation and the remapped ``slots``."""
    present = np.asarray(obs["job_features"])[..., 0] > 0
    K = int(np.flatnonzero(present.reshape(-1, present.shape[-1]).any(0)).max(initial=0)) + 1
    J, S = np.asarray(obs["node_features"]).shape[-3:-1]
    out = {k: np.asarray(obs[k])[..., :K, :, :] if k in ("node_features", "adjacency")
           else np.asarray(obs[k])[..., :K, :] if k in ("job_features", "limit_mask") else None for k in OBS_KEYS}
    mask = np.asarray(obs["stage_mask"])
    out["stage_mask"] = np.concatenate([mask[..., :K * S], mask[..., J * S:]], axis=-1)
    if slots is not None:
        slots = np.where(slots == J * S, K * S, slots)
    return out, slots

class ModelScheduler(BatchPolicy):
    """A trained scheduler as a :class:`~agents.base.Policy`: samples (``greedy=False``) or takes the
    mode. Any model with :class:`DecimaGNN`'s forward contract works (the GNN, or the LLM teacher and
    Mamba student of :mod:`agents.cjs_llm`); :meth:`act_list` decides for several environments in one
    forward pass (observations trimmed to their present jobs, padded to the widest)."""

    name = "decima-gnn"

    def __init__(self, folder: str | Path | None = PRETRAINED, model: nn.Module | None = None, greedy: bool = True,
                 seed: int = 0, device: str | torch.device = "cpu", forward=None, name: str | None = None):
        if model is None:
            model, self.meta = load_checkpoint(folder)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.greedy = greedy
        self.forward = forward or self.model  # e.g. a CUDA-graph runner around the model
        self.gen = torch.Generator().manual_seed(seed)
        if name:
            self.name = name

    def reset(self, seed=None):
        super().reset(seed)
        if seed is not None:
            self.gen.manual_seed(int(seed))

    def act(self, obs, info=None):
        return self.act_list([obs])[0]

    @torch.no_grad()
    def act_list(self, obs_list: list[dict], infos=None) -> list[np.ndarray]:
        J, S = np.asarray(obs_list[0]["node_features"]).shape[:2]
        arrays, _ = pad_stack([trim(o)[0] for o in obs_list])
        K = arrays["job_features"].shape[1]
        o = to_tensors(arrays, self.device)
        logits, lim = self.forward(o)
        logits = logits.float()
        if self.greedy:
            slot = logits.argmax(-1)
        else:
            slot = torch.multinomial(torch.softmax(logits.cpu(), -1), 1, generator=self.gen)[:, 0].to(logits.device)
        rows = torch.arange(len(obs_list), device=logits.device)
        job = torch.clamp(slot // S, max=K - 1)
        ll = lim[rows, job].float().masked_fill(o["limit_mask"][rows, job] == 0, -1e9)
        if self.greedy:
            limit = ll.argmax(-1)
        else:
            limit = torch.multinomial(torch.softmax(ll.cpu(), -1), 1, generator=self.gen)[:, 0]
        slot, limit = slot.cpu().numpy(), limit.cpu().numpy()
        return [np.asarray([J * S, 0]) if sl == K * S else np.asarray([sl, li]) for sl, li in zip(slot, limit)]

def save_checkpoint(model: DecimaGNN, folder: str | Path, extra: dict) -> Path:
    return write_checkpoint(folder, {k: v.detach().cpu() for k, v in model.state_dict().items()}, "decima-gnn",
                            model.cfg, extra)


def load_checkpoint(folder: str | Path = PRETRAINED) -> tuple[DecimaGNN, dict]:
    tensors, cfg, meta = read_checkpoint(folder, GNNConfig, "python -m distill.cjs gnn --out DIR", kind="decima-gnn")
    model = DecimaGNN(cfg)
    load_weights(model, tensors, folder)
    return model.eval(), meta

def pad_stack(obs_list: list[dict]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Batch trimmed observations (each cut at its own last present job): pad them to the batch's
    widest (absent jobs, the wait option moved to the end); also returns each one's width."""
    widths = np.asarray([o["job_features"].shape[0] for o in obs_list])
    K = int(widths.max())
    S = obs_list[0]["node_features"].shape[1]
    B = len(obs_list)
    out = {}
    for k in ("node_features", "adjacency", "job_features", "limit_mask"):
        first = np.asarray(obs_list[0][k])
        out[k] = buf = np.zeros((B, K, *first.shape[1:]), dtype=first.dtype)  # absent jobs are zeros
        for i, o in enumerate(obs_list):
            buf[i, : o[k].shape[0]] = o[k]
    mask = obs_list[0]["stage_mask"]
    out["stage_mask"] = sm = np.zeros((B, K * S + 1), dtype=mask.dtype)
    for i, (o, w) in enumerate(zip(obs_list, widths)):
        sm[i, : w * S] = o["stage_mask"][:-1]
        sm[i, -1] = o["stage_mask"][-1]
    return out, widths
