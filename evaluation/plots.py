"""Plots for the comparison CLI (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=130, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def plot_abr(runs, out_dir: Path, title: str = "") -> list[Path]:
    """Per-trace QoE CDF per agent, and a bar chart of the QoE parts."""
    plt = _plt()
    out_dir = Path(out_dir)
    paths = []

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for run in runs:
        q = np.sort(run.per_trace_qoe)
        ax.step(q, np.arange(1, len(q) + 1) / len(q), where="post", label=f"{run.agent} ({q.mean():.3f})")
    ax.set_xlabel("per-trace mean QoE")
    ax.set_ylabel("CDF over traces")
    ax.set_title(f"ABR QoE per trace {title}".strip())
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    paths.append(_save(fig, out_dir / "abr_qoe_cdf.png"))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    names = [r.agent for r in runs]
    x = np.arange(len(runs))
    w = 0.2
    parts = [("qoe_bitrate", "bitrate (Mbps)", 1), ("qoe_rebuffer", "− rebuffer penalty", -1),
             ("qoe_smooth", "− smoothness penalty", -1), ("qoe", "QoE", 1)]
    for i, (key, label, sign) in enumerate(parts):
        vals = [sign * r.records[key].mean() for r in runs]
        ax.bar(x + (i - 1.5) * w, vals, w, label=label)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x, names, rotation=20)
    ax.set_ylabel("mean per chunk")
    ax.set_title(f"ABR QoE parts {title}".strip())
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=4, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    paths.append(_save(fig, out_dir / "abr_qoe_parts.png"))
    plt.close(fig)
    return paths


def plot_vp(runs, out_dir: Path, title: str = "") -> Path:
    """MAE per prediction step (0.2 s ... 4 s) for every agent."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for run in runs:
        per = run.mae_per_step
        ax.plot(np.arange(1, len(per) + 1) * 0.2, per, marker="o", ms=3, label=f"{run.agent} ({run.errors.mean():.2f}°)")
    ax.set_xlabel("prediction horizon (s)")
    ax.set_ylabel("MAE (degrees, yaw wrapped)")
    ax.set_title(f"Viewport prediction — {title}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path = _save(fig, Path(out_dir) / "vp_mae_per_step.png")
    plt.close(fig)
    return path


def plot_cjs(runs, out_dir: Path) -> Path:
    """CDF of job completion times (all jobs of all seeds) per scheduler, log x."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for run in runs:
        j = np.sort(np.concatenate(run.jct_s))
        ax.step(j, np.arange(1, len(j) + 1) / len(j), where="post",
                label=f"{run.agent} (mean {np.mean([x.mean() for x in run.jct_s]):.1f} s)")
    ax.set_xscale("log")
    ax.set_xlabel("job completion time (s)")
    ax.set_ylabel("CDF over jobs")
    ax.set_title("CJS: JCT per scheduler (TPC-H, 50 executors)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    path = _save(fig, Path(out_dir) / "cjs_jct_cdf.png")
    plt.close(fig)
    return path
