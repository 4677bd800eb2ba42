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
"""

from __future__ import annotations

import numpy as np

from envs.abr.core import ABRBatchCore, ABRConfig, TraceBank
from traces.abr import TraceSet, Video

from .base import BatchPolicy


def solve_offline_optimal(traces: TraceSet, video: Video, trace_ids, start_ptrs, config: ABRConfig = ABRConfig(),
                          initial_level: int = 0, grid_s: float = 0.05, bank: TraceBank | None = None,
                          incumbent: np.ndarray | None = None):
    """Best level sequence for each ``(trace_id, start_ptr)``.

    Returns ``(plans (M, chunks−1) int64, values (M,) float64)``; ``values`` is the sum of per-chunk
    QoE over the agent's decisions. ``incumbent`` (M,) is an optional known achievable return used
    only for pruning.
    """
    bank = bank or TraceBank(traces.traces)
    trace_ids = np.asarray(trace_ids, dtype=np.int64)
    start_ptrs = np.asarray(start_ptrs, dtype=np.int64)
    m, levels, steps = len(trace_ids), video.levels, video.num_chunks - 1
    top_quality = np.asarray(video.bitrates_kbps).max() / 1000.0 if config.qoe == "linear" else np.inf
    # first chunk, as the env does it
    core = ABRBatchCore(bank, video, m, config, observe=False)
    core.reset_rows(np.arange(m), trace_ids, start_ptrs, initial_level)
    st = {
        "owner": np.arange(m), "ptr": core.ptr.copy(), "last_time": core.last_time.copy(),
        "buffer_ms": core.buffer_ms.copy(), "level": core.level.copy(),
        "value": np.zeros(m),
    }
    lower = np.full(m, -np.inf) if incumbent is None else np.asarray(incumbent, dtype=np.float64) - 1e-9
    parents, actions = [], []
    for k in range(steps):
        s = len(st["owner"])
        rep = np.repeat(np.arange(s), levels)
        act = np.tile(np.arange(levels), s)
        core = ABRBatchCore(bank, video, s * levels, config, observe=False)
        core.trace_id[:] = trace_ids[st["owner"][rep]]
        core.ptr[:] = st["ptr"][rep]
        core.last_time[:] = st["last_time"][rep]
        core.buffer_ms[:] = st["buffer_ms"][rep]
        core.level[:] = st["level"][rep]
        core.chunk[:] = k + 1
        qoe, _ = core.step(act)
        owner = st["owner"][rep]
        value = st["value"][rep] + qoe
        # sound pruning: even top quality with no penalty for the rest cannot reach the incumbent
        left = steps - k - 1
        keep = value + left * top_quality >= lower[owner]
        # merge cells: keep the best value per (owner, level, buffer bin)
        cell = np.stack([owner, act, np.floor(core.buffer_ms / 1000.0 / grid_s).astype(np.int64)])[:, keep]
        idx = np.flatnonzero(keep)
        order = np.lexsort((-value[idx], cell[2], cell[1], cell[0]))
        cs = cell[:, order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = np.any(cs[:, 1:] != cs[:, :-1], axis=0)
        chosen = idx[order[first]]
        parents.append(rep[chosen])
        actions.append(act[chosen])
        st = {"owner": owner[chosen], "ptr": core.ptr[chosen], "last_time": core.last_time[chosen],
              "buffer_ms": core.buffer_ms[chosen], "level": core.level[chosen],
              "value": value[chosen]}
    # best final state per owner, then walk back
    best = np.full(m, -1)
    best_val = np.full(m, -np.inf)
    for i, (o, v) in enumerate(zip(st["owner"], st["value"])):
        if v > best_val[o]:
            best_val[o], best[o] = v, i
    plans = np.zeros((m, steps), dtype=np.int64)
    cur = best.copy()
    for k in range(steps - 1, -1, -1):
        plans[:, k] = actions[k][cur]
        cur = parents[k][cur]
    return plans, best_val


class OfflineOptimal(BatchPolicy):
    """Plays the offline-optimal plan of the trace it is on (an upper reference, not deployable).

    Needs the same :class:`TraceSet` as the env (it reads ``info["trace_id"]`` and
    ``info["start_index"]``); plans for all sessions starting together are solved in one batch.
    """

    name = "offline-optimal"

    def __init__(self, video: Video, traces: TraceSet, config: ABRConfig = ABRConfig(), grid_s: float = 0.05,
                 initial_level: int = 0):
        self.video, self.traces, self.config, self.grid_s = video, traces, config, grid_s
        self.initial_level = initial_level
        self.bank = TraceBank(traces.traces)
        self.cache: dict[tuple[int, int], np.ndarray] = {}

    def act_batch(self, obs, info):
        tid = np.asarray(info["trace_id"], dtype=np.int64)
        start = np.asarray(info["start_index"], dtype=np.int64)
        missing = sorted({(int(t), int(s)) for t, s in zip(tid, start)} - set(self.cache))
        if missing:
            t, s = np.asarray(missing).T
            plans, _ = solve_offline_optimal(self.traces, self.video, t, s, self.config, self.initial_level,
                                             self.grid_s, bank=self.bank)
            for key, plan in zip(missing, plans):
                self.cache[key] = plan
        step = np.asarray(info["step"], dtype=np.int64)
        return np.asarray([self.cache[(int(t), int(s))][k] for t, s, k in zip(tid, start, step)])
