"""CJS experience pools: workloads scheduled by any agent, optionally labelled by another, stored as the
actions taken per workload seed.

    python -m distill.cjs pool --scheduler wfair --seeds 10000-10007 --jobs 50 --procs 2 --out pools/wfair.json
    python -m distill.cjs pool --scheduler gnn --labeler wfair --seeds 11000-11003 --out pools/dagger.json

The simulator is deterministic given the seed and the actions, so :func:`replay_pool` rebuilds every
observation (and checks that the replayed mean JCT matches the recorded one). JSON, a few hundred kB per
workload. With ``--labeler`` the labeler's action on every state the scheduler reaches is stored too
(``labels``: a DAgger round's pool), and the replay gives the scheduler's states with the labels.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from agents.checkpoint import provenance
from evaluation.rollout import DECISIONS_PER_JOB_CAP, batched_rollout, jct_so_far, make_envs
from traces.errors import UserError

POOL_FORMAT = "mamba4net-cjs-pool/2"


def record(seed: int, jobs: int, scheduler: str, labeler: str = "") -> dict:
    """Schedule one workload through ``CJSEnv`` with the agent ``scheduler`` (greedy, on the CPU); with
    ``labeler``, also record that agent's action on every state reached. An episode past
    :data:`evaluation.rollout.DECISIONS_PER_JOB_CAP` decisions per job is cut (``truncated``)."""
    from agents import make_agent
    from envs.cjs import CJSConfig, CJSEnv

    actor = make_agent("cjs", scheduler)
    label_by = make_agent("cjs", labeler) if labeler else None
    env = CJSEnv(CJSConfig(num_jobs=jobs))
    obs, info = env.reset(seed=seed)
    actor.reset(seed=seed)
    taken, labels, t0, done = [], [], time.perf_counter(), False
    while not done and len(taken) < DECISIONS_PER_JOB_CAP * jobs:
        a = actor.act(obs, info)
        taken.append([int(a[0]), int(a[1])])
        if label_by is not None:
            b = label_by.act(obs, info)
            labels.append([int(b[0]), int(b[1])])
        obs, _, done, _, info = env.step(a)
        if info.get("invalid_action"):
            raise RuntimeError(f"seed {seed}: {scheduler}'s action {a.tolist()} was invalid at decision {len(taken)}")
    out = {"seed": int(seed), "jobs": int(jobs), "decisions": len(taken), "seconds": time.perf_counter() - t0,
           "mean_jct_s": float(info["mean_jct_s"]) if done else float(jct_so_far(env.sim).mean()),
           "actions": taken}
    if label_by is not None:
        out["labels"] = labels
    if not done:
        out["truncated"] = True
    return out


class _Replay:
    def __init__(self, actions):
        self.actions, self.i = actions, 0

    def act(self, obs, info=None):
        a = self.actions[self.i]
        self.i += 1
        return np.asarray(a)


def load_pool(path: str | Path) -> dict:
    path = Path(path)
    try:
        pool = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not a readable CJS pool ({e})") from None
    if not isinstance(pool, dict) or pool.get("format") != POOL_FORMAT:
        got = pool.get("format") if isinstance(pool, dict) else type(pool).__name__
        raise UserError(f"{path}: field 'format' is {got!r}, expected {POOL_FORMAT!r} "
                        "(pools of the previous simulator do not replay on this one)")
    for i, w in enumerate(pool.get("workloads", [])):
        missing = [k for k in ("seed", "jobs", "mean_jct_s", "actions") if k not in w]
        if missing:
            raise UserError(f"{path}: workloads[{i}] lacks field(s) {', '.join(missing)}")
        if "labels" in w and len(w["labels"]) != len(w["actions"]):
            raise UserError(f"{path}: workloads[{i}] has {len(w['labels'])} labels for {len(w['actions'])} actions")
    return pool


def replay_pool(paths: str | Path) -> list[dict]:
    """The pool's workloads (``paths``: one file, or several joined by commas) replayed through
    ``CJSEnv``: per workload the trimmed observations and the recorded actions (or labels), as
    :func:`evaluation.rollout.batched_rollout` returns them, with its ``seed`` and ``jobs``. A replay that
    ends elsewhere than recorded (another simulator or data version) is an error naming the file and
    workload."""
    out = []
    for path in str(paths).split(","):
        for i, w in enumerate(load_pool(path)["workloads"]):
            labels = _Replay(w["labels"]) if "labels" in w else None
            (t,) = batched_rollout(make_envs(w["jobs"], 1), [w["seed"]], _Replay(w["actions"]), expert=labels,
                                   max_decisions=len(w["actions"]) if w.get("truncated") else None)
            if t["decisions"] != len(w["actions"]) or abs(t["mean_jct_s"] - w["mean_jct_s"]) > 1e-6:
                raise UserError(f"{path}: workloads[{i}] (seed {w['seed']}) replays to {t['decisions']} decisions "
                                f"and {t['mean_jct_s']:.4f} s, recorded {len(w['actions'])} and {w['mean_jct_s']:.4f} s")
            out.append({**t, "seed": w["seed"], "jobs": w["jobs"]})
    return out


def _seeds(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        try:
            out.extend(range(int(a), int(b) + 1) if b else [int(a)])
        except ValueError:
            raise UserError(f"--seeds: {part!r} is not a seed or a range like 10000-10007") from None
    return out


def _record_star(job):
    import torch

    torch.set_num_threads(1)  # one workload per process: processes, not threads, share the cores
    return record(*job)


def main(argv=None) -> None:
    from multiprocessing import get_context

    from agents import agent_names
    from traces.atomic import check_writable, write_text_atomic

    p = argparse.ArgumentParser(prog="python -m distill.cjs pool", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scheduler", required=True, help="the CJS agent that schedules (e.g. wfair, gnn)")
    p.add_argument("--labeler", default="", help="a CJS agent that labels every state reached (a DAgger pool)")
    p.add_argument("--seeds", required=True, help="workload seeds, e.g. 10000-10007,10020")
    p.add_argument("--jobs", type=int, default=50)
    p.add_argument("--procs", type=int, default=1, help="workloads recorded in parallel processes")
    p.add_argument("--out", required=True, help="the pool's JSON file (rewritten as each workload finishes)")
    args = p.parse_args(argv)
    for flag, name in (("--scheduler", args.scheduler), ("--labeler", args.labeler)):
        if name and name not in agent_names("cjs"):
            raise UserError(f"{flag}: unknown CJS agent {name!r}; available: {', '.join(agent_names('cjs'))}")
    if args.jobs < 1 or args.procs < 1:
        raise UserError("--jobs and --procs must be at least 1")
    jobs = [(s, args.jobs, args.scheduler, args.labeler) for s in _seeds(args.seeds)]
    out = Path(args.out)
    check_writable(out.parent, "--out")
    t0 = time.perf_counter()
    workloads: list[dict] = []

    def save():  # after every workload: a run cut short keeps what it finished
        pool = {"format": POOL_FORMAT, "scheduler": args.scheduler, "labeler": args.labeler or None,
                **provenance(), "seconds": time.perf_counter() - t0, "workloads": workloads}
        write_text_atomic(out, json.dumps(pool))

    with get_context("spawn").Pool(max(1, args.procs)) as workers:
        for w in workers.imap_unordered(_record_star, jobs):
            workloads.append(w)
            save()
            print(f"seed {w['seed']}: mean JCT {w['mean_jct_s']:.2f} s, {w['decisions']} decisions, "
                  f"{w['seconds']:.0f} s", flush=True)
    print(f"{out}: {len(workloads)} workloads, {sum(w['decisions'] for w in workloads)} decisions, "
          f"mean JCT {np.mean([w['mean_jct_s'] for w in workloads]):.2f} s ({time.perf_counter() - t0:.0f} s)")
