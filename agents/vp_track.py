"""TRACK-style viewport predictor: an LSTM encoder-decoder on the head-movement history.

After TRACK (Rondón et al., TPAMI 2021) without its saliency branch: the encoder reads the history
as offsets from the last sample and per-step displacements; the decoder unrolls 20 steps, each
predicting the next displacement from the previous one. Angles are yaw-unwrapped before and wrapped
after. Trained on NetLLM's Jin2022 train split with early stopping on the valid split:

    python -m agents.vp_track --out agents/pretrained/vp_track          # full budget, CPU ~minutes
    python -m agents.vp_track --epochs 1 --hidden 16 --out /tmp/t        # smoke test

Checkpoint: ``model.safetensors`` + ``config.json`` (architecture, data, metrics, code version).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from traces.viewport import FUTURE, HISTORY, unwrap_yaw, wrap_deg

from .base import BatchPolicy
from .checkpoint import parse_dataclass_args, read_checkpoint, write_checkpoint

PRETRAINED = Path(__file__).resolve().parent / "pretrained" / "vp_track"


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
    tensors, cfg, meta = read_checkpoint(folder, TrackConfig, "python -m agents.vp_track --out DIR")
    model = TrackLSTM(cfg)
    model.load_state_dict(tensors)
    model.eval()
    return model, meta


class TrackVP(BatchPolicy):
    """The TRACK-style predictor as a :class:`~agents.base.Policy` (loads the shipped checkpoint by default)."""

    name = "track"

    def __init__(self, folder: str | Path = PRETRAINED):
        self.model, self.meta = load_checkpoint(folder)

    def act_batch(self, obs, info=None):
        return predict_degrees(self.model, np.asarray(obs, dtype=np.float64)[..., 1:]).astype(np.float32)


# ------------------------------------------------------------------------------------- training

@dataclass
class Args:
    out: str = "agents/pretrained/vp_track"  # checkpoint folder
    epochs: int = 60  # upper bound; early stopping usually ends sooner
    patience: int = 6  # epochs without a better valid MAE before stopping
    batch_size: int = 256
    lr: float = 1e-3
    hidden: int = 128
    layers: int = 2
    seed: int = 0
    threads: int = 0  # torch CPU threads (0 = torch's default)


def _targets(windows) -> tuple[np.ndarray, np.ndarray]:
    """Unwrap history+future jointly; return (history, future offsets from the last history sample)."""
    seq = unwrap_yaw(np.concatenate([windows.history, windows.future], axis=1))
    h = windows.history.shape[1]
    return seq[:, :h], seq[:, h:] - seq[:, h - 1:h]


def train(args: Args, train_w, valid_w, log=print) -> tuple[TrackLSTM, dict]:
    from envs.vp import mae

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    model = TrackLSTM(TrackConfig(hidden=args.hidden, layers=args.layers))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    xh, yo = _targets(train_w)
    xh_t, yo_t = torch.as_tensor(xh, dtype=torch.float32), torch.as_tensor(yo, dtype=torch.float32)
    best, best_state, bad, history = np.inf, None, 0, []
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        perm = rng.permutation(len(xh))
        total = 0.0
        for i in range(0, len(perm), args.batch_size):
            idx = torch.as_tensor(perm[i:i + args.batch_size])
            loss = (model(xh_t[idx]) - yo_t[idx]).abs().mean()  # L1 in degrees: the metric we report
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        valid_mae = mae(predict_degrees(model, valid_w.history), valid_w.future)
        history.append({"epoch": epoch + 1, "train_l1": total / len(perm), "valid_mae": valid_mae})
        log(f"epoch {epoch + 1:3d}  train L1 {total / len(perm):7.3f}°  valid MAE {valid_mae:7.3f}°")
        if valid_mae < best - 1e-4:
            best, bad = valid_mae, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= args.patience:
                break
    model.load_state_dict(best_state)
    return model, {"valid_mae": best, "epochs_run": len(history), "train_seconds": time.perf_counter() - t0,
                   "history": history}


def main(argv=None) -> None:
    args = parse_dataclass_args(Args, argv, "python -m agents.vp_track", __doc__)
    from traces.viewport import load_jin2022_split, make_windows

    train_w = make_windows(load_jin2022_split("train"))
    valid_w = make_windows(load_jin2022_split("valid"))
    model, metrics = train(args, train_w, valid_w)
    from envs.vp import mae

    test_w = make_windows(load_jin2022_split("test"))
    metrics["test_mae"] = mae(predict_degrees(model, test_w.history), test_w.future)
    from distill.pool import _code_version

    path = save_checkpoint(model, args.out, {"data": "jin2022 (NetLLM split)", "args": asdict(args),
                                             "metrics": metrics, "code_version": _code_version(),
                                             "created": time.strftime("%Y-%m-%d %H:%M:%S")})
    print(f"wrote {path}: valid MAE {metrics['valid_mae']:.3f}°, test MAE {metrics['test_mae']:.3f}° "
          f"({metrics['epochs_run']} epochs, {metrics['train_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
