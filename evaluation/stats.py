"""Paired comparisons: mean differences over matched units (traces, workloads) with percentile bootstrap
intervals, and wins/ties/losses."""

from __future__ import annotations

import numpy as np

RESAMPLES = 10_000


def bootstrap_mean_ci(values, level: float = 0.95, resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` (units resampled with replacement)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return float(v.mean()), float(v.mean())
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(axis=1)
    lo, hi = np.percentile(means, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def paired(a, b, higher_is_better: bool = True, tol: float = 1e-9) -> dict:
    """``a`` against ``b`` over matched units: the mean difference a − b, its 95% bootstrap interval, whether
    the interval includes zero, and how many units ``a`` wins, ties and loses."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    lo, hi = bootstrap_mean_ci(d)
    better = d > tol if higher_is_better else d < -tol
    worse = d < -tol if higher_is_better else d > tol
    return {"diff": float(d.mean()), "diff_ci_low": lo, "diff_ci_high": hi, "ci_includes_zero": bool(lo <= 0 <= hi),
            "wins": int(better.sum()), "ties": int((~better & ~worse).sum()), "losses": int(worse.sum())}
