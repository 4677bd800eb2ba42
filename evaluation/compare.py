"""Compare agents on one task's test set: a table, CSV + JSON, and plots.

    python -m evaluation.compare --env abr [--traces fcc-test,oboe,...] [--reference robustmpc] [--video NAME|PATH]
                                 [--agents bba,robustmpc,...] [--out DIR] [--no-plots]
    python -m evaluation.compare --env vp [--split test] [--traces DATASET_DIR] [--agents lr,velocity,track]
    python -m evaluation.compare --env cjs [--seeds 10] [--agents fifo,fair]

ABR: every agent streams every trace once (test mode: NetLLM's start offsets, no noise); mean QoE
pools all chunks of all traces with the first chunk of each trace skipped, as NetLLM reports, and is
also given as a share of the offline optimum on the same traces (``agents.offline``). For
``fcc-test`` the table is repeated on the traces that do not also appear in ``fcc-train``. Each row also
gives the agent's paired difference to ``--reference`` over the traces, with a 95% bootstrap interval and
wins/ties/losses; several sets (``--traces fcc-test,oboe``) get a table, plots and JSON entry each.
Without data installed it falls back to a small synthetic trace set and says so.

VP: every agent predicts every window of the split (2 s history -> 4 s future, a window every 3 s);
MAE and RMSE in degrees with yaw wrapped, averaged and per prediction step.

CJS: every scheduler replays the test workloads (the reference run's job sequences, seeds 1–10); mean JCT
per workload from the simulator's completion times (every job), averaged over workloads; median and p90
over all jobs; makespan.

The agents come from one table (:mod:`agents.registry`); without ``--agents`` each task runs its default
list, the learned agents included where this install can run them (a note says why one is left out).
"""

from __future__ import annotations

import argparse
import sys
import time

from traces.atomic import check_writable
from traces.errors import UserError, run_cli

from . import report
from .tasks import TASKS


def _has_gpu() -> bool:
    """Whether torch sees a CUDA device (False without torch; torch is imported only if installed)."""
    from agents.registry import installed

    if not installed("torch"):
        return False
    import torch

    return torch.cuda.is_available()


def select_agents(task: str, requested: str | None, gpu: bool) -> list[str]:
    """The agents to run: ``requested`` (comma-separated, checked against the registry) or the task's
    default list, keeping those this install can run (a NOTE on stderr for each one left out)."""
    from agents import agent_names, available
    from agents.registry import REGISTRY

    if requested is not None:
        names = [n.strip() for n in requested.split(",")]
        if not any(names):
            raise UserError(f"--agents is empty; available {task.upper()} agents: {', '.join(agent_names(task))}")
        unknown = [n for n in names if n not in agent_names(task)]
        if unknown:
            raise UserError(f"--agents: unknown {task.upper()} agent(s) {', '.join(map(repr, unknown))}; "
                            f"available: {', '.join(agent_names(task))}")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise UserError(f"--agents: {', '.join(twice)} listed more than once")
        return names
    names = []
    for spec in (s for s in REGISTRY if s.task == task and s.default != "never"):
        ok, why = available(task, spec.name)
        if ok and spec.default == "gpu" and not gpu:
            ok, why = False, f"runs by default only on a GPU; add it with --agents ...,{spec.name}"
        if ok:
            names.append(spec.name)
        else:
            print(f"NOTE: no {spec.name} row ({why})", file=sys.stderr)
    return names


def run_task(task: str, args) -> dict:
    """Select the agents, load the task's data, evaluate every agent, print the tables, write CSV + JSON
    and the plots under ``args.out``. Returns the JSON result."""
    from agents import agent_spec
    from tqdm.auto import tqdm

    spec = TASKS[task]
    out = check_writable(args.out, "--out")  # before any work: a bad --out must not cost an evaluation
    gpu = _has_gpu()
    device = "cuda" if gpu else "cpu"
    names = spec.finalize_agents(select_agents(task, args.agents, gpu), args)
    data = spec.load(args)
    runs, timings = [], {}
    total = spec.work(data) * len(names)
    with tqdm(total=total, desc=task, unit=spec.unit, disable=args.quiet or not total or None, leave=False) as bar:
        for name in names:
            t0 = time.perf_counter()
            on = device if agent_spec(task, name).on_device else "cpu"
            runs.append(spec.evaluate(name, data, args, on, bar.update))
            timings[name] = time.perf_counter() - t0
    result, written = spec.report(runs, data, args, out)
    result.update(eval_seconds=timings, date=time.strftime("%Y-%m-%d %H:%M:%S"))
    report.write_json(out / f"{task}_results.json", result)
    if not args.no_plots:
        for p in spec.plot(runs, data, out):
            print(f"wrote {p}")
    print(f"wrote {', '.join(str(out / w) for w in [*written, f'{task}_results.json'])}")
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m evaluation.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", choices=list(TASKS), default="abr", help="task to compare on")
    parser.add_argument("--seeds", type=int, default=10, help="CJS: how many of the test workloads to run (first N)")
    parser.add_argument("--workloads", default=None, metavar="FOLDER",
                        help="CJS: a folder of workloads_seedN.csv to replay (default: $MAMBA4NET_DATA/cjs/reference)")
    parser.add_argument("--traces", default=None,
                        help="ABR: trace sets, names or folders, comma-separated (default fcc-test), one table "
                             "each; VP: a dataset folder in Jin2022's layout (default: NetLLM's Jin2022 split)")
    parser.add_argument("--on-bad-file", choices=["raise", "skip"], default="raise",
                        help="ABR/VP: a trace file that does not load stops the run (raise) or is left out with a "
                             "warning (skip)")
    parser.add_argument("--reference", default=None,
                        help="the agent every other is compared with, per trace (ABR, default robustmpc) or per "
                             "workload (CJS, default wfair when it runs): paired bootstrap interval; '' for none")
    parser.add_argument("--split", default="test", choices=["train", "valid", "test"], help="VP split (Jin2022)")
    parser.add_argument("--video", default="video1", help="video name or folder of video_size_* files (ABR)")
    parser.add_argument("--agents", default=None, help="comma-separated agent names (default: the task's default list)")
    parser.add_argument("--out", default="results/compare", help="output folder for CSV, JSON and plots")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-optimum", action="store_true",
                        help="skip the offline optimum (ABR; about 1 s per trace on one CPU core)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="ABR/CJS: shard traces/seeds over Ray tasks; no ADDRESS = a local cluster, "
                             "'auto' or ray://HOST:PORT = an existing one")
    parser.add_argument("--workers", type=int, default=None, help="Ray: CPUs of the local cluster and tasks per agent; without --ray: processes of the offline optimum")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an input error")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {args.seeds}")
    if args.reference is None:
        args.reference = {"abr": "robustmpc", "cjs": "wfair"}.get(args.env, "")
    if args.env == "abr" and args.reference:
        from agents import agent_names

        if args.reference not in agent_names("abr"):
            raise UserError(f"--reference: unknown ABR agent {args.reference!r}; available: {', '.join(agent_names('abr'))}")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    run_task(args.env, args)


if __name__ == "__main__":
    run_cli(main)
