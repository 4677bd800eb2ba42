"""The ABR offline optimum: a planner that knows the whole trace in advance.

Dynamic programming over chunk × last level × discretised buffer, with exact dynamics:

* Every candidate is simulated exactly by the batched simulator core (no model error): the value
  reported is the QoE of a real level sequence, replayable in the env — so it is achievable.
* After each chunk, candidates are merged by cell ``(trace, last level, ⌊buffer/Δ⌋)`` keeping the
  best QoE so far (Δ = ``grid_s``, 0.05 s by default). The merge is the one approximation: two
  candidates in a cell may differ in wall-clock position (by their total stall), and the one
  dropped might have had the better future. ``tests/test_offline_optimal.py`` shows empirically that
  the value is stable under a finer grid and at least every online policy's on every trace tested.
* Candidates that cannot beat a known feasible plan even at the top bitrate for every remaining
  chunk with no penalty are dropped (a sound bound).

Noise is assumed off (test mode). The objective is the episode return: chunks 1..N−1 (chunk 0 is
fetched at the initial level, as in the env).

Memory: traces are solved in blocks sized from ``memory_bytes`` (1 GB by default) by a worst-case count
of the candidates one trace can hold (levels × levels × buffer bins), so the peak does not grow with the
number of traces; blocks may run in ``workers`` processes. Each trace's plan is independent of the
others', so the result equals the one-block result (tested).
"""

from __future__ import annotations

import math

import numpy as np

from envs.abr.core import ABRBatchCore, ABRConfig, TraceBank
from traces.abr import TraceSet, Video

from .base import BatchPolicy


# Bytes one candidate row costs at its peak: the simulator core's per-row state (~20 int64 / float64
# arrays), the step's temporaries (repeat, tile, values, cells, the lexsort and its order) and the kept
# parent (int32) and action (int8) of each step. Measured peak per trace on fcc-test at Δ = 0.05 s stays
# below this bound (benchmarks/offline_optimal_memory.py).
BYTES_PER_CANDIDATE = 400
DEFAULT_MEMORY_BYTES = 1 << 30


def candidates_per_trace(video: Video, config: ABRConfig = ABRConfig(), grid_s: float = 0.05) -> int:
    """The most candidate rows one trace can reach in a step: every kept cell (last level × buffer bin)
    expanded by every level. The buffer never exceeds the drain threshold plus one chunk."""
    bins = math.ceil((config.buffer_thresh_ms + video.chunk_s * 1000.0) / 1000.0 / grid_s) + 1
    return video.levels * video.levels * bins


def block_size(video: Video, config: ABRConfig = ABRConfig(), grid_s: float = 0.05,
               memory_bytes: int = DEFAULT_MEMORY_BYTES) -> int:
    """Traces per block so that a block's candidates fit ``memory_bytes`` (at least one)."""
    per_trace = candidates_per_trace(video, config, grid_s) * BYTES_PER_CANDIDATE
    return max(1, int(memory_bytes // per_trace))


def solve_offline_optimal(traces: TraceSet, video: Video, trace_ids, start_ptrs, config: ABRConfig = ABRConfig(),
                          initial_level: int = 0, grid_s: float = 0.05, bank: TraceBank | None = None,
                          incumbent: np.ndarray | None = None, memory_bytes: int = DEFAULT_MEMORY_BYTES,
                          workers: int = 1, progress=None):
    """Best level sequence for each ``(trace_id, start_ptr)``.

    Returns ``(plans (M, chunks−1) int64, values (M,) float64)``; ``values`` is the sum of per-chunk
    QoE over the agent's decisions. ``incumbent`` (M,) is an optional known achievable return used
    only for pruning. Sessions are solved in blocks of :func:`block_size` traces (``memory_bytes``), in
    ``workers`` processes when above 1; ``progress(n)`` is called with each finished block's size.
    """
    trace_ids = np.asarray(trace_ids, dtype=np.int64)
    start_ptrs = np.asarray(start_ptrs, dtype=np.int64)
    m, steps = len(trace_ids), video.num_chunks - 1
    if grid_s <= 0 or not math.isfinite(grid_s):
        raise ValueError(f"grid_s must be a positive number of seconds, got {grid_s}")
    lower = np.full(m, -np.inf) if incumbent is None else np.asarray(incumbent, dtype=np.float64) - 1e-9
    size = block_size(video, config, grid_s, memory_bytes)
    blocks = [np.arange(lo, min(m, lo + size)) for lo in range(0, m, size)]
    plans, values = np.zeros((m, steps), dtype=np.int64), np.full(m, -np.inf)
    if workers > 1 and len(blocks) > 1:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        with ProcessPoolExecutor(min(workers, len(blocks)), mp_context=get_context("spawn")) as pool:
            futures = []
            for b in blocks:  # each process gets only its block's traces
                used = np.unique(trace_ids[b])
                local = np.searchsorted(used, trace_ids[b])
                futures.append(pool.submit(_solve_block, traces.subset(used), video, local, start_ptrs[b], config,
                                           initial_level, grid_s, None, lower[b]))
            for b, f in zip(blocks, futures):
                plans[b], values[b] = f.result()
                if progress is not None:
                    progress(len(b))
        return plans, values
    bank = bank or TraceBank(traces.traces)
    for b in blocks:
        plans[b], values[b] = _solve_block(traces, video, trace_ids[b], start_ptrs[b], config, initial_level, grid_s,
                                           bank, lower[b])
        if progress is not None:
            progress(len(b))
    return plans, values


def _solve_block(traces: TraceSet, video: Video, trace_ids, start_ptrs, config: ABRConfig, initial_level: int,
                 grid_s: float, bank: TraceBank | None, lower: np.ndarray):
    """The dynamic programme for one block of sessions (see the module docstring)."""
    bank = bank or TraceBank(traces.traces)
    m, levels, steps = len(trace_ids), video.levels, video.num_chunks - 1
    top_quality = np.asarray(video.bitrates_kbps).max() / 1000.0 if config.qoe == "linear" else np.inf
    # one simulator core for the whole block, its rows reused every step (grown only if ever too small)
    cap = m * levels
    core = ABRBatchCore(bank, video, cap, config, observe=False)
    core.reset_rows(np.arange(m), trace_ids, start_ptrs, initial_level)  # first chunk, as the env does it
    st = {"owner": np.arange(m), "ptr": core.ptr[:m].copy(), "last_time": core.last_time[:m].copy(),
          "buffer_ms": core.buffer_ms[:m].copy(), "level": core.level[:m].copy(), "value": np.zeros(m)}
    parents, actions = [], []
    for k in range(steps):
        s = len(st["owner"])
        n = s * levels
        if n > core.n:
            core = ABRBatchCore(bank, video, max(n, 2 * core.n), config, observe=False)
        rows = np.arange(n)
        rep = np.repeat(np.arange(s), levels)
        act = np.tile(np.arange(levels), s)
        owner = st["owner"][rep]
        core.trace_id[:n] = trace_ids[owner]
        core.ptr[:n] = st["ptr"][rep]
        core.last_time[:n] = st["last_time"][rep]
        core.buffer_ms[:n] = st["buffer_ms"][rep]
        core.level[:n] = st["level"][rep]
        core.chunk[:n] = k + 1
        qoe, _ = core.step(act, rows=rows)
        value = st["value"][rep] + qoe
        # sound pruning: even top quality with no penalty for the rest cannot reach the incumbent
        keep = value + (steps - k - 1) * top_quality >= lower[owner]
        # merge cells: keep the best value per (owner, level, buffer bin)
        idx = np.flatnonzero(keep)
        cell = np.stack([owner[idx], act[idx], np.floor(core.buffer_ms[idx] / 1000.0 / grid_s).astype(np.int64)])
        order = np.lexsort((-value[idx], cell[2], cell[1], cell[0]))
        cs = cell[:, order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = np.any(cs[:, 1:] != cs[:, :-1], axis=0)
        chosen = idx[order[first]]
        parents.append(rep[chosen].astype(np.int32))
        actions.append(act[chosen].astype(np.int8))
        st = {"owner": owner[chosen], "ptr": core.ptr[chosen], "last_time": core.last_time[chosen],
              "buffer_ms": core.buffer_ms[chosen], "level": core.level[chosen], "value": value[chosen]}
    # best final state per owner (first of equals), then walk back
    order = np.lexsort((np.arange(len(st["owner"])), -st["value"], st["owner"]))
    firsts = order[np.r_[True, st["owner"][order][1:] != st["owner"][order][:-1]]]
    best = np.full(m, -1)
    best_val = np.full(m, -np.inf)
    best[st["owner"][firsts]] = firsts
    best_val[st["owner"][firsts]] = st["value"][firsts]
    plans = np.zeros((m, steps), dtype=np.int64)
    cur = best.copy()
    for k in range(steps - 1, -1, -1):
        plans[:, k] = actions[k][cur]
        cur = parents[k][cur]
    return plans, best_val


class OfflineOptimal(BatchPolicy):
    """Plays the offline-optimal plan of the trace it is on (an upper reference, not deployable).

    Needs the same :class:`TraceSet` as the env (it reads ``info["trace_id"]`` and
    ``info["start_index"]``); plans for all sessions starting together are solved at once, in blocks
    of bounded memory (``memory_bytes``), in ``workers`` processes; ``progress=True`` shows a bar per block.
    """

    name = "offline-optimal"

    def __init__(self, video: Video, traces: TraceSet, config: ABRConfig = ABRConfig(), grid_s: float = 0.05,
                 initial_level: int = 0, memory_bytes: int = DEFAULT_MEMORY_BYTES, workers: int = 1,
                 progress: bool = False):
        self.video, self.traces, self.config, self.grid_s = video, traces, config, grid_s
        self.initial_level, self.memory_bytes, self.workers, self.progress = initial_level, memory_bytes, workers, progress
        self.bank = TraceBank(traces.traces)
        self.cache: dict[tuple[int, int], np.ndarray] = {}

    def act_batch(self, obs, info):
        tid = np.asarray(info["trace_id"], dtype=np.int64)
        start = np.asarray(info["start_index"], dtype=np.int64)
        missing = sorted({(int(t), int(s)) for t, s in zip(tid, start)} - set(self.cache))
        if missing:
            t, s = np.asarray(missing).T
            from tqdm.auto import tqdm

            with tqdm(total=len(missing), desc="offline-optimal", unit="trace", leave=False,
                      disable=not self.progress or None) as bar:
                plans, _ = solve_offline_optimal(self.traces, self.video, t, s, self.config, self.initial_level,
                                                 self.grid_s, bank=self.bank, memory_bytes=self.memory_bytes,
                                                 workers=self.workers, progress=bar.update)
            for key, plan in zip(missing, plans):
                self.cache[key] = plan
        step = np.asarray(info["step"], dtype=np.int64)
        return np.asarray([self.cache[(int(t), int(s))][k] for t, s, k in zip(tid, start, step)])
