"""Compare agents on one task's test set: a table, CSV + JSON, and plots.

    python -m evaluation.compare --env abr [--traces NAME|PATH] [--video NAME|PATH]
                                 [--agents bba,robustmpc,...] [--out DIR] [--no-plots]
    python -m evaluation.compare --env vp [--split test] [--traces DATASET_DIR] [--agents lr,velocity,track]
    python -m evaluation.compare --env cjs [--seeds 10] [--agents fifo,fair]

ABR: every agent streams every trace once (test mode: NetLLM's start offsets, no noise); mean QoE
pools all chunks of all traces with the first chunk of each trace skipped, as NetLLM reports, and is
also given as a share of the offline optimum on the same traces (``agents.offline``). For
``fcc-test`` the table is repeated on the traces that do not also appear in ``fcc-train``.
Without data installed it falls back to a small synthetic trace set and says so.

VP: every agent predicts every window of the split (2 s history -> 4 s future, a window every 3 s);
MAE and RMSE in degrees with yaw wrapped, averaged and per prediction step.

CJS: every scheduler runs the same held-out workloads (seeds 1000…); mean JCT per seed from the
simulator's completion times, averaged over seeds; median and p90 over all jobs; makespan.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from traces.atomic import write_csv_atomic, write_text_atomic

COLUMNS = ("agent", "traces", "qoe", "of_optimum", "bitrate_mbps", "rebuffer_s", "smooth_mbps", "qoe_p10", "qoe_p50",
           "qoe_p90")


def format_table(rows: list[dict], title: str) -> str:
    head = (f"{'agent':<16}{'traces':>7}{'QoE':>9}{'of opt':>8}{'bitrate':>9}{'rebuf s':>9}{'smooth':>9}"
            f"{'p10':>8}{'p50':>8}{'p90':>8}")
    lines = [title, head, "-" * len(head)]
    for r in rows:
        frac = "" if r.get("of_optimum") is None else f"{100 * r['of_optimum']:.1f}%"
        lines.append(f"{r['agent']:<16}{r['traces']:>7}{r['qoe']:>9.4f}{frac:>8}{r['bitrate_mbps']:>9.3f}"
                     f"{r['rebuffer_s']:>9.4f}{r['smooth_mbps']:>9.3f}{r['qoe_p10']:>8.3f}{r['qoe_p50']:>8.3f}{r['qoe_p90']:>8.3f}")
    return "\n".join(lines)


def _abr_data(args):
    from traces import DatasetNotFoundError, load_abr_traces, load_abr_video, synthetic_trace_set, synthetic_video

    notes = []
    try:
        traces = load_abr_traces(args.traces)
    except DatasetNotFoundError as exc:
        if args.traces != "fcc-test":  # the user asked for something specific: fail loudly
            raise
        notes.append(f"NOTE: {exc}\nNOTE: running on 20 synthetic Markov traces instead (not comparable to published numbers).")
        traces = synthetic_trace_set(np.random.default_rng(0), count=20)
    try:
        video = load_abr_video(args.video)
    except DatasetNotFoundError as exc:
        if args.video != "video1":
            raise
        notes.append(f"NOTE: video {args.video!r} not found ({exc.__class__.__name__}); using a synthetic VBR video.")
        video = synthetic_video(np.random.default_rng(0))
    return traces, video, notes


def _runnable(candidates, available) -> list[str]:
    """The names among ``candidates`` that ``available(name) -> (ok, why)`` accepts; a note for the others."""
    names = []
    for name in candidates:
        ok, why = available(name)
        if ok:
            names.append(name)
        else:
            print(f"NOTE: no {name} row ({why})", file=sys.stderr)
    return names


def _has_gpu() -> bool:
    """Whether torch sees a CUDA device (False without torch; torch is imported only if installed)."""
    from agents import _installed

    if not _installed("torch"):
        return False
    import torch

    return torch.cuda.is_available()


def run_abr(args) -> dict:
    from tqdm.auto import tqdm

    from agents import ABR_AGENTS, make_abr_agent
    from evaluation.abr import evaluate_abr

    traces, video, notes = _abr_data(args)
    for note in notes:
        print(note, file=sys.stderr)
    from agents import LEARNED_ABR_AGENTS

    names = args.agents.split(",") if args.agents else [n for n in ABR_AGENTS if n not in LEARNED_ABR_AGENTS]
    if not args.agents:  # the shipped learned agents join when this install can run them
        def available(name):
            ok, why = LEARNED_ABR_AGENTS[name]()
            if ok and name == "teacher" and not _has_gpu():
                return False, ("135M-parameter teacher on the CPU: minutes per trace set; add it with "
                               "--agents bba,...,teacher or run on a GPU")
            return ok, why

        names += _runnable(LEARNED_ABR_AGENTS, available)
    unknown = [n for n in names if n not in ABR_AGENTS]
    if unknown:
        raise SystemExit(f"unknown ABR agent(s) {unknown}; available: {', '.join(ABR_AGENTS)}")
    if not args.no_optimum and "offline-optimal" not in names:
        names.append("offline-optimal")  # every row is reported as a fraction of it
    if args.no_optimum and "offline-optimal" in names:
        names.remove("offline-optimal")

    clean_mask = None
    if traces.name == "fcc-test":
        from traces import duplicate_mask

        try:
            clean_mask = ~duplicate_mask("fcc-test", "fcc-train")
        except FileNotFoundError:
            clean_mask = None

    steps = (video.num_chunks - 1) * len(traces) * len(names)
    runs, timings = [], {}
    with tqdm(total=steps, desc="abr", unit="decision", disable=args.quiet or None, leave=False) as bar:
        for name in names:
            t0 = time.perf_counter()
            if args.ray is not None:
                from evaluation.parallel import evaluate_abr_ray

                runs.append(evaluate_abr_ray(name, traces, video, address=args.ray or None, workers=args.workers))
                bar.update((video.num_chunks - 1) * len(traces))
            else:
                runs.append(evaluate_abr(make_abr_agent(name, video, traces), traces, video, progress=bar.update))
            timings[name] = time.perf_counter() - t0

    label = f"{traces.name} ({len(traces)} traces, {video.name})"
    optimum = next((r for r in runs if r.agent == "offline-optimal"), None)

    def table(mask):
        rows = [{"agent": r.agent, **r.summary(mask)} for r in runs]
        best = None if optimum is None else optimum.summary(mask)["qoe"]
        for row in rows:
            row["of_optimum"] = None if best is None else row["qoe"] / best
        return rows

    rows = table(None)
    print(format_table(rows, f"ABR on {label}: mean QoE per chunk, first chunk skipped; 'of opt' = share of the offline optimum"))
    clean_rows = None
    if clean_mask is not None:
        clean_rows = table(clean_mask)
        print()
        print(format_table(clean_rows, f"ABR on the {int(clean_mask.sum())} {traces.name} traces not in fcc-train"))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(out / "abr_summary.csv", [{**r, "subset": subset} for subset, rs in
                                               (("all", rows), ("clean", clean_rows or [])) for r in rs],
                     [*COLUMNS, "subset"])
    write_csv_atomic(out / "abr_per_trace.csv",
                     [{"trace": name, **{r.agent: f"{r.per_trace_qoe[i]:.6f}" for r in runs}}
                      for i, name in enumerate(traces.names)], ["trace", *[r.agent for r in runs]])
    result = {
        "env": "abr", "traces": traces.name, "synthetic": traces.synthetic, "video": video.name,
        "summary": rows, "summary_clean": clean_rows,
        "clean_traces": None if clean_mask is None else [n for n, c in zip(traces.names, clean_mask) if c],
        "eval_seconds": timings, "meta": runs[0].meta if runs else {},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_text_atomic(out / "abr_results.json", json.dumps(result, indent=2, default=float))
    if not args.no_plots:
        from evaluation.plots import plot_abr

        for p in plot_abr(runs, out, title=f"— {traces.name}"):
            print(f"wrote {p}")
    print(f"wrote {out / 'abr_summary.csv'}, {out / 'abr_per_trace.csv'}, {out / 'abr_results.json'}")
    return result


VP_COLUMNS = ("agent", "windows", "mae", "rmse", "mae_roll", "mae_pitch", "mae_yaw", "mae_1s", "mae_4s_step")


def run_vp(args) -> dict:
    from agents import VP_AGENTS, make_vp_agent
    from evaluation.vp import evaluate_vp
    from traces.viewport import load_jin2022_split, load_viewport_dataset, make_windows

    if args.traces in (None, "fcc-test", "jin2022"):
        traces = load_jin2022_split(args.split)
        label = f"jin2022 {args.split} split"
    else:
        traces = load_viewport_dataset(args.traces)
        label = f"{args.traces} (all traces)"
    windows = make_windows(traces)
    from agents import PRETRAINED_VP, vp_model_available

    names = args.agents.split(",") if args.agents else [n for n in VP_AGENTS if n not in PRETRAINED_VP]
    if not args.agents:  # the shipped LLM teacher / Mamba student join when this install can run them
        names += _runnable(PRETRAINED_VP, vp_model_available)
    unknown = [n for n in names if n not in VP_AGENTS]
    if unknown:
        raise SystemExit(f"unknown VP agent(s) {unknown}; available: {', '.join(VP_AGENTS)}")
    runs, timings = [], {}
    for name in names:
        t0 = time.perf_counter()
        runs.append(evaluate_vp(make_vp_agent(name), windows))
        timings[name] = time.perf_counter() - t0
    rows = [{"agent": r.agent, **r.summary()} for r in runs]
    title = (f"VP on {label}: {len(traces)} traces, {len(windows)} windows (2 s history -> 4 s future); "
             "MAE/RMSE in degrees, yaw wrapped")
    head = f"{'agent':<10}{'windows':>8}{'MAE':>8}{'RMSE':>8}{'roll':>8}{'pitch':>8}{'yaw':>8}{'≤1 s':>8}{'@4 s':>8}"
    lines = [title, head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['agent']:<10}{r['windows']:>8}{r['mae']:>8.2f}{r['rmse']:>8.2f}{r['mae_roll']:>8.2f}"
                     f"{r['mae_pitch']:>8.2f}{r['mae_yaw']:>8.2f}{r['mae_1s']:>8.2f}{r['mae_4s_step']:>8.2f}")
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(out / "vp_summary.csv", rows, VP_COLUMNS)
    steps = runs[0].mae_per_step.shape[0] if runs else 0
    write_text_atomic(out / "vp_per_step.csv", "\n".join(
        ["step_s," + ",".join(f"{r.agent}_mae,{r.agent}_rmse" for r in runs)]
        + [f"{(k + 1) * 0.2:.1f}," + ",".join(f"{r.mae_per_step[k]:.6f},{r.rmse_per_step[k]:.6f}" for r in runs)
           for k in range(steps)]) + "\n")
    result = {"env": "vp", "data": label, "traces": len(traces), "windows": len(windows), "summary": rows,
              "mae_per_step": {r.agent: r.mae_per_step.tolist() for r in runs}, "eval_seconds": timings,
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_text_atomic(out / "vp_results.json", json.dumps(result, indent=2))
    if not args.no_plots:
        from evaluation.plots import plot_vp

        print(f"wrote {plot_vp(runs, out, title=label)}")
    print(f"wrote {out / 'vp_summary.csv'}, {out / 'vp_per_step.csv'}, {out / 'vp_results.json'}")
    return result


def run_cjs(args) -> dict:
    from tqdm.auto import tqdm

    from agents import CJS_AGENTS, CJS_DEFAULT_AGENTS, CJS_MODEL_AGENTS, PRETRAINED_CJS_TEACHER, _installed, \
        make_cjs_agent, teacher_available
    from evaluation.cjs import HELD_OUT_SEEDS, evaluate_cjs

    names = args.agents.split(",") if args.agents else list(CJS_DEFAULT_AGENTS)
    device = "cuda" if _has_gpu() else "cpu"
    if not args.agents and not _installed("torch"):  # the shipped GNN needs torch
        names.remove("gnn")
        print("cjs: leaving out gnn (needs torch: pip install -e '.[torch]')")
    elif not args.agents and device == "cuda":
        names += ["student", "student-wfair"]
        ok, why = teacher_available(PRETRAINED_CJS_TEACHER)
        if ok:
            names.append("teacher")
        else:
            print(f"cjs: leaving out the teacher ({why})")
    elif not args.agents:
        print("cjs: leaving out the Mamba student and student-wfair (each about 30 min on 2 CPU cores) and the LLM "
              "teacher (GPU only: SmolLM2 at each of ~35,000 decisions per workload); add them with "
              "--agents ...,student,student-wfair,teacher")
    unknown = [n for n in names if n not in CJS_AGENTS]
    if unknown:
        raise SystemExit(f"unknown CJS agent(s) {unknown}; available: {', '.join(CJS_AGENTS)}")
    seeds = HELD_OUT_SEEDS[: args.seeds] if args.seeds <= len(HELD_OUT_SEEDS) else tuple(range(1000, 1000 + args.seeds))
    runs, timings = [], {}
    with tqdm(total=len(names) * len(seeds), desc="cjs", unit="episode", disable=args.quiet or None, leave=False) as bar:
        for name in names:
            t0 = time.perf_counter()
            if args.ray is not None:
                from envs.cjs import CJSConfig
                from evaluation.parallel import evaluate_cjs_ray

                runs.append(evaluate_cjs_ray(name, seeds, CJSConfig(), address=args.ray or None, workers=args.workers))
                bar.update(len(seeds))
            else:
                runs.append(evaluate_cjs(make_cjs_agent(name, device if name in CJS_MODEL_AGENTS else "cpu"), seeds,
                                         progress=bar.update))
            timings[name] = time.perf_counter() - t0
    rows = [{"agent": r.agent, **r.summary()} for r in runs]
    head = f"{'agent':<14}{'seeds':>6}{'mean JCT s':>12}{'± std':>8}{'median':>9}{'p90':>9}{'makespan s':>12}{'decisions':>11}"
    lines = [f"CJS: 200 TPC-H jobs, 50 executors, Poisson arrivals (25 s mean), held-out seeds {seeds[0]}..{seeds[-1]}",
             head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['agent']:<14}{r['seeds']:>6}{r['mean_jct_s']:>12.1f}{r['mean_jct_std_s']:>8.1f}"
                     f"{r['median_jct_s']:>9.1f}{r['p90_jct_s']:>9.1f}{r['makespan_s']:>12.0f}{r['decisions']:>11.0f}")
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cols = ("agent", "seeds", "mean_jct_s", "mean_jct_std_s", "median_jct_s", "p90_jct_s", "makespan_s", "decisions")
    write_csv_atomic(out / "cjs_summary.csv", rows, cols)
    result = {"env": "cjs", "seeds": list(seeds), "summary": rows, "eval_seconds": timings,
              "per_seed_mean_jct_s": {r.agent: [float(j.mean()) for j in r.jct_s] for r in runs},
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_text_atomic(out / "cjs_results.json", json.dumps(result, indent=2))
    if not args.no_plots:
        from evaluation.plots import plot_cjs

        print(f"wrote {plot_cjs(runs, out)}")
    print(f"wrote {out / 'cjs_summary.csv'}, {out / 'cjs_results.json'}")
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m evaluation.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", choices=["abr", "vp", "cjs"], default="abr", help="task to compare on")
    parser.add_argument("--seeds", type=int, default=10, help="CJS: held-out workload seeds to average over")
    parser.add_argument("--traces", default=None,
                        help="ABR: dataset name or folder of traces (default fcc-test); VP: a dataset folder in "
                             "Jin2022's layout (default: NetLLM's Jin2022 split)")
    parser.add_argument("--split", default="test", choices=["train", "valid", "test"], help="VP split (Jin2022)")
    parser.add_argument("--video", default="video1", help="video name or folder of video_size_* files (ABR)")
    parser.add_argument("--agents", default=None, help="comma-separated agent names (default: all baselines)")
    parser.add_argument("--out", default="results/compare", help="output folder for CSV, JSON and plots")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-optimum", action="store_true",
                        help="skip the offline optimum (ABR; about 1 s per trace on one CPU core)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="ABR/CJS: shard traces/seeds over Ray tasks; no ADDRESS = a local cluster, "
                             "'auto' or ray://HOST:PORT = an existing one")
    parser.add_argument("--workers", type=int, default=None, help="Ray: CPUs of the local cluster and tasks per agent")
    args = parser.parse_args(argv)
    if args.env == "abr":
        args.traces = args.traces or "fcc-test"
        run_abr(args)
    elif args.env == "vp":
        run_vp(args)
    else:
        run_cjs(args)


if __name__ == "__main__":
    main()
