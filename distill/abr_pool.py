"""Experience pools: roll any policy through the env and store what it saw and did.

    python -m distill.abr pool --env abr --policy robustmpc,bba,offline-optimal --traces fcc-train \\
        [--video video1] [--repeats 2] [--seed 0] --out pools/abr-fcc-train
    python -m distill.abr pool --merge pools/a,pools/b [--best-per-start] --out pools/ab
    python -m distill.abr pool --policy robustmpc --traces fcc-train --ray [ADDRESS] --out pools/r   (Ray)

A pool is a folder with ``experience.npz`` (flat transition arrays, no pickled objects) and
``meta.json`` (env, policies, data, config, counts, mean returns, code version). Transitions of one
episode are contiguous and in time order:

| array | shape | meaning |
|---|---|---|
| ``obs`` | (N, 6, H) float32 | observation the action was taken on |
| ``action`` | (N,) int64 | level chosen |
| ``reward`` | (N,) float64 | per-chunk QoE |
| ``done`` | (N,) bool | last transition of its episode |
| ``return_to_go`` | (N,) float64 | undiscounted sum of this and later rewards of the episode |
| ``episode`` | (N,) int64 | episode id, unique within the pool |
| ``timestep`` | (N,) int64 | decision index within the episode |
| ``policy`` | (N,) int64 | index into ``meta["policies"]`` |
| ``trace`` / ``start_index`` | (N,) int64 | trace index into ``meta["trace_names"]`` and start row |

Episodes are played in test mode (no delay noise) so that ``offline-optimal`` demonstrations (Comyco-
style imitation of an optimal solver) are exactly what that solver planned. Repeat 0 starts each trace
at its set's start row; further repeats start at rows drawn from ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from agents.checkpoint import provenance
from traces.atomic import check_writable, staged_dir, write_text_atomic
from traces.errors import UserError

ARRAYS = ("obs", "action", "reward", "done", "return_to_go", "episode", "timestep", "policy", "trace", "start_index")


def save_pool(folder: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write a pool atomically: a temp folder beside ``folder``, renamed into place."""
    folder = Path(folder)
    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        raise ValueError(f"pool is missing arrays {missing}")
    lengths = {k: len(arrays[k]) for k in ARRAYS}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"pool arrays differ in length: {lengths}")
    with staged_dir(folder) as tmp:
        np.savez(tmp / "experience.npz", **{k: np.ascontiguousarray(arrays[k]) for k in ARRAYS})
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=float) + "\n")
    return folder


def load_pool(folder: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read a pool (numeric arrays only: ``allow_pickle=False``)."""
    folder = Path(folder)
    meta_path, data_path = folder / "meta.json", folder / "experience.npz"
    if not meta_path.is_file() or not data_path.is_file():
        raise FileNotFoundError(f"{folder}: not a pool (needs experience.npz and meta.json)")
    meta = json.loads(meta_path.read_text())
    with np.load(data_path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        raise ValueError(f"{data_path}: missing arrays {missing}")
    return arrays, meta


def _returns_to_go(reward: np.ndarray) -> np.ndarray:
    """(E, T) rewards -> (E, T) undiscounted suffix sums."""
    return np.flip(np.cumsum(np.flip(reward, axis=1), axis=1), axis=1)


def collect_abr(policies: list[str], traces_name: str, video_name: str = "video1", repeats: int = 1, seed: int = 0,
                history: int = 6, progress: bool = True, ray: str | None = None,
                workers: int | None = None, parts_dir: str | os.PathLike | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Roll each policy over every trace (``repeats`` passes); ``ray`` (an address, or "" for a local
    cluster) shards the traces of each pass over Ray tasks — same arrays as one process.

    ``parts_dir``: each finished (policy, pass) is saved there as it ends, and a run started again with
    the same arguments takes the finished ones from there instead of playing them again (a killed
    collection resumes; the result is the same arrays)."""
    from agents import make_agent
    from evaluation.abr import evaluate_abr
    from traces import load_abr_traces, load_abr_video

    traces = load_abr_traces(traces_name)
    video = load_abr_video(video_name)
    rng = np.random.default_rng(seed)
    starts = [traces.start_index]
    for _ in range(1, repeats):
        starts.append(np.asarray([rng.integers(1, len(t)) for t in traces.traces], dtype=np.int64))
    plan = {"policies": policies, "traces": traces.name, "trace_names": traces.names, "video": video.name,
            "repeats": repeats, "seed": seed, "history": history}
    parts = _Parts(parts_dir, plan) if parts_dir is not None else None
    chunks: dict[str, list[np.ndarray]] = {k: [] for k in ARRAYS}
    returns: dict[str, list[float]] = {}
    episode = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(policies) * repeats * len(traces) * (video.num_chunks - 1), desc="pool", unit="decision",
                   leave=False)
    for pid, name in enumerate(policies):
        for rep, start in enumerate(starts):
            rec = None if parts is None else parts.load(pid, rep)
            if rec is None:
                if ray is not None:
                    from evaluation.parallel import evaluate_abr_ray

                    run = evaluate_abr_ray(name, traces, video, address=ray or None, workers=workers,
                                           start_index=start, keep_obs=True, history=history)
                else:
                    run = evaluate_abr(make_agent("abr", name, video=video, traces=traces), traces, video,
                                       history=history, start_index=start, keep_obs=True,
                                       progress=None if bar is None else bar.update)
                rec = {k: run.records[k] for k in ("obs", "action", "qoe")}
                if parts is not None:
                    parts.save(pid, rep, rec)
            elif bar is not None:
                bar.update(len(traces) * (video.num_chunks - 1))
            e, t = rec["action"].shape
            chunks["obs"].append(rec["obs"][:, :t].reshape(e * t, *rec["obs"].shape[2:]))
            chunks["action"].append(rec["action"].reshape(-1))
            chunks["reward"].append(rec["qoe"].reshape(-1))
            done = np.zeros((e, t), dtype=bool)
            done[:, -1] = True
            chunks["done"].append(done.reshape(-1))
            chunks["return_to_go"].append(_returns_to_go(rec["qoe"]).reshape(-1))
            chunks["episode"].append(np.repeat(np.arange(episode, episode + e), t))
            chunks["timestep"].append(np.tile(np.arange(t), e))
            chunks["policy"].append(np.full(e * t, pid))
            chunks["trace"].append(np.repeat(np.arange(e), t))
            chunks["start_index"].append(np.repeat(start, t))
            returns.setdefault(name, []).extend(rec["qoe"].sum(axis=1).tolist())
            episode += e
    if bar is not None:
        bar.close()
    arrays = {k: np.concatenate(v) for k, v in chunks.items()}
    meta = {
        "env": "abr", "policies": policies, "traces": traces.name, "trace_names": traces.names, "video": video.name,
        "history": history, "mode": "test", "repeats": repeats, "seed": seed,
        "episodes": episode, "transitions": int(len(arrays["action"])),
        "mean_return": {k: float(np.mean(v)) for k, v in returns.items()},
        "mean_qoe_per_chunk": {k: float(np.mean(v)) / (video.num_chunks - 1) for k, v in returns.items()},
        **provenance(),
    }
    return arrays, meta


class _Parts:
    """The finished (policy, pass) parts of a collection, one ``.npz`` each, under a folder that also
    records the collection's arguments: parts of another plan are not reused (the folder is cleared)."""

    def __init__(self, folder: str | os.PathLike, plan: dict):
        import shutil

        self.folder = Path(folder)
        plan_file = self.folder / "plan.json"
        if self.folder.exists() and (not plan_file.is_file() or json.loads(plan_file.read_text()) != plan):
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(plan_file, json.dumps(plan))

    def _path(self, pid: int, rep: int) -> Path:
        return self.folder / f"part-{pid}-{rep}.npz"

    def load(self, pid: int, rep: int) -> dict | None:
        path = self._path(pid, rep)
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def save(self, pid: int, rep: int, rec: dict) -> None:
        path = self._path(pid, rep)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npz")
        np.savez(tmp, **rec)
        os.replace(tmp, path)


def merge_pools(folders: list[str | os.PathLike]) -> tuple[dict[str, np.ndarray], dict]:
    """Concatenate pools of one env and observation shape; episode and policy ids are remapped."""
    parts = [load_pool(f) for f in folders]
    base = parts[0][1]
    policies: list[str] = []
    trace_names: list[str] = []
    out: dict[str, list[np.ndarray]] = {k: [] for k in ARRAYS}
    offset = 0
    for (arrays, meta), folder in zip(parts, folders):
        if meta["env"] != base["env"] or arrays["obs"].shape[1:] != parts[0][0]["obs"].shape[1:]:
            raise ValueError(f"{folder}: cannot merge a {meta['env']} pool with obs {arrays['obs'].shape[1:]} "
                             f"into a {base['env']} pool with obs {parts[0][0]['obs'].shape[1:]}")
        pmap = np.asarray([policies.index(p) if p in policies else (policies.append(p) or len(policies) - 1)
                           for p in meta["policies"]], dtype=np.int64)
        tmap = np.asarray([trace_names.index(t) if t in trace_names else (trace_names.append(t) or len(trace_names) - 1)
                           for t in meta["trace_names"]], dtype=np.int64)
        for k in ARRAYS:
            v = arrays[k]
            if k == "episode":
                v = v + offset
            elif k == "policy":
                v = pmap[v]
            elif k == "trace":
                v = tmap[v]
            out[k].append(v)
        offset += int(arrays["episode"].max()) + 1 if len(arrays["episode"]) else 0
    merged = {k: np.concatenate(v) for k, v in out.items()}
    meta = {"env": base["env"], "policies": policies, "trace_names": trace_names, "merged_from": [str(f) for f in folders],
            "history": base.get("history"), "video": base.get("video"), "episodes": offset,
            "transitions": int(len(merged["action"])), **provenance()}
    return merged, meta


def best_per_start(arrays: dict[str, np.ndarray], meta: dict) -> tuple[dict[str, np.ndarray], dict]:
    """Keep, for every (trace, start row), only the episode with the highest return: a pool for filtered
    behaviour cloning (the best of several policies on each trace)."""
    ep = arrays["episode"]
    ids, first = np.unique(ep, return_index=True)
    ret = np.bincount(np.searchsorted(ids, ep), weights=arrays["reward"])
    best: dict[tuple[int, int], tuple[float, int]] = {}
    for e, i in enumerate(first):
        key = (int(arrays["trace"][i]), int(arrays["start_index"][i]))
        if key not in best or ret[e] > best[key][0]:
            best[key] = (float(ret[e]), int(ids[e]))
    keep = np.isin(ep, [e for _, e in best.values()])
    out = {k: v[keep] for k, v in arrays.items()}
    chosen = np.bincount(out["policy"][out["timestep"] == 0], minlength=len(meta["policies"]))
    meta = {**meta, "filtered": "best episode per (trace, start row)", "episodes": len(best),
            "transitions": int(keep.sum()), "chosen_per_policy": dict(zip(meta["policies"], chosen.tolist())),
            "mean_qoe_per_chunk": {"best-of": float(out["reward"].mean())}}
    return out, meta


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m distill.abr pool", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="robustmpc", help="comma-separated agent names")
    parser.add_argument("--traces", default="fcc-train-clean", help="dataset name or folder; a+b for a union, randomized:N for generated links")
    parser.add_argument("--video", default="video1")
    parser.add_argument("--repeats", type=int, default=1, help="passes over the traces (later ones: random start rows)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--history", type=int, default=6)
    parser.add_argument("--merge", default=None, help="comma-separated pool folders to merge instead of collecting")
    parser.add_argument("--best-per-start", action="store_true",
                        help="keep only the best episode per (trace, start row) across policies")
    parser.add_argument("--out", required=True, help="pool folder to write")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="shard traces over Ray tasks (no ADDRESS: local cluster; 'auto' / ray://HOST:PORT)")
    parser.add_argument("--workers", type=int, default=None, help="Ray: CPUs of the local cluster / tasks per pass")
    args = parser.parse_args(argv)
    from agents import agent_names

    unknown = [n for n in args.policy.split(",") if n not in agent_names("abr")]
    if not args.merge and unknown:
        raise UserError(f"--policy: unknown ABR agent(s) {', '.join(unknown)}; available: {', '.join(agent_names('abr'))}")
    if args.repeats < 1:
        raise UserError(f"--repeats must be at least 1, got {args.repeats}")
    check_writable(Path(args.out).parent, "--out")
    if args.merge:
        arrays, meta = merge_pools(args.merge.split(","))
    else:
        parts = Path(args.out).parent / f".{Path(args.out).name}.parts"  # a killed run resumes from here
        arrays, meta = collect_abr(args.policy.split(","), args.traces, args.video, args.repeats, args.seed,
                                   args.history, progress=not args.quiet and args.ray is None, ray=args.ray,
                                   workers=args.workers, parts_dir=parts)
    if args.best_per_start:
        arrays, meta = best_per_start(arrays, meta)
    path = save_pool(args.out, arrays, meta)
    if not args.merge:
        import shutil

        shutil.rmtree(parts, ignore_errors=True)
    print(f"wrote {path}: {meta['transitions']} transitions, {meta['episodes']} episodes")
    for name, q in meta.get("mean_qoe_per_chunk", {}).items():
        print(f"  {name:<16} mean QoE per chunk {q:.4f}")

