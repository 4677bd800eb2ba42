"""Batched ABR simulator core: N streaming sessions stepped at once in numpy.

Semantics are Pensieve's ``fixed_env.py`` / ``env.py`` (Mao et al., SIGCOMM 2017), which NetLLM reuses,
bit for bit where noise is off:

* Download: from the session's trace pointer, each trace interval ``(t[p-1], t[p]]`` delivers
  ``Mbps·1e6/8 · dt · 0.95`` bytes; the last interval is used fractionally; past the last row the
  trace wraps to row 1 with the clock at 0. ``delay_ms = 1000·t + RTT(80)``; training mode then
  multiplies by ``U(0.9, 1.1)``.
* Buffer: ``rebuffer = max(delay − buffer, 0)``; ``buffer = max(buffer − delay, 0) + chunk(4000 ms)``;
  above 60 s the player sleeps ``ceil(excess/500)·500`` ms and the trace clock moves on by that much.
* QoE (linear, per chunk): ``bitrate_Mbps − 4.3·rebuffer_s − 1·|bitrate_Mbps − last_bitrate_Mbps|``.
* Observation: Pensieve's state matrix, ``(6, history)``, shifted left one column per chunk.
Deliberate differences from Pensieve (documented in docs/ABR.md):
* ``sleep_ms`` is the full drain sleep; Pensieve returns what is left of it after walking the trace
  (only its logs used that value).
* Row 4 of the observation (next chunk sizes) is written whole each step; Pensieve rolls it with the
  other rows, leaving stale sizes in columns 6..7 when ``history = 8``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from traces.abr import BandwidthTrace, Video
from traces.errors import TraceFormatError

MS_IN_S = 1000.0
B_IN_MB = 1_000_000.0
BITS_IN_BYTE = 8.0
STATE_ROWS = 6  # Pensieve S_INFO
BUFFER_NORM_S = 10.0  # Pensieve BUFFER_NORM_FACTOR
CHUNK_TIL_VIDEO_END_CAP = 48.0  # Pensieve CHUNK_TIL_VIDEO_END_CAP
MAX_PASSES = 1000  # passes over a trace one download or drain sleep may take; slower traces are refused


@dataclass(frozen=True)
class ABRConfig:
    """Simulator constants (Pensieve ``core.py`` / ``env.py``; NetLLM uses the same)."""

    link_rtt_ms: float = 80.0  # LINK_RTT: one request round trip added to every chunk
    packet_payload: float = 0.95  # PACKET_PAYLOAD_PORTION: goodput share of the link rate
    noise_low: float = 0.9  # NOISE_LOW: training-mode delay multiplier range
    noise_high: float = 1.1  # NOISE_HIGH
    buffer_thresh_ms: float = 60_000.0  # BUFFER_THRESH: player stops fetching above 60 s
    drain_sleep_ms: float = 500.0  # DRAIN_BUFFER_SLEEP_TIME: sleep granularity when full
    rebuf_penalty: float = 4.3  # REBUF_PENALTY (linear QoE): 1 s stall costs 4.3 Mbps of quality
    smooth_penalty: float = 1.0  # SMOOTH_PENALTY: per Mbps of bitrate change
    qoe: str = "linear"  # "linear" (Pensieve/NetLLM), "log" or "hd" (Pensieve's variants)

    def __post_init__(self) -> None:
        if self.qoe not in ("linear", "log", "hd"):
            raise ValueError(f"qoe must be 'linear', 'log' or 'hd', got {self.qoe!r}")


# Pensieve's HD reward map (kbps -> utility) for qoe="hd": sim/multi_agent.py HD_REWARD.
_HD_REWARD = (1, 2, 3, 12, 15, 20)


def qoe_parts(config: ABRConfig, kbps, level, last_level, rebuffer_s):
    """The per-chunk QoE and its parts ``(qoe, quality, rebuffer_penalty, smooth_penalty)``.

    The one place the formula lives; works on scalars (single session) and arrays (batched core).
    ``kbps`` is the ladder as a float64 array; ``level``/``last_level`` index it.
    """
    if config.qoe == "linear":
        q, q_last = kbps[level] / MS_IN_S, kbps[last_level] / MS_IN_S  # Mbps
    elif config.qoe == "log":  # Pensieve: log(bitrate / min bitrate)
        q, q_last = np.log(kbps[level] / kbps[0]), np.log(kbps[last_level] / kbps[0])
    else:  # "hd": Pensieve's HD_REWARD map
        hd = np.asarray(_HD_REWARD, dtype=np.float64)
        q, q_last = hd[level], hd[last_level]
    rebuf_pen = config.rebuf_penalty * rebuffer_s
    smooth_pen = config.smooth_penalty * abs(q - q_last)
    return q - rebuf_pen - smooth_pen, q, rebuf_pen, smooth_pen


class TraceBank:
    """All traces of a set, concatenated so that sessions index them with flat fancy indexing."""

    def __init__(self, traces: list[BandwidthTrace]):
        if not traces:
            raise ValueError("TraceBank needs at least one trace")
        self.names = [t.name for t in traces]
        self.sources = [t.source for t in traces]
        self.length = np.asarray([len(t) for t in traces], dtype=np.int64)
        self.offset = np.concatenate([[0], np.cumsum(self.length)[:-1]]).astype(np.int64)
        self.times = np.concatenate([t.times_s for t in traces]).astype(np.float64)
        mbps = np.concatenate([t.mbps for t in traces]).astype(np.float64)
        # Same float operations, in the same order, as Pensieve's `cooked_bw * B_IN_MB / BITS_IN_BYTE`.
        self.bytes_per_s = mbps * B_IN_MB / BITS_IN_BYTE

    def __len__(self) -> int:
        return len(self.length)

    def check_playable(self, video: Video, config: "ABRConfig") -> None:
        """Refuse a trace on which one chunk (the largest of ``video``) or one drain sleep would take more
        than :data:`MAX_PASSES` passes over the trace: the error names the trace and what it delivers."""
        biggest, longest_sleep_s = float(video.chunk_bytes.max()), video.chunk_s + config.drain_sleep_ms / MS_IN_S
        for i, name in enumerate(self.names):
            lo, n = self.offset[i], self.length[i]
            t = self.times[lo:lo + n]
            dt = np.r_[t[1], np.diff(t)[1:]]  # after a wrap, row 1 runs from clock 0
            per_pass = float(np.sum(self.bytes_per_s[lo + 1:lo + n] * dt)) * config.packet_payload
            why = (f"delivers {per_pass:.3g} bytes per pass over its {n} rows; the largest chunk ({int(biggest):,} "
                   "bytes)" if per_pass * MAX_PASSES < biggest else f"lasts {t[-1]:.3g} s; a drain sleep"
                   if t[-1] * MAX_PASSES < longest_sleep_s else "")
            if why:
                raise TraceFormatError(self.sources[i] or name, f"{why} would need more than {MAX_PASSES} passes")


class ABRBatchCore:
    """``num_sessions`` ABR sessions over one video and one trace bank.

    Every session row holds: its trace and pointer into it, the trace clock, the buffer, the next
    chunk index and the last level; plus the Pensieve observation matrix and the last step's raw
    values. ``reset_rows`` downloads each session's first chunk at ``initial_level`` (as Pensieve's
    test loop does before the agent's first decision); ``step`` downloads one chunk for every row.
    """

    def __init__(self, traces: list[BandwidthTrace] | TraceBank, video: Video, num_sessions: int,
                 config: ABRConfig = ABRConfig(), history: int = 6, observe: bool = True):
        if history < video.levels:
            raise ValueError(f"history ({history}) must be >= number of levels ({video.levels}) to hold row 4")
        self.bank = traces if isinstance(traces, TraceBank) else TraceBank(traces)
        if getattr(self.bank, "_checked", None) != (id(video), config):  # once per bank, video and config
            self.bank.check_playable(video, config)
            self.bank._checked = (id(video), config)
        self.video = video
        self.config = config
        self.history = history
        self.n = int(num_sessions)
        self.observe = observe  # False: skip the observation matrix (planners that only need dynamics)
        n = self.n
        self.kbps = np.asarray(video.bitrates_kbps, dtype=np.float64)
        self.chunk_bytes = video.chunk_bytes.astype(np.int64)
        self.chunk_ms = video.chunk_s * MS_IN_S
        self.total_chunks = video.num_chunks
        # session state
        self.trace_id = np.zeros(n, dtype=np.int64)
        self.ptr = np.ones(n, dtype=np.int64)
        self.last_time = np.zeros(n, dtype=np.float64)  # trace clock (s)
        self.buffer_ms = np.zeros(n, dtype=np.float64)
        self.chunk = np.zeros(n, dtype=np.int64)  # index of the next chunk to fetch
        self.level = np.zeros(n, dtype=np.int64)  # level of the last fetched chunk
        self.start_ptr = np.ones(n, dtype=np.int64)
        self.steps = np.zeros(n, dtype=np.int64)  # agent decisions so far in the episode
        # planners that only need dynamics keep no observation matrix (144 bytes a row at history 6)
        self.obs = np.zeros((n, STATE_ROWS, history) if observe else (n, 0, 0), dtype=np.float32)
        # last step's raw values
        self.delay_ms = np.zeros(n)
        self.sleep_ms = np.zeros(n)
        self.rebuffer_s = np.zeros(n)
        self.last_chunk_bytes = np.zeros(n, dtype=np.int64)
        self.qoe = np.zeros(n)
        self.qoe_bitrate = np.zeros(n)
        self.qoe_rebuffer = np.zeros(n)
        self.qoe_smooth = np.zeros(n)

    # ------------------------------------------------------------------------------ session control
    def reset_rows(self, rows: np.ndarray, trace_ids: np.ndarray, start_ptrs: np.ndarray,
                   initial_level: int = 0, noise: np.ndarray | None = None) -> None:
        """Start new sessions in ``rows`` and fetch their first chunk at ``initial_level``."""
        rows = np.asarray(rows, dtype=np.int64)
        trace_ids = np.asarray(trace_ids, dtype=np.int64)
        start_ptrs = np.asarray(start_ptrs, dtype=np.int64)
        if np.any(start_ptrs < 1) or np.any(start_ptrs >= self.bank.length[trace_ids]):
            raise ValueError("start pointers must lie in [1, len(trace))")
        self.trace_id[rows] = trace_ids
        self.ptr[rows] = start_ptrs
        self.start_ptr[rows] = start_ptrs
        self.last_time[rows] = self.bank.times[self.bank.offset[trace_ids] + start_ptrs - 1]
        self.buffer_ms[rows] = 0.0
        self.chunk[rows] = 0
        self.level[rows] = initial_level
        self.obs[rows] = 0.0
        self._fetch(rows, np.full(len(rows), initial_level, dtype=np.int64), noise)
        self.steps[rows] = 0

    def step(self, levels: np.ndarray, noise: np.ndarray | None = None, rows: np.ndarray | None = None):
        """Fetch the next chunk of each session in ``rows`` (all by default) at ``levels``.

        Returns ``(qoe, terminated)`` for those rows.
        """
        rows = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.int64)
        levels = np.asarray(levels, dtype=np.int64).reshape(-1)
        if levels.shape != rows.shape:
            raise ValueError(f"expected {len(rows)} actions, got {levels.shape}")
        if np.any((levels < 0) | (levels >= self.video.levels)):
            raise ValueError(f"actions must be in [0, {self.video.levels}), got {levels}")
        if np.any(self.chunk[rows] >= self.total_chunks):
            raise RuntimeError("step() on a finished session: reset it first")
        self._fetch(rows, levels, noise)
        self.steps[rows] += 1
        return self.qoe[rows], self.chunk[rows] >= self.total_chunks

    # ------------------------------------------------------------------------------------ physics
    def _download(self, rows: np.ndarray, size: np.ndarray) -> np.ndarray:
        """Walk each row's trace until ``size`` bytes are delivered; return the delay in seconds."""
        bank, payload_share = self.bank, self.config.packet_payload
        sent = np.zeros(len(rows))
        delay = np.zeros(len(rows))
        todo = np.arange(len(rows))
        budget = MAX_PASSES * int(bank.length[self.trace_id[rows]].max(initial=1)) + 1
        while todo.size:
            budget -= 1
            if budget < 0:  # pragma: no cover - check_playable refuses such traces first
                raise RuntimeError(f"a download did not finish within {MAX_PASSES} passes over the trace")
            r = rows[todo]
            tid = self.trace_id[r]
            g = bank.offset[tid] + self.ptr[r]
            throughput = bank.bytes_per_s[g]
            duration = bank.times[g] - self.last_time[r]
            payload = throughput * duration * payload_share
            done = sent[todo] + payload > size[todo]
            if done.any():
                d, rd = todo[done], r[done]
                fractional = (size[d] - sent[d]) / throughput[done] / payload_share
                delay[d] += fractional
                self.last_time[rd] += fractional
            go = ~done
            if go.any():
                k, rk = todo[go], r[go]
                sent[k] += payload[go]
                delay[k] += duration[go]
                self.last_time[rk] = bank.times[g[go]]
                nxt = self.ptr[rk] + 1
                wrap = nxt >= bank.length[tid[go]]
                nxt[wrap] = 1  # loop back: row 0 only anchors time, the clock restarts at 0
                self.ptr[rk] = nxt
                self.last_time[rk[wrap]] = 0.0
            todo = todo[go]
        return delay

    def _drain(self, rows: np.ndarray) -> np.ndarray:
        """Sleep sessions whose buffer exceeds the cap; advance their trace clock; return sleep (ms)."""
        cfg, bank = self.config, self.bank
        sleep = np.zeros(len(rows))
        over = self.buffer_ms[rows] > cfg.buffer_thresh_ms
        if not over.any():
            return sleep
        idx = np.flatnonzero(over)
        r = rows[idx]
        excess = self.buffer_ms[r] - cfg.buffer_thresh_ms
        sleep[idx] = np.ceil(excess / cfg.drain_sleep_ms) * cfg.drain_sleep_ms
        self.buffer_ms[r] -= sleep[idx]
        remaining = sleep[idx].copy()  # ms of trace time still to skip
        todo = np.arange(len(r))
        budget = MAX_PASSES * int(bank.length[self.trace_id[r]].max(initial=1)) + 1
        while todo.size:
            budget -= 1
            if budget < 0:  # pragma: no cover - check_playable refuses such traces first
                raise RuntimeError(f"drain sleep did not finish within {MAX_PASSES} passes over the trace")
            rr = r[todo]
            g = bank.offset[self.trace_id[rr]] + self.ptr[rr]
            duration = bank.times[g] - self.last_time[rr]
            fits = duration > remaining[todo] / MS_IN_S
            if fits.any():
                self.last_time[rr[fits]] += remaining[todo[fits]] / MS_IN_S
            go = ~fits
            if go.any():
                k, rk = todo[go], rr[go]
                remaining[k] -= duration[go] * MS_IN_S
                self.last_time[rk] = bank.times[g[go]]
                nxt = self.ptr[rk] + 1
                wrap = nxt >= bank.length[self.trace_id[rk]]
                nxt[wrap] = 1
                self.ptr[rk] = nxt
                self.last_time[rk[wrap]] = 0.0
            todo = todo[go]
        return sleep

    def _fetch(self, rows: np.ndarray, levels: np.ndarray, noise: np.ndarray | None) -> None:
        cfg = self.config
        chunk = self.chunk[rows]
        size = self.chunk_bytes[levels, chunk]
        delay = self._download(rows, size.astype(np.float64))
        delay = delay * MS_IN_S + cfg.link_rtt_ms
        if noise is not None:
            delay = delay * np.asarray(noise, dtype=np.float64)
        buffer = self.buffer_ms[rows]
        rebuf_ms = np.maximum(delay - buffer, 0.0)
        self.buffer_ms[rows] = np.maximum(buffer - delay, 0.0) + self.chunk_ms
        sleep = self._drain(rows)

        last_levels = self.level[rows]
        self.level[rows] = levels
        self.chunk[rows] = chunk + 1
        self.delay_ms[rows] = delay
        self.sleep_ms[rows] = sleep
        self.rebuffer_s[rows] = rebuf_ms / MS_IN_S
        self.last_chunk_bytes[rows] = size
        self._score(rows, levels, last_levels)
        if self.observe:
            self._observe(rows)

    def _score(self, rows: np.ndarray, levels: np.ndarray, last_levels: np.ndarray) -> None:
        qoe, q, rebuf_pen, smooth_pen = qoe_parts(self.config, self.kbps, levels, last_levels, self.rebuffer_s[rows])
        self.qoe_bitrate[rows] = q
        self.qoe_rebuffer[rows] = rebuf_pen
        self.qoe_smooth[rows] = smooth_pen
        self.qoe[rows] = qoe

    def next_chunk_bytes(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), levels) sizes of each row's next chunk; zeros once the video has ended."""
        chunk = self.chunk[rows]
        out = np.zeros((len(rows), self.video.levels), dtype=np.int64)
        live = chunk < self.total_chunks
        out[live] = self.chunk_bytes[:, chunk[live]].T
        return out

    def _observe(self, rows: np.ndarray) -> None:
        obs = self.obs[rows]
        obs[:, :, :-1] = obs[:, :, 1:]
        remain = self.total_chunks - self.chunk[rows]
        obs[:, 0, -1] = self.kbps[self.level[rows]] / self.kbps.max()
        obs[:, 1, -1] = self.buffer_ms[rows] / MS_IN_S / BUFFER_NORM_S
        obs[:, 2, -1] = self.last_chunk_bytes[rows] / self.delay_ms[rows] / MS_IN_S  # kB/ms
        obs[:, 3, -1] = self.delay_ms[rows] / MS_IN_S / BUFFER_NORM_S
        obs[:, 4, :] = 0.0
        obs[:, 4, : self.video.levels] = self.next_chunk_bytes(rows) / MS_IN_S / MS_IN_S  # MB
        obs[:, 5, -1] = np.minimum(remain, CHUNK_TIL_VIDEO_END_CAP) / CHUNK_TIL_VIDEO_END_CAP
        self.obs[rows] = obs

    # --------------------------------------------------------------------------------------- info
    def info(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Raw values of the last step for ``rows`` (arrays with a leading batch axis)."""
        delay = self.delay_ms[rows]
        return {
            "level": self.level[rows].copy(),
            "bitrate_kbps": self.kbps[self.level[rows]],
            "buffer_s": self.buffer_ms[rows] / MS_IN_S,
            "delay_ms": delay.copy(),
            "sleep_ms": self.sleep_ms[rows].copy(),
            "rebuffer_s": self.rebuffer_s[rows].copy(),
            "chunk_bytes": self.last_chunk_bytes[rows].copy(),
            "throughput_mbps": self.last_chunk_bytes[rows] * BITS_IN_BYTE / delay / MS_IN_S,
            "chunk_index": self.chunk[rows].copy(),  # index of the next chunk to fetch
            "chunks_left": self.total_chunks - self.chunk[rows],
            "next_chunk_bytes": self.next_chunk_bytes(rows),
            "step": self.steps[rows].copy(),
            "qoe": self.qoe[rows].copy(),
            "qoe_bitrate": self.qoe_bitrate[rows].copy(),
            "qoe_rebuffer": self.qoe_rebuffer[rows].copy(),
            "qoe_smooth": self.qoe_smooth[rows].copy(),
            "trace_id": self.trace_id[rows].copy(),
            "start_index": self.start_ptr[rows].copy(),
        }


class ABRSession:
    """One ABR session in plain Python floats: the single-env fast path.

    The same physics as :class:`ABRBatchCore` (same float operations in the same order, so the two
    agree exactly; ``tests/test_abr_fidelity.py`` checks both against pensieve-ppo), without numpy's
    per-call overhead on length-1 arrays. The observation and info have the batched core's layout.
    """

    def __init__(self, traces: list[BandwidthTrace], video: Video, config: ABRConfig = ABRConfig(), history: int = 6):
        if history < video.levels:
            raise ValueError(f"history ({history}) must be >= number of levels ({video.levels}) to hold row 4")
        TraceBank(traces).check_playable(video, config)
        self.video = video
        self.config = config
        self.history = history
        self.times = [t.times_s.tolist() for t in traces]
        self.bytes_per_s = [(t.mbps * B_IN_MB / BITS_IN_BYTE).tolist() for t in traces]
        self.kbps = np.asarray(video.bitrates_kbps, dtype=np.float64)
        self._kbps_list = [float(k) for k in video.bitrates_kbps]
        self._max_kbps = max(self._kbps_list)
        self.chunk_bytes = video.chunk_bytes.tolist()
        self._next_sizes = (video.chunk_bytes.T / MS_IN_S / MS_IN_S).astype(np.float32)  # (chunks, levels) MB
        self.chunk_ms = video.chunk_s * MS_IN_S
        self.total_chunks = video.num_chunks
        self.obs = np.zeros((STATE_ROWS, history), dtype=np.float32)
        self.trace_id = 0

    def reset(self, trace_id: int, start_ptr: int, initial_level: int = 0, noise: float | None = None) -> None:
        times = self.times[trace_id]
        if not 1 <= start_ptr < len(times):
            raise ValueError(f"start pointer {start_ptr} outside [1, {len(times)})")
        self.trace_id = trace_id
        self.ptr = start_ptr
        self.start_ptr = start_ptr
        self.last_time = times[start_ptr - 1]
        self.buffer_ms = 0.0
        self.chunk = 0
        self.level = initial_level
        self.obs[:] = 0.0
        self._fetch(initial_level, noise)
        self.steps = 0

    def step(self, level: int, noise: float | None = None) -> tuple[float, bool]:
        if not 0 <= level < self.video.levels:
            raise ValueError(f"action must be in [0, {self.video.levels}), got {level}")
        if self.chunk >= self.total_chunks:
            raise RuntimeError("step() on a finished session: reset it first")
        self._fetch(level, noise)
        self.steps += 1
        return self.qoe, self.chunk >= self.total_chunks

    def _fetch(self, level: int, noise: float | None) -> None:
        cfg = self.config
        times, rate = self.times[self.trace_id], self.bytes_per_s[self.trace_id]
        n_rows = len(times)
        share = cfg.packet_payload
        size = self.chunk_bytes[level][self.chunk]
        ptr, last = self.ptr, self.last_time
        sent = 0.0
        delay = 0.0
        while True:  # walk the trace until the chunk is delivered (see ABRBatchCore._download)
            throughput = rate[ptr]
            duration = times[ptr] - last
            payload = throughput * duration * share
            if sent + payload > size:
                fractional = (size - sent) / throughput / share
                delay += fractional
                last += fractional
                break
            sent += payload
            delay += duration
            last = times[ptr]
            ptr += 1
            if ptr >= n_rows:
                ptr = 1
                last = 0.0
        delay = delay * MS_IN_S + cfg.link_rtt_ms
        if noise is not None:
            delay = delay * noise
        rebuf_ms = max(delay - self.buffer_ms, 0.0)
        buffer = max(self.buffer_ms - delay, 0.0) + self.chunk_ms
        sleep = 0.0
        if buffer > cfg.buffer_thresh_ms:  # drain (see ABRBatchCore._drain)
            sleep = math.ceil((buffer - cfg.buffer_thresh_ms) / cfg.drain_sleep_ms) * cfg.drain_sleep_ms
            buffer -= sleep
            remaining = sleep
            while True:
                duration = times[ptr] - last
                if duration > remaining / MS_IN_S:
                    last += remaining / MS_IN_S
                    break
                remaining -= duration * MS_IN_S
                last = times[ptr]
                ptr += 1
                if ptr >= n_rows:
                    ptr = 1
                    last = 0.0
        self.ptr, self.last_time, self.buffer_ms = ptr, last, buffer
        last_level = self.level
        self.level = level
        self.chunk += 1
        self.delay_ms, self.sleep_ms, self.rebuffer_s = delay, sleep, rebuf_ms / MS_IN_S
        self.last_chunk_bytes = size
        qoe, q, rp, sp = qoe_parts(cfg, self._kbps_list if cfg.qoe == "linear" else self.kbps, level, last_level, self.rebuffer_s)
        self.qoe, self.qoe_bitrate, self.qoe_rebuffer, self.qoe_smooth = float(qoe), float(q), float(rp), float(sp)
        # observation: Pensieve's state matrix shifted one column
        obs = self.obs
        obs[:, :-1] = obs[:, 1:]
        obs[0, -1] = self._kbps_list[level] / self._max_kbps
        obs[1, -1] = buffer / MS_IN_S / BUFFER_NORM_S
        obs[2, -1] = size / delay / MS_IN_S
        obs[3, -1] = delay / MS_IN_S / BUFFER_NORM_S
        levels = self.video.levels
        obs[4, :] = 0.0
        if self.chunk < self.total_chunks:
            obs[4, :levels] = self._next_sizes[self.chunk]
        obs[5, -1] = min(self.total_chunks - self.chunk, CHUNK_TIL_VIDEO_END_CAP) / CHUNK_TIL_VIDEO_END_CAP

    def next_chunk_bytes(self) -> np.ndarray:
        if self.chunk >= self.total_chunks:
            return np.zeros(self.video.levels, dtype=np.int64)
        return self.video.chunk_bytes[:, self.chunk].copy()

    def info(self) -> dict:
        """The batched core's ``info`` keys, as scalars."""
        delay = self.delay_ms
        return {
            "level": self.level,
            "bitrate_kbps": self._kbps_list[self.level],
            "buffer_s": self.buffer_ms / MS_IN_S,
            "delay_ms": delay,
            "sleep_ms": self.sleep_ms,
            "rebuffer_s": self.rebuffer_s,
            "chunk_bytes": self.last_chunk_bytes,
            "throughput_mbps": self.last_chunk_bytes * BITS_IN_BYTE / delay / MS_IN_S,
            "chunk_index": self.chunk,
            "chunks_left": self.total_chunks - self.chunk,
            "next_chunk_bytes": self.next_chunk_bytes(),
            "step": self.steps,
            "qoe": self.qoe,
            "qoe_bitrate": self.qoe_bitrate,
            "qoe_rebuffer": self.qoe_rebuffer,
            "qoe_smooth": self.qoe_smooth,
            "trace_id": self.trace_id,
            "start_index": self.start_ptr,
        }
