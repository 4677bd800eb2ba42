"""Viewport-prediction evaluation: any policy over the windows of a split, MAE/RMSE per horizon step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.vp import angular_error
from traces.viewport import Windows


@dataclass
class VPRun:
    agent: str
    errors: np.ndarray  # (N, future, 3) absolute angular errors, degrees

    def summary(self) -> dict[str, float]:
        e = self.errors
        per_step = e.mean(axis=(0, 2))
        return {
            "windows": int(len(e)),
            "mae": float(e.mean()),
            "rmse": float(np.sqrt((e ** 2).mean())),
            "mae_roll": float(e[..., 0].mean()),
            "mae_pitch": float(e[..., 1].mean()),
            "mae_yaw": float(e[..., 2].mean()),
            "mae_1s": float(per_step[:5].mean()),
            "mae_4s_step": float(per_step[-1]),
        }

    @property
    def mae_per_step(self) -> np.ndarray:
        return self.errors.mean(axis=(0, 2))

    @property
    def rmse_per_step(self) -> np.ndarray:
        return np.sqrt((self.errors ** 2).mean(axis=(0, 2)))


def evaluate_vp(policy, windows: Windows, batch_size: int = 4096) -> VPRun:
    """Predict every window (observation = time + angles of the history) and score it."""
    obs = np.concatenate([windows.history_t[..., None], windows.history], axis=-1).astype(np.float32)
    policy.reset(seed=0)
    preds = []
    for i in range(0, len(obs), batch_size):
        info = {"step": np.zeros(min(batch_size, len(obs) - i), dtype=np.int64)}
        preds.append(np.asarray(policy.act_batch(obs[i:i + batch_size], info), dtype=np.float64))
    pred = np.concatenate(preds) if preds else np.zeros_like(windows.future)
    return VPRun(getattr(policy, "name", type(policy).__name__), angular_error(pred, windows.future))
