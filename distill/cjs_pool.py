"""CJS experience pools: workloads scheduled by the lookahead expert, a learned scheduler it labels, or
any agent, stored as the actions taken per workload seed.

    python -m distill.cjs pool --seeds 10000-10007 --jobs 50 --procs 8 --out pools/cjs_lookahead.json

The simulator is deterministic given the seed and the actions, so :func:`replay_pool` rebuilds every
observation (and checks that the replayed mean JCT matches the recorded one). JSON, a few hundred kB
per workload.

With ``--policy CHECKPOINT`` a learned scheduler schedules and the expert
(:class:`agents.cjs_lookahead.Lookahead`) labels every state it reaches (a DAgger round's pool): each
workload then also stores the expert's ``labels``, and the replay gives the scheduler's states with
the expert's labels as actions. With ``--scheduler NAME`` there is no expert: the named agent
schedules and its own actions form the pool. ``--relabel POOL`` labels a recorded DAgger pool again.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from agents.checkpoint import provenance
from agents.cjs_lookahead import Lookahead, LookaheadConfig
from evaluation.rollout import DECISIONS_PER_JOB_CAP, batched_rollout, jct_so_far, make_envs

POOL_FORMAT = "mamba4net-cjs-pool/1"


def record(seed: int, jobs: int, config: LookaheadConfig = LookaheadConfig(), policy: str = "",
           actions: list | None = None, scheduler: str = "") -> dict:
    """Schedule one workload through ``CJSEnv`` and label every decision with the expert. Without
    ``policy`` the expert acts (an expert pool: ``actions`` only); with ``policy`` (a CJS checkpoint
    folder: teacher, student or GNN, greedy, on the CPU) that scheduler acts and the expert labels the
    states it reaches (a DAgger pool: ``actions`` taken and the expert's ``labels``); with ``actions``
    (a recorded DAgger pool's) those are replayed and labelled again (``policy`` then only names them).
    With ``scheduler`` (a name for :func:`agents.make_agent`, e.g. ``student-wfair-slot``), no expert:
    that agent schedules on the CPU and its actions form the pool.
    An episode past :data:`evaluation.rollout.DECISIONS_PER_JOB_CAP` decisions per job is cut (``truncated``)."""
    from agents import make_agent
    from envs.cjs import CJSConfig, CJSEnv

    if scheduler:
        expert, actor = None, make_agent("cjs", scheduler)
    else:
        expert = Lookahead(config)
        actor = _Replay(actions) if actions is not None else _policy(policy) if policy else None
    cap = len(actions) if actions is not None else DECISIONS_PER_JOB_CAP * jobs
    env = CJSEnv(CJSConfig(num_jobs=jobs))
    obs, info = env.reset(seed=seed)
    taken, labels, t0, done = [], [], time.perf_counter(), False
    while not done and len(taken) < cap:
        label = expert.act_env(env) if expert is not None else None  # leaves the simulator as it found it
        a = label if actor is None else actor.act(obs, info)
        taken.append([int(a[0]), int(a[1])])
        if label is not None:
            labels.append([int(label[0]), int(label[1])])
        obs, _, done, _, info = env.step(a)
        if info.get("invalid_action"):
            who = "expert" if actor is None else scheduler or policy
            raise RuntimeError(f"seed {seed}: the {who}'s action {a.tolist()} "
                               f"was invalid at decision {len(taken)}")
    out = {"seed": int(seed), "jobs": int(jobs), "decisions": len(taken), "seconds": time.perf_counter() - t0,
           "mean_jct_s": float(info["mean_jct_s"]) if done else float(jct_so_far(env.sim).mean()),
           "actions": taken}
    if actor is not None and expert is not None:
        out.update(labels=labels, truncated=not done)
    elif not done:
        out["truncated"] = True
    return out


def _policy(folder: str):
    """A CJS checkpoint as a greedy CPU scheduler."""
    from agents.cjs_gnn import ModelScheduler
    from agents.cjs_llm import for_inference, load_cjs

    model, _ = load_cjs(folder, device="cpu")
    return ModelScheduler(model=for_inference(model), device="cpu", name=Path(folder).name)


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
        raise ValueError(f"{path}: not a readable CJS pool ({e})") from e
    if pool.get("format") != POOL_FORMAT:
        raise ValueError(f"{path}: field 'format' is {pool.get('format')!r}, expected {POOL_FORMAT!r}")
    for i, w in enumerate(pool.get("workloads", [])):
        missing = [k for k in ("seed", "jobs", "mean_jct_s", "actions") if k not in w]
        if missing:
            raise ValueError(f"{path}: workloads[{i}] lacks field(s) {', '.join(missing)}")
        if "labels" in w and len(w["labels"]) != len(w["actions"]):
            raise ValueError(f"{path}: workloads[{i}] has {len(w['labels'])} labels for {len(w['actions'])} actions")
    return pool


def replay_pool(paths: str | Path) -> list[dict]:
    """The pool's workloads (``paths``: one file, or several joined by commas) replayed through
    ``CJSEnv``: per workload the trimmed observations and the recorded actions, as
    :func:`evaluation.rollout.batched_rollout` returns them (a DAgger pool's: the states its policy reached, with the
    expert's labels), with its ``seed`` and ``jobs``. A replay that ends elsewhere than recorded (another
    simulator or data version) is an error naming the file and workload."""
    out = []
    for path in str(paths).split(","):
        for i, w in enumerate(load_pool(path)["workloads"]):
            labels = _Replay(w["labels"]) if "labels" in w else None  # a DAgger pool: train on the expert's labels
            (t,) = batched_rollout(make_envs(w["jobs"], 1), [w["seed"]], _Replay(w["actions"]), expert=labels,
                            max_decisions=len(w["actions"]) if w.get("truncated") else None)
            if t["decisions"] != len(w["actions"]) or abs(t["mean_jct_s"] - w["mean_jct_s"]) > 1e-6:
                raise ValueError(f"{path}: workloads[{i}] (seed {w['seed']}) replays to {t['decisions']} decisions "
                                 f"and {t['mean_jct_s']:.4f} s, recorded {len(w['actions'])} and {w['mean_jct_s']:.4f} s")
            out.append({**t, "seed": w["seed"], "jobs": w["jobs"]})
    return out


def _seeds(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b) + 1) if b else [int(a)])
    return out


def _record_star(job):
    import torch

    torch.set_num_threads(1)  # one workload per process: processes, not threads, share the cores
    return record(*job)


def main(argv=None) -> None:
    from multiprocessing import get_context

    from traces.atomic import write_text_atomic

    p = argparse.ArgumentParser(prog="python -m distill.cjs pool", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", required=True, help="workload seeds, e.g. 10000-10007,10020")
    p.add_argument("--jobs", type=int, default=50)
    p.add_argument("--procs", type=int, default=1, help="workloads labelled in parallel processes")
    p.add_argument("--horizon-s", type=float, default=LookaheadConfig.horizon_s)
    p.add_argument("--options", type=int, default=LookaheadConfig.options)
    p.add_argument("--terminal", default=LookaheadConfig.terminal)
    p.add_argument("--no-wait", action="store_true", help="compare wfair's candidate jobs only, never wait")
    p.add_argument("--policy", default="", help="a CJS checkpoint folder that schedules while the expert labels "
                   "the states it reaches (a DAgger pool); default: the expert schedules")
    p.add_argument("--relabel", default="", help="a recorded DAgger pool: replay its workloads' actions and label "
                   "them with this expert (--seeds picks among them)")
    p.add_argument("--scheduler", default="", help="no expert: this agent (a CJS agent's name, e.g. "
                   "student-wfair-slot) schedules and its actions form the pool")
    p.add_argument("--out", required=True, help="the pool's JSON file (rewritten as each workload finishes)")
    args = p.parse_args(argv)
    config = LookaheadConfig(horizon_s=args.horizon_s, options=args.options, terminal=args.terminal,
                             wait=not args.no_wait)
    if args.scheduler and (args.policy or args.relabel):
        raise SystemExit("--scheduler records an agent's own pool: it takes no --policy or --relabel")
    jobs = [(s, args.jobs, config, args.policy, None, args.scheduler) for s in _seeds(args.seeds)]
    if args.relabel:
        source = load_pool(args.relabel)
        recorded = {w["seed"]: w for w in source["workloads"] if "labels" in w}
        missing = [s for s, *_ in jobs if s not in recorded]
        if missing:
            raise SystemExit(f"--relabel {args.relabel}: no DAgger workload for seed(s) {missing}")
        args.policy = source.get("policy") or args.relabel
        jobs = [(s, recorded[s]["jobs"], config, args.policy, recorded[s]["actions"]) for s, *_ in jobs]
    t0 = time.perf_counter()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    workloads: list[dict] = []

    def save():  # after every workload: a run cut short keeps what it finished
        pool = {"format": POOL_FORMAT, "expert": args.scheduler or "lookahead",
                "config": None if args.scheduler else asdict(config), "policy": args.policy or None,
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
