"""A job of the CJS simulator (its per-stage counters) and the duration tables it draws from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from traces.tpch import JobDAG

EXECUTOR_LEVELS = (5, 10, 20, 40, 50, 60, 80, 100)  # recorded executor counts in the TPC-H data


def executor_intervals(cap: int, levels=EXECUTOR_LEVELS) -> np.ndarray:
    """(cap+1, 2) neighbouring recorded levels for each local-executor count (spark-sched-sim's rule)."""
    iv = np.zeros((cap + 1, 2), dtype=np.int64)
    for n in range(cap + 1):
        if n <= levels[0]:
            iv[n] = levels[0]
        elif n >= levels[-1]:
            iv[n] = levels[-1]
        elif n in levels:
            iv[n] = n
        else:
            k = np.searchsorted(levels, n)
            iv[n] = (levels[k - 1], levels[k])
    return iv


_WAVE_LISTS: dict[int, list] = {}


def wave_lists(dag: JobDAG) -> list:
    """Per stage, the (first_wave, rest_wave, fresh_durations) dicts of level -> Python list of ms (cached
    per template: the simulator draws one duration per task)."""
    lists = _WAVE_LISTS.get(id(dag))
    if lists is None or lists[0] is not dag:
        lists = (dag, [tuple({int(k): [float(x) for x in v] for k, v in w[name].items()}
                             for name in ("first_wave", "rest_wave", "fresh_durations")) for w in dag.durations])
        _WAVE_LISTS[id(dag)] = lists
    return lists[1]


_DRAW_TABLES: dict[tuple, tuple] = {}
FRESH, REST, FIRST = 0, 1, 2  # which recorded wave an executor's next task draws from (SparkSim._draw)


def draw_tables(dag: JobDAG, intervals: list[tuple[int, int]], warmup_ms: float) -> tuple:
    """The wave lookups of a task duration, done once per template: ``tables[case][stage][n]`` for ``n`` local
    executors is (lo, hi, durations at lo, durations at hi, ms added at lo, ms added at hi), ``lo``/``hi`` the
    neighbouring recorded levels (one beyond the data: the largest recorded). Per case, the waves in the order it
    falls back on them: FRESH ``fresh_durations``, else ``first_wave`` + ``warmup_ms``; REST ``rest_wave``, else
    ``first_wave``; FIRST ``first_wave``, else ``fresh_durations``. No data: None (the stage's mean is drawn)."""
    key = (id(dag), len(intervals), warmup_ms)
    cached = _DRAW_TABLES.get(key)
    if cached is None or cached[0] is not dag:
        tables = ([], [], [])
        for first, rest, fresh in wave_lists(dag):
            def pick(level, case, first=first, rest=rest, fresh=fresh):
                if level not in first:
                    level = max(first)
                if case == FRESH:
                    return (fresh[level], 0.0) if fresh.get(level) else (first.get(level) or None, warmup_ms)
                arr = (rest.get(level) or first.get(level)) if case == REST else (first.get(level) or fresh.get(level))
                return arr or None, 0.0

            for case in (FRESH, REST, FIRST):
                row = []
                for lo, hi in intervals:
                    (a_lo, w_lo), (a_hi, w_hi) = pick(lo, case), pick(hi, case)
                    row.append((lo, hi, a_lo, a_hi, w_lo, w_hi))
                tables[case].append(row)
        cached = _DRAW_TABLES[key] = (dag, tables)
    return cached[1]


@dataclass
class Job:
    id: int
    dag: JobDAG
    arrival_ms: float
    completion_ms: float = np.nan
    limit: int = 0  # the last limit a decision gave it (an observation feature)
    unlaunched: np.ndarray = field(default=None)  # type: ignore[assignment]  # tasks not started yet
    moving: np.ndarray = field(default=None)  # type: ignore[assignment]  # executors moving to each stage
    committed: np.ndarray = field(default=None)  # type: ignore[assignment]  # commitments to each stage
    running: np.ndarray = field(default=None)  # type: ignore[assignment]
    stage_done: np.ndarray = field(default=None)  # type: ignore[assignment]
    last_duration_ms: np.ndarray = field(default=None)  # type: ignore[assignment]
    sent: int = 0  # its supply, less incoming commitments: executors sent to it, less those it sent away
    n_idle: int = 0  # executors of this job that the current round may commit (an observation feature)
    incoming: int = 0  # commitments to its stages from pools of other jobs (they count in its supply)
    version: int = 0  # bumped by touch(): observers recompute this job's features only when it changed
    mask_key: tuple = (-1, -1)  # (version, round) of the cached stage mask (SparkSim.stage_mask)
    mask: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        n = self.dag.num_stages
        self.unlaunched = self.dag.num_tasks.copy()
        self.moving = np.zeros(n, dtype=np.int64)
        self.committed = np.zeros(n, dtype=np.int64)
        self.running = np.zeros(n, dtype=np.int64)
        self.stage_done = np.zeros(n, dtype=bool)
        self.stages_left = n  # stages not completed yet (kept with stage_done by the simulator)
        self.last_duration_ms = self.dag.mean_duration_ms.copy()
        self.parents_left = self.dag.adjacency.sum(0).astype(np.int64)  # parents not completed yet
        self.children = [np.flatnonzero(self.dag.adjacency[i]) for i in range(n)]

    @property
    def done_tasks(self) -> np.ndarray:
        """Tasks completed per stage (every task is unlaunched, running or done: the simulator keeps only the
        first two, one counter less on its most frequent event)."""
        return self.dag.num_tasks - self.unlaunched - self.running

    def touch(self) -> None:
        self.version += 1

    @property
    def completed(self) -> bool:
        return self.stages_left == 0

    def demand(self) -> np.ndarray:
        return self.unlaunched - self.moving - self.committed

    def saturated(self) -> np.ndarray:
        return self.demand() <= 0

    def parents_saturated(self) -> np.ndarray:
        sat = self.saturated()
        return ~self.dag.adjacency[~sat].any(axis=0)  # no parent that still has demand

    def parents_completed(self) -> np.ndarray:
        return self.parents_left == 0

    def remaining_work_ms(self) -> float:
        left = self.unlaunched + self.running
        return float((left * self.dag.mean_duration_ms).sum())
