"""What ``evaluation.compare`` needs to know of each task: its data, how one agent is evaluated on it,
its tables and files, and its plots. :func:`evaluation.compare.run_task` runs any of them the same way."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np

from traces.errors import UserError

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

def _abr_set(name: str, on_error: str = "raise"):
    """One trace set (a dataset name or a folder), with its clean mask when it is fcc-test."""
    from traces import DatasetNotFoundError, duplicate_mask, load_abr_traces, synthetic_trace_set

    try:
        traces = load_abr_traces(name, on_error=on_error)
    except DatasetNotFoundError as exc:
        if name != "fcc-test":  # the user asked for something specific: fail loudly
            raise
        print(f"NOTE: {exc}\nNOTE: running on 20 synthetic Markov traces instead (not comparable to published "
              "numbers).", file=sys.stderr)
        traces = synthetic_trace_set(np.random.default_rng(0), count=20)
    clean = None
    if traces.name == "fcc-test":  # the fcc-test traces that are not also in fcc-train
        try:
            clean = ~duplicate_mask("fcc-test", "fcc-train")
        except FileNotFoundError:
            clean = None
    return {"traces": traces, "clean": clean}


def _abr_load(args):
    from traces import DatasetNotFoundError, load_abr_video, synthetic_video

    names = [n for n in (args.traces or "fcc-test").split(",") if n]
    if not names or len(set(names)) != len(names):
        raise UserError(f"--traces {args.traces!r}: give one or more distinct sets, comma-separated")
    sets = [_abr_set(n, args.on_bad_file) for n in names]
    try:
        video = load_abr_video(args.video)
    except DatasetNotFoundError as exc:
        if args.video != "video1":
            raise
        print(f"NOTE: video {args.video!r} not found ({exc.__class__.__name__}); using a synthetic VBR video.",
              file=sys.stderr)
        video = synthetic_video(np.random.default_rng(0))
    return {"sets": sets, "video": video}


def _abr_agents(names, args):
    names = list(names)
    if args.reference and args.reference not in names:
        names.insert(0, args.reference)  # every row is compared with it
    if not args.no_optimum and "offline-optimal" not in names:
        names.append("offline-optimal")  # every row is reported as a fraction of it
    if args.no_optimum and "offline-optimal" in names:
        names.remove("offline-optimal")
    return names


def _abr_work(data):
    return (data["video"].num_chunks - 1) * sum(len(s["traces"]) for s in data["sets"])


def _abr_evaluate(name, data, args, device, progress):
    """The agent on every set: ``{set name: ABRRun}``."""
    from agents import make_agent

    from .abr import evaluate_abr

    video, out = data["video"], {}
    for s in data["sets"]:
        traces = s["traces"]
        if args.ray is not None:
            from .parallel import evaluate_abr_ray

            out[traces.name] = evaluate_abr_ray(name, traces, video, address=args.ray or None, workers=args.workers)
            progress((video.num_chunks - 1) * len(traces))
            continue
        agent = make_agent("abr", name, video=video, traces=traces, progress=not args.quiet, workers=args.workers)
        out[traces.name] = evaluate_abr(agent, traces, video, progress=progress)
    return out


def _vs(reference: str, a, b, higher_is_better: bool = True) -> dict:
    """A row's columns for its paired difference to ``reference`` (``vs_REF_diff``, its interval, W/T/L)."""
    from .stats import paired

    return {f"vs_{reference}_{k}": v for k, v in paired(a, b, higher_is_better).items()}


def _abr_rows(runs, mask, reference: str | None) -> list[dict]:
    """Table rows: each agent's summary, its QoE interval over traces, its share of the optimum, and its
    paired difference to ``reference``."""
    from .stats import bootstrap_mean_ci

    optimum = next((r for r in runs if r.agent == "offline-optimal"), None)
    best = None if optimum is None else optimum.summary(mask)["qoe"]
    ref = next((r for r in runs if r.agent == reference), None)
    rows = []
    for r in runs:
        per = r.per_trace_qoe if mask is None else r.per_trace_qoe[mask]
        lo, hi = bootstrap_mean_ci(per)
        row = {"agent": r.agent, **r.summary(mask), "ci_low": lo, "ci_high": hi,
               "of_optimum": None if best is None else r.summary(mask)["qoe"] / best}
        if ref is not None and r is not ref:
            base = ref.per_trace_qoe if mask is None else ref.per_trace_qoe[mask]
            row.update(_vs(reference, per, base))
        rows.append(row)
    return rows


def _abr_report(runs, data, args, out):
    video, reference = data["video"], args.reference
    result = {"env": "abr", "video": video.name, "reference": reference, "sets": {}}
    for s in data["sets"]:
        traces, clean = s["traces"], s["clean"]
        set_runs = [r[traces.name] for r in runs]
        label = f"{traces.name} ({len(traces)} traces, {video.name})"
        rows = _abr_rows(set_runs, None, reference)
        print(report.abr_table(rows, f"ABR on {label}: mean QoE per chunk, first chunk skipped; 'of opt' = share "
                                     f"of the offline optimum; Δ = paired difference to {reference} [95% CI], W/T/L"
                                     " over traces", reference))
        clean_rows = None
        if clean is not None:
            clean_rows = _abr_rows(set_runs, clean, reference)
            print()
            print(report.abr_table(clean_rows, f"ABR on the {int(clean.sum())} {traces.name} traces not in fcc-train",
                                   reference))
        print()
        result["sets"][traces.name] = {
            "traces": traces.name, "synthetic": traces.synthetic, "summary": rows, "summary_clean": clean_rows,
            "clean_traces": None if clean is None else [n for n, c in zip(traces.names, clean) if c]}
    first = data["sets"][0]["traces"]
    result.update({"traces": first.name, "synthetic": first.synthetic, **{k: result["sets"][first.name][k] for k in
                   ("summary", "summary_clean", "clean_traces")}, "meta": runs[0][first.name].meta if runs else {}})
    summary_rows = [{**r, "set": name, "subset": subset} for name, res in result["sets"].items()
                    for subset, rs in (("all", res["summary"]), ("clean", res["summary_clean"] or [])) for r in rs]
    report.write_csv(out / "abr_summary.csv", summary_rows, [*report.ABR_COLUMNS, "ci_low", "ci_high", "set", "subset"])
    report.write_csv(out / "abr_per_trace.csv",
                     [{"set": s["traces"].name, "trace": name,
                       **{r[s["traces"].name].agent: f"{r[s['traces'].name].per_trace_qoe[i]:.6f}" for r in runs}}
                      for s in data["sets"] for i, name in enumerate(s["traces"].names)],
                     ["set", "trace", *[r[first.name].agent for r in runs]])
    return result, ["abr_summary.csv", "abr_per_trace.csv"]


def _abr_plot(runs, data, out):
    from .plots import plot_abr, plot_abr_session, plot_abr_timeline

    paths = []
    many = len(data["sets"]) > 1
    for s in data["sets"]:
        traces = s["traces"]
        suffix = f"_{_slug(traces.name)}" if many else ""
        set_runs = [r[traces.name] for r in runs]
        paths += plot_abr(set_runs, out, title=f"— {traces.name}", suffix=suffix)
        paths.append(plot_abr_session(set_runs, out, title=f"— {traces.name}", suffix=suffix))
        # the timeline of the trace on which the agents differ most (the widest spread of per-trace QoE)
        spread = np.ptp(np.stack([r.per_trace_qoe for r in set_runs]), axis=0)
        k = int(np.argmax(spread))
        paths.append(plot_abr_timeline(set_runs, traces.traces[k], k, out, title=f"({traces.name})", suffix=suffix))
    return paths


def _slug(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name).rstrip("/").split("/")[-1])


# ---------------------------------------------------------------------------------------------- VP

def _vp_load(args):
    from traces.viewport import load_jin2022_split, load_viewport_dataset, make_windows

    if args.traces in (None, "jin2022"):
        traces = load_jin2022_split(args.split, on_error=args.on_bad_file)
        label = f"jin2022 {args.split} split"
    else:
        traces = load_viewport_dataset(args.traces, on_error=args.on_bad_file)
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
    from .cjs import reference_workloads

    workloads = reference_workloads(args.workloads)
    seeds = tuple(sorted(workloads))[: args.seeds]
    return {"seeds": seeds, "workloads": workloads, "folder": args.workloads or "$MAMBA4NET_DATA/cjs/reference"}


def _cjs_evaluate(name, data, args, device, progress):
    from agents import make_agent
    from envs.cjs import CJSConfig

    from .cjs import evaluate_cjs

    if args.ray is not None:
        from .parallel import evaluate_cjs_ray

        run = evaluate_cjs_ray(name, data["seeds"], CJSConfig(), address=args.ray or None, workers=args.workers,
                               workloads=data["workloads"])
        progress(len(data["seeds"]))
        return run
    return evaluate_cjs(make_agent("cjs", name, device=device), data["seeds"], progress=progress,
                        workloads=data["workloads"])


def _cjs_report(runs, data, args, out):
    seeds = data["seeds"]
    reference = args.reference if args.reference in {r.agent for r in runs} else None
    base = next((r for r in runs if r.agent == reference), None)
    rows = []
    for r in runs:
        row = {"agent": r.agent, **r.summary()}
        if base is not None and r is not base:  # per-workload mean JCT, lower is better
            row.update(_vs(reference, [j.mean() for j in r.jct_s], [j.mean() for j in base.jct_s], False))
        rows.append(row)
    title = (f"CJS: the reference run's workloads (200 TPC-H jobs, 50 executors), seeds {', '.join(map(str, seeds))}"
             + (f"; Δ = paired difference of mean JCT to {reference} [95% CI], W/T/L over workloads" if base else ""))
    print(report.cjs_table(rows, title, reference if base else None))
    report.write_csv(out / "cjs_summary.csv", rows, report.CJS_COLUMNS)
    result = {"env": "cjs", "workloads": str(data["folder"]), "seeds": list(seeds), "reference": reference,
              "summary": rows,
              "per_seed_mean_jct_s": {r.agent: {str(s): float(j.mean()) for s, j in zip(r.seeds, r.jct_s)}
                                      for r in runs}}
    return result, ["cjs_summary.csv"]


def _cjs_plot(runs, data, out):
    from .plots import plot_cjs

    return [plot_cjs(runs, out)]


TASKS = {
    "abr": TaskSpec(_abr_load, _abr_work, "decision", _abr_evaluate, _abr_report, _abr_plot, _abr_agents),
    "vp": TaskSpec(_vp_load, lambda data: 0, "window", _vp_evaluate, _vp_report, _vp_plot),
    "cjs": TaskSpec(_cjs_load, lambda data: len(data["seeds"]), "episode", _cjs_evaluate, _cjs_report, _cjs_plot),
}
