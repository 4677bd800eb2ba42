"""Checks of what an agent hands an env: one clear ``ValueError`` (or Gymnasium's ``ResetNeeded``) instead
of a silent cast, a reshape or a bare ``IndexError``."""

from __future__ import annotations

import numbers

import numpy as np
from gymnasium.error import ResetNeeded


def integer(value, low: int, high: int, what: str) -> int:
    """``value`` as an int in ``[low, high)``: an int or a numpy integer (0-d arrays too), never a bool,
    a float or a string."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{what} must be an integer in [{low}, {high}), got {value!r} ({type(value).__name__})")
    value = int(value)
    if not low <= value < high:
        raise ValueError(f"{what} must be in [{low}, {high}), got {value}")
    return value


def integers(values, shape: tuple[int, ...], low: int, high: int, what: str) -> np.ndarray:
    """An integer array of exactly ``shape`` with every entry in ``[low, high)``."""
    arr = np.asarray(values)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must be integers, got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {arr.shape}")
    if np.any((arr < low) | (arr >= high)):
        raise ValueError(f"{what} must be in [{low}, {high}), got {arr.min()}..{arr.max()}")
    return arr.astype(np.int64)


def finite(values, shape: tuple[int, ...], what: str) -> np.ndarray:
    """A float array of exactly ``shape`` (no reshaping), every entry finite."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers of shape {shape}, got {type(values).__name__}") from None
    if arr.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be finite, got {int((~np.isfinite(arr)).sum())} NaN or infinite entries")
    return arr


def not_done(done: bool, env: str) -> None:
    if done:
        raise ResetNeeded(f"{env}: step() after the episode ended; call reset() first")
