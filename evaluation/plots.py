"""Plots for the comparison CLI (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

import os
import re
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


def plot_abr(runs, out_dir: Path, title: str = "", suffix: str = "") -> list[Path]:
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
    paths.append(_save(fig, out_dir / f"abr_qoe_cdf{suffix}.png"))
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
    paths.append(_save(fig, out_dir / f"abr_qoe_parts{suffix}.png"))
    plt.close(fig)
    return paths


def plot_abr_session(runs, out_dir: Path, title: str = "", suffix: str = "") -> Path:
    """Mean QoE, bitrate and buffer by chunk index over the session, one line per agent."""
    plt = _plt()
    fig, axes = plt.subplots(3, 1, figsize=(6.4, 7.2), sharex=True)
    for run in runs:
        k = np.arange(1, run.records["qoe"].shape[1] + 1)
        axes[0].plot(k, run.records["qoe"].mean(0), label=run.agent, lw=1.2)
        axes[1].plot(k, run.records["bitrate_kbps"].mean(0) / 1000.0, lw=1.2)
        axes[2].plot(k, run.records["buffer_s"].mean(0), lw=1.2)
    for ax, label in zip(axes, ("mean QoE", "mean bitrate (Mbps)", "mean buffer (s)")):
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("chunk index")
    axes[0].set_title(f"ABR over the session {title}".strip())
    axes[0].legend(fontsize=7, ncol=3)
    path = _save(fig, Path(out_dir) / f"abr_session{suffix}.png")
    plt.close(fig)
    return path


def plot_abr_timeline(runs, trace, index: int, out_dir: Path, title: str = "", suffix: str = "") -> Path:
    """One trace: its bandwidth over time, and each agent's chosen bitrate, buffer and stalls by chunk."""
    plt = _plt()
    fig, axes = plt.subplots(4, 1, figsize=(6.4, 8.4))
    axes[0].step(trace.times_s, trace.mbps, where="pre", color="k", lw=1)
    axes[0].set_xlabel("trace time (s)")
    axes[0].set_ylabel("bandwidth (Mbps)")
    for run in runs:
        k = np.arange(1, run.records["qoe"].shape[1] + 1)
        axes[1].step(k, run.records["bitrate_kbps"][index] / 1000.0, where="mid", label=run.agent, lw=1.1)
        axes[2].plot(k, run.records["buffer_s"][index], lw=1.1)
        axes[3].bar(k, run.records["rebuffer_s"][index], alpha=0.5)
    for ax, label in zip(axes[1:], ("bitrate (Mbps)", "buffer (s)", "stall (s)")):
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("chunk index")
    axes[0].set_title(f"ABR timeline: {trace.name} {title}".strip(), fontsize=9)
    axes[1].legend(fontsize=7, ncol=3)
    path = _save(fig, Path(out_dir) / f"abr_timeline{suffix}.png")
    plt.close(fig)
    return path


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


def plot_bench(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, m in result["models"].items():
        by_mode: dict[str, list] = {}
        for key, run in m["runs"].items():
            if "context_decisions" in run:
                continue
            if run.get("failed"):
                continue
            mode = re.sub(r"(^|-)b\d+", "", key).strip("-")  # the key without its batch size
            by_mode.setdefault(mode, []).append((run["batch"], run["decisions_per_s"]))
        for mode, pts in by_mode.items():
            pts.sort()
            ax.plot(*zip(*pts), marker="o", label=f"{name} {mode}")
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="decisions / s", title=result["device"])
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "throughput_vs_batch.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, m in result["models"].items():
        pts: dict[tuple, list] = {}
        for key, run in m["runs"].items():
            if "context_decisions" in run:
                pts.setdefault((key.split("-b")[0], run["batch"]), []).append(
                    (run["context_decisions"], run["latency_ms_median"]))
        for (mode, b), p in pts.items():
            p.sort()
            ax.plot(*zip(*p), marker="o", label=f"{name} {mode} b{b}")
        s = [(run["batch"], run["latency_ms_median"]) for k, run in m["runs"].items() if "context_decisions" not in run]
        for b, lat in s:
            if name == "student" or "window" in str(m["runs"]):
                ax.axhline(lat, ls=":", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="episode length so far (decisions)", ylabel="latency per decision (ms)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "latency_vs_horizon.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3))
    names = list(result["models"])
    ax.barh(names, [result["models"][n]["param_bytes"] / 2**20 for n in names])
    ax.set(xscale="log", xlabel=f"parameter storage at {result['dtype']} (MiB)")
    fig.tight_layout()
    fig.savefig(out / "storage.png", dpi=120)
    plt.close(fig)
