"""What ``evaluation.compare`` needs to know of each task: its data, how one agent is evaluated on it,
its tables and files, and its plots. :func:`evaluation.compare.run_task` runs any of them the same way."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import report


@dataclass(frozen=True)
class TaskSpec:
    load: Callable  # load(args) -> data
    work: Callable  # work(data) -> progress units per agent (0: no bar)
    unit: str
    evaluate: Callable  # evaluate(name, data, args, device, progress) -> run
    report: Callable  # report(runs, data, args, out) -> (result dict, files written)
    plot: Callable  # plot(runs, data, out) -> paths
    finalize_agents: Callable = lambda names, args: names  # e.g. ABR adds the offline optimum


# --------------------------------------------------------------------------------------------- ABR

def _abr_load(args):
    from traces import DatasetNotFoundError, load_abr_traces, load_abr_video, synthetic_trace_set, synthetic_video

    name = args.traces or "fcc-test"
    try:
        traces = load_abr_traces(name)
    except DatasetNotFoundError as exc:
        if name != "fcc-test":  # the user asked for something specific: fail loudly
            raise
        print(f"NOTE: {exc}\nNOTE: running on 20 synthetic Markov traces instead (not comparable to published "
              "numbers).", file=sys.stderr)
        traces = synthetic_trace_set(np.random.default_rng(0), count=20)
    try:
        video = load_abr_video(args.video)
    except DatasetNotFoundError as exc:
        if args.video != "video1":
            raise
        print(f"NOTE: video {args.video!r} not found ({exc.__class__.__name__}); using a synthetic VBR video.",
              file=sys.stderr)
        video = synthetic_video(np.random.default_rng(0))
    clean = None
    if traces.name == "fcc-test":  # the fcc-test traces that are not also in fcc-train
        from traces import duplicate_mask

        try:
            clean = ~duplicate_mask("fcc-test", "fcc-train")
        except FileNotFoundError:
            clean = None
    return {"traces": traces, "video": video, "clean": clean}


def _abr_agents(names, args):
    names = list(names)
    if not args.no_optimum and "offline-optimal" not in names:
        names.append("offline-optimal")  # every row is reported as a fraction of it
    if args.no_optimum and "offline-optimal" in names:
        names.remove("offline-optimal")
    return names


def _abr_work(data):
    return (data["video"].num_chunks - 1) * len(data["traces"])


def _abr_evaluate(name, data, args, device, progress):
    from agents import make_agent

    from .abr import evaluate_abr

    traces, video = data["traces"], data["video"]
    if args.ray is not None:
        from .parallel import evaluate_abr_ray

        run = evaluate_abr_ray(name, traces, video, address=args.ray or None, workers=args.workers)
        progress(_abr_work(data))
        return run
    agent = make_agent("abr", name, video=video, traces=traces, progress=not args.quiet, workers=args.workers)
    return evaluate_abr(agent, traces, video, progress=progress)


def _abr_report(runs, data, args, out):
    traces, video, clean = data["traces"], data["video"], data["clean"]
    optimum = next((r for r in runs if r.agent == "offline-optimal"), None)

    def table(mask):
        rows = [{"agent": r.agent, **r.summary(mask)} for r in runs]
        best = None if optimum is None else optimum.summary(mask)["qoe"]
        for row in rows:
            row["of_optimum"] = None if best is None else row["qoe"] / best
        return rows

    label = f"{traces.name} ({len(traces)} traces, {video.name})"
    rows = table(None)
    print(report.abr_table(rows, f"ABR on {label}: mean QoE per chunk, first chunk skipped; 'of opt' = share of "
                                 "the offline optimum"))
    clean_rows = None
    if clean is not None:
        clean_rows = table(clean)
        print()
        print(report.abr_table(clean_rows, f"ABR on the {int(clean.sum())} {traces.name} traces not in fcc-train"))
    report.write_csv(out / "abr_summary.csv", [{**r, "subset": subset} for subset, rs in
                                               (("all", rows), ("clean", clean_rows or [])) for r in rs],
                     [*report.ABR_COLUMNS, "subset"])
    report.write_csv(out / "abr_per_trace.csv",
                     [{"trace": name, **{r.agent: f"{r.per_trace_qoe[i]:.6f}" for r in runs}}
                      for i, name in enumerate(traces.names)], ["trace", *[r.agent for r in runs]])
    result = {
        "env": "abr", "traces": traces.name, "synthetic": traces.synthetic, "video": video.name,
        "summary": rows, "summary_clean": clean_rows,
        "clean_traces": None if clean is None else [n for n, c in zip(traces.names, clean) if c],
        "meta": runs[0].meta if runs else {},
    }
    return result, ["abr_summary.csv", "abr_per_trace.csv"]


def _abr_plot(runs, data, out):
    from .plots import plot_abr

    return plot_abr(runs, out, title=f"— {data['traces'].name}")


# ---------------------------------------------------------------------------------------------- VP

def _vp_load(args):
    from traces.viewport import load_jin2022_split, load_viewport_dataset, make_windows

    if args.traces in (None, "jin2022"):
        traces = load_jin2022_split(args.split)
        label = f"jin2022 {args.split} split"
    else:
        traces = load_viewport_dataset(args.traces)
        label = f"{args.traces} (all traces)"
    return {"traces": traces, "label": label, "windows": make_windows(traces)}


def _vp_evaluate(name, data, args, device, progress):
    from agents import make_agent

    from .vp import evaluate_vp

    return evaluate_vp(make_agent("vp", name), data["windows"])


def _vp_report(runs, data, args, out):
    rows = [{"agent": r.agent, **r.summary()} for r in runs]
    traces, windows, label = data["traces"], data["windows"], data["label"]
    print(report.vp_table(rows, f"VP on {label}: {len(traces)} traces, {len(windows)} windows (2 s history -> 4 s "
                                "future); MAE/RMSE in degrees, yaw wrapped"))
    report.write_csv(out / "vp_summary.csv", rows, report.VP_COLUMNS)
    steps = runs[0].mae_per_step.shape[0] if runs else 0
    report.write_csv(out / "vp_per_step.csv",
                     [{"step_s": f"{(k + 1) * 0.2:.1f}",
                       **{f"{r.agent}_{m}": f"{v[k]:.6f}" for r in runs
                          for m, v in (("mae", r.mae_per_step), ("rmse", r.rmse_per_step))}} for k in range(steps)],
                     ["step_s", *[f"{r.agent}_{m}" for r in runs for m in ("mae", "rmse")]])
    result = {"env": "vp", "data": label, "traces": len(traces), "windows": len(windows), "summary": rows,
              "mae_per_step": {r.agent: r.mae_per_step.tolist() for r in runs}}
    return result, ["vp_summary.csv", "vp_per_step.csv"]


def _vp_plot(runs, data, out):
    from .plots import plot_vp

    return [plot_vp(runs, out, title=data["label"])]


# --------------------------------------------------------------------------------------------- CJS

def _cjs_load(args):
    from .cjs import HELD_OUT_SEEDS

    n = args.seeds
    return {"seeds": HELD_OUT_SEEDS[:n] if n <= len(HELD_OUT_SEEDS) else tuple(range(1000, 1000 + n))}


def _cjs_evaluate(name, data, args, device, progress):
    from agents import make_agent
    from envs.cjs import CJSConfig

    from .cjs import evaluate_cjs

    if args.ray is not None:
        from .parallel import evaluate_cjs_ray

        run = evaluate_cjs_ray(name, data["seeds"], CJSConfig(), address=args.ray or None, workers=args.workers)
        progress(len(data["seeds"]))
        return run
    return evaluate_cjs(make_agent("cjs", name, device=device), data["seeds"], progress=progress)


def _cjs_report(runs, data, args, out):
    seeds = data["seeds"]
    rows = [{"agent": r.agent, **r.summary()} for r in runs]
    print(report.cjs_table(rows, f"CJS: 200 TPC-H jobs, 50 executors, Poisson arrivals (25 s mean), held-out "
                                 f"seeds {seeds[0]}..{seeds[-1]}"))
    report.write_csv(out / "cjs_summary.csv", rows, report.CJS_COLUMNS)
    result = {"env": "cjs", "seeds": list(seeds), "summary": rows,
              "per_seed_mean_jct_s": {r.agent: [float(j.mean()) for j in r.jct_s] for r in runs}}
    return result, ["cjs_summary.csv"]


def _cjs_plot(runs, data, out):
    from .plots import plot_cjs

    return [plot_cjs(runs, out)]


TASKS = {
    "abr": TaskSpec(_abr_load, _abr_work, "decision", _abr_evaluate, _abr_report, _abr_plot, _abr_agents),
    "vp": TaskSpec(_vp_load, lambda data: 0, "window", _vp_evaluate, _vp_report, _vp_plot),
    "cjs": TaskSpec(_cjs_load, lambda data: len(data["seeds"]), "episode", _cjs_evaluate, _cjs_report, _cjs_plot),
}
