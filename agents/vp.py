"""Viewport-prediction baselines without learning: per-axis linear regression and constant velocity.

Both work on the yaw-unwrapped history (so a head turning across ±180° extrapolates smoothly) and
wrap their yaw predictions back to [-180, 180). Observations are ``(B, 10, 4)``: time_s, roll,
pitch, yaw; predictions ``(B, 20, 3)`` degrees.
"""

from __future__ import annotations

import numpy as np

from traces.viewport import FUTURE, unwrap_yaw, wrap_deg

from .base import BatchPolicy


def _finish(pred: np.ndarray) -> np.ndarray:
    pred = pred.copy()
    pred[..., 2] = wrap_deg(pred[..., 2])
    return pred.astype(np.float32)


class StaticVP(BatchPolicy):
    """The head stays where it is: every future sample = the last observed one (a floor to beat)."""

    name = "static"

    def __init__(self, future: int = FUTURE):
        self.future = future

    def act_batch(self, obs, info=None):
        last = np.asarray(obs, dtype=np.float64)[:, -1:, 1:]
        return _finish(np.repeat(last, self.future, axis=1))


class VelocityVP(BatchPolicy):
    """Constant angular velocity: ``v = (x[-1] − x[0]) / (h − 1)``, ``x̂[k] = x[-1] + k·v`` (NetLLM's Velocity)."""

    name = "velocity"

    def __init__(self, future: int = FUTURE):
        self.future = future

    def act_batch(self, obs, info=None):
        hist = unwrap_yaw(np.asarray(obs, dtype=np.float64)[..., 1:])  # (B, h, 3)
        v = (hist[:, -1] - hist[:, 0]) / (hist.shape[1] - 1)
        k = np.arange(1, self.future + 1)[None, :, None]
        return _finish(hist[:, -1:, :] + k * v[:, None, :])


class LinearRegressionVP(BatchPolicy):
    """Per-axis least-squares line through the history (against sample index), extrapolated."""

    name = "lr"

    def __init__(self, future: int = FUTURE):
        self.future = future

    def act_batch(self, obs, info=None):
        hist = unwrap_yaw(np.asarray(obs, dtype=np.float64)[..., 1:])  # (B, h, 3)
        h = hist.shape[1]
        x = np.arange(h, dtype=np.float64)
        xc = x - x.mean()
        slope = np.einsum("t,btc->bc", xc, hist - hist.mean(axis=1, keepdims=True)) / (xc @ xc)
        intercept = hist.mean(axis=1) - slope * x.mean()
        xf = np.arange(h, h + self.future, dtype=np.float64)[None, :, None]
        return _finish(intercept[:, None, :] + slope[:, None, :] * xf)
