"""Viewport-prediction error, written once: per-axis absolute error in degrees, yaw wrapped."""

from __future__ import annotations

import numpy as np


def angular_error(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``|pred − truth|`` per axis (roll, pitch, yaw; last axis of size 3), in degrees.

    Yaw differences wrap around the ±180° seam: 179° vs −179° is 2° apart. Roll and pitch do not
    wrap (they stay within ±90° in head-movement data; NetLLM's metric wraps every axis, which gives
    the same numbers there).
    """
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if pred.shape != truth.shape or pred.shape[-1] != 3:
        raise ValueError(f"pred and truth must have one shape (..., 3); got {pred.shape} and {truth.shape}")
    err = np.abs(pred - truth)
    yaw = err[..., 2] % 360.0
    err[..., 2] = np.minimum(yaw, 360.0 - yaw)
    return err


def mae(pred, truth) -> float:
    return float(angular_error(pred, truth).mean())


def rmse(pred, truth) -> float:
    return float(np.sqrt((angular_error(pred, truth) ** 2).mean()))
