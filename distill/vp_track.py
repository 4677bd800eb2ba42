"""TRACK-style viewport predictor training (the model: :mod:`agents.vp_track`).

    python -m distill.vp track --out agents/pretrained/vp_track          # full budget, CPU ~minutes
    python -m distill.vp track --epochs 1 --hidden 16 --out /tmp/t        # smoke test

L1 in degrees on NetLLM's Jin2022 train split, early stopping on the valid split; the test MAE is
measured once at the end and recorded in the checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from agents.checkpoint import parse_dataclass_args
from agents.vp_track import TrackConfig, TrackLSTM, predict_degrees, save_checkpoint
from envs.vp import mae
from traces.viewport import load_jin2022_split, make_windows, unwrap_yaw

from . import EarlyStopping


@dataclass
class TrackTraining:
    out: str = "agents/pretrained/vp_track"  # checkpoint folder
    epochs: int = 60  # upper bound; early stopping usually ends sooner
    patience: int = 6  # epochs without a better valid MAE before stopping
    batch_size: int = 256
    lr: float = 1e-3
    hidden: int = 128
    layers: int = 2
    seed: int = 0
    threads: int = 0  # torch CPU threads (0 = torch's default)


def offsets_from_last(windows) -> tuple[np.ndarray, np.ndarray]:
    """Unwrap history+future jointly; return (history, future offsets from the last history sample)."""
    seq = unwrap_yaw(np.concatenate([windows.history, windows.future], axis=1))
    h = windows.history.shape[1]
    return seq[:, :h], seq[:, h:] - seq[:, h - 1:h]


def train(args: TrackTraining, train_w, valid_w, log=print) -> tuple[TrackLSTM, dict]:
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    model = TrackLSTM(TrackConfig(hidden=args.hidden, layers=args.layers))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    xh, yo = offsets_from_last(train_w)
    xh_t, yo_t = torch.as_tensor(xh, dtype=torch.float32), torch.as_tensor(yo, dtype=torch.float32)
    stop, history = EarlyStopping(args.patience), []
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
        if stop.update(valid_mae, model.state_dict):
            break
    model.load_state_dict(stop.state)
    return model, {"valid_mae": stop.best, "epochs_run": len(history), "train_seconds": time.perf_counter() - t0,
                   "history": history}


def main(argv=None) -> None:
    args = parse_dataclass_args(TrackTraining, argv, "python -m distill.vp track", __doc__)

    train_w = make_windows(load_jin2022_split("train"))
    valid_w = make_windows(load_jin2022_split("valid"))
    model, metrics = train(args, train_w, valid_w)
    test_w = make_windows(load_jin2022_split("test"))
    metrics["test_mae"] = mae(predict_degrees(model, test_w.history), test_w.future)
    path = save_checkpoint(model, args.out, {"data": "jin2022 (NetLLM split)", "args": asdict(args), "metrics": metrics})
    print(f"wrote {path}: valid MAE {metrics['valid_mae']:.3f}°, test MAE {metrics['test_mae']:.3f}° "
          f"({metrics['epochs_run']} epochs, {metrics['train_seconds']:.0f} s)")
