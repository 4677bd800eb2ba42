"""TPC-H job DAGs from Decima (22 queries × 7 input sizes): loader, validation, random DAG generator.

Layout under a ``tpch`` folder: ``{size}/adj_mat_{q}.npy`` (N×N 0/1, ``adj[i, j] = 1`` means stage i
must finish before stage j), ``{size}/task_duration_{q}.npy`` (a pickled dict, read through the
restricted unpickler: ``{stage: {"first_wave"|"rest_wave"|"fresh_durations": {num_executors: [ms]}}}``).

Task-duration preparation follows spark-sched-sim's TPC-H sampler (facts, our code): a stage's task
count is ``len(first_wave[e]) + len(rest_wave[e])`` at its first recorded executor level ``e``; the
first wave's durations that were also recorded as fresh durations are removed from it (multiset
difference), and levels left empty borrow the nearest lower level's first wave.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import TraceFormatError
from .safe_pickle import load_legacy_pickle

QUERY_SIZES = ("2g", "5g", "10g", "20g", "50g", "80g", "100g")
NUM_QUERIES = 22
WAVES = ("first_wave", "rest_wave", "fresh_durations")


@dataclass(frozen=True)
class JobDAG:
    """One job template: a DAG of stages with recorded task durations (ms) per executor level."""

    query: int
    size: str
    adjacency: np.ndarray  # (N, N) bool, adjacency[i, j]: i is a parent of j
    num_tasks: np.ndarray  # (N,) int64
    durations: tuple  # per stage: {wave: {level: np.ndarray of ms}}
    mean_duration_ms: np.ndarray  # (N,) mean of all recorded durations of the stage

    @property
    def num_stages(self) -> int:
        return len(self.num_tasks)

    @property
    def parents(self) -> list[np.ndarray]:
        return [np.flatnonzero(self.adjacency[:, j]) for j in range(self.num_stages)]

    @property
    def total_work_ms(self) -> float:
        return float((self.num_tasks * self.mean_duration_ms).sum())


def validate_dag(adjacency: np.ndarray, source: str | os.PathLike) -> np.ndarray:
    """Square 0/1 matrix with no cycle; returns it as bool. Errors name the file."""
    a = np.asarray(adjacency)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise TraceFormatError(source, f"adjacency must be a non-empty square matrix, got shape {a.shape}")
    if not np.isin(a, (0, 1)).all():
        raise TraceFormatError(source, "adjacency must hold only 0 and 1")
    a = a.astype(bool)
    if np.any(np.diag(a)):
        raise TraceFormatError(source, f"stage {int(np.flatnonzero(np.diag(a))[0])} depends on itself (a cycle)")
    indeg = a.sum(0).astype(np.int64)
    frontier = list(np.flatnonzero(indeg == 0))
    seen = 0
    while frontier:
        i = frontier.pop()
        seen += 1
        for j in np.flatnonzero(a[i]):
            indeg[j] -= 1
            if indeg[j] == 0:
                frontier.append(j)
    if seen != len(a):
        raise TraceFormatError(source, f"the stage graph has a cycle ({len(a) - seen} stages on or behind it)")
    return a


def _prepare_stage(data: dict, source: str, stage: int) -> tuple[int, dict, float]:
    if not isinstance(data, dict) or any(w not in data for w in WAVES):
        raise TraceFormatError(source, f"stage {stage}: needs 'first_wave', 'rest_wave' and 'fresh_durations'")
    waves = {}
    for w in WAVES:
        if not isinstance(data[w], dict) or not data[w]:
            raise TraceFormatError(source, f"stage {stage}: {w!r} must be a non-empty dict level -> durations")
        waves[w] = {int(k): np.asarray(list(v), dtype=np.float64) for k, v in data[w].items()}
        for k, v in waves[w].items():
            if v.ndim != 1 or not np.all(np.isfinite(v)) or np.any(v < 0):
                raise TraceFormatError(source, f"stage {stage}: {w}[{k}] must be finite non-negative durations (ms)")
    first_level = next(iter(data["first_wave"]))
    num_tasks = len(waves["first_wave"][int(first_level)]) + len(waves["rest_wave"].get(int(first_level), []))
    if num_tasks <= 0:
        raise TraceFormatError(source, f"stage {stage}: no tasks recorded")
    everything = np.concatenate([v for w in WAVES for v in waves[w].values()])
    mean = float(everything.mean()) if everything.size else 0.0
    # first wave without the fresh durations (multiset difference), empty levels borrow the lower one
    clean, last = {}, np.zeros(0)
    for level in sorted(waves["first_wave"]):
        fresh = Counter(waves["fresh_durations"].get(level, np.zeros(0)).tolist())
        kept = []
        for d in waves["first_wave"][level].tolist():
            if fresh[d] > 0:
                fresh[d] -= 1
            else:
                kept.append(d)
        arr = np.asarray(kept, dtype=np.float64)
        clean[level] = arr if arr.size else last
        last = clean[level]
    waves["first_wave"] = clean
    return num_tasks, waves, mean


def load_job_dag(root: str | os.PathLike, query: int, size: str) -> JobDAG:
    root = Path(root)
    adj_path = root / size / f"adj_mat_{query}.npy"
    dur_path = root / size / f"task_duration_{query}.npy"
    if not adj_path.is_file() or not dur_path.is_file():
        raise FileNotFoundError(f"{root}: missing {size}/adj_mat_{query}.npy or {size}/task_duration_{query}.npy")
    if adj_path.stat().st_size > 2**20:  # a DAG of a few dozen stages is a few kB
        raise TraceFormatError(adj_path, f"{adj_path.stat().st_size:,} bytes, too large for a job DAG")
    try:
        adjacency = validate_dag(np.load(adj_path, allow_pickle=False), adj_path)
    except ValueError as exc:
        if isinstance(exc, TraceFormatError):
            raise
        raise TraceFormatError(adj_path, f"not a numeric .npy array ({exc})") from None
    raw = load_legacy_pickle(dur_path)
    if not isinstance(raw, dict):
        raise TraceFormatError(dur_path, f"expected a dict stage -> durations, got {type(raw).__name__}")
    n = len(adjacency)
    missing = [s for s in range(n) if s not in raw]
    if missing:
        raise TraceFormatError(dur_path, f"no durations for stage(s) {missing} of the {n} in {adj_path.name}")
    prepared = [_prepare_stage(raw[s], str(dur_path), s) for s in range(n)]
    return JobDAG(query, size, adjacency, np.asarray([p[0] for p in prepared], dtype=np.int64),
                  tuple(p[1] for p in prepared), np.asarray([p[2] for p in prepared]))


@lru_cache(maxsize=4)
def load_tpch(root: str | None = None) -> dict[tuple[int, str], JobDAG]:
    """All 22 × 7 templates, keyed ``(query, size)``; ``root`` defaults to the ``tpch`` dataset."""
    if root is None:
        from .datasets import resolve

        root = str(resolve("tpch").path)
    return {(q, s): load_job_dag(root, q, s) for s in QUERY_SIZES for q in range(1, NUM_QUERIES + 1)}


WORKLOAD_COLUMNS = ("job_index", "arrival_ms", "query", "size", "num_stages", "num_tasks")


def load_workload(path: str | os.PathLike, templates: dict[tuple[int, str], JobDAG]) -> list[tuple[float, JobDAG]]:
    """A recorded job sequence (``workloads_seedN.csv`` of the reference run: job index, arrival ms, TPC-H
    query, size, stages, tasks) as ``(arrival_ms, JobDAG)`` pairs for ``CJSEnv.reset(options={"workload":
    ...})``. Each row must name a known template whose stage and task counts it repeats (a check that the
    data is the same), arrivals never decrease; errors name the file and line."""
    import csv

    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceFormatError(path, f"cannot read ({exc})") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows or tuple(c.strip() for c in rows[0]) != WORKLOAD_COLUMNS:
        raise TraceFormatError(path, f"expected the header {','.join(WORKLOAD_COLUMNS)}", 1)
    out, last = [], 0.0
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(WORKLOAD_COLUMNS):
            raise TraceFormatError(path, f"expected {len(WORKLOAD_COLUMNS)} fields, got {len(row)}", lineno)
        try:
            arrival, query, stages, tasks = float(row[1]), int(row[2]), int(row[4]), int(row[5])
        except ValueError:
            raise TraceFormatError(path, "arrival_ms, query, num_stages and num_tasks must be numbers", lineno) from None
        dag = templates.get((query, row[3].strip()))
        if dag is None:
            raise TraceFormatError(path, f"no TPC-H template for query {query} at size {row[3]!r}", lineno)
        if not np.isfinite(arrival) or arrival < last:
            raise TraceFormatError(path, f"arrival {row[1]} is not finite or earlier than the previous one", lineno)
        if (dag.num_stages, int(dag.num_tasks.sum())) != (stages, tasks):
            raise TraceFormatError(path, f"query {query} {row[3]} has {dag.num_stages} stages and "
                                         f"{int(dag.num_tasks.sum())} tasks here, {stages} and {tasks} in the file", lineno)
        out.append((arrival, dag))
        last = arrival
    if not out:
        raise TraceFormatError(path, "no jobs")
    return out


def load_workloads(folder: str | os.PathLike, templates: dict[tuple[int, str], JobDAG] | None = None) -> dict[int, list]:
    """Every ``workloads_seedN.csv`` of a folder, keyed by ``N`` (ascending)."""
    import re

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder of workloads (workloads_seedN.csv)")
    files = {int(m.group(1)): p for p in folder.iterdir() if (m := re.fullmatch(r"workloads_seed(\d+)\.csv", p.name))}
    if not files:
        raise TraceFormatError(folder, "holds no workloads_seedN.csv")
    templates = templates if templates is not None else load_tpch()
    return {seed: load_workload(files[seed], templates) for seed in sorted(files)}


def random_job_dag(rng: np.random.Generator, num_stages: int | None = None, edge_prob: float = 0.3,
                   max_tasks: int = 40) -> JobDAG:
    """A random TPC-H-like DAG (upper-triangular edges, hence acyclic) for tests and fuzzing."""
    n = int(num_stages or rng.integers(2, 12))
    adj = np.triu(rng.random((n, n)) < edge_prob, k=1)
    levels = (5, 10, 20, 40, 50, 60, 80, 100)
    num_tasks = rng.integers(1, max_tasks + 1, size=n)
    durs = []
    for s in range(n):
        base = rng.uniform(200.0, 5000.0)
        waves = {w: {lv: np.abs(rng.normal(base * (1.3 if w == "fresh_durations" else 1.0), base * 0.2, size=3))
                     for lv in levels} for w in WAVES}
        durs.append(waves)
    mean = np.asarray([np.mean([v for w in d.values() for vs in w.values() for v in vs]) for d in durs])
    return JobDAG(0, "random", adj, num_tasks.astype(np.int64), tuple(durs), mean)
