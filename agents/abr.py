"""ABR baselines: BBA, BOLA, rate-based, RobustMPC (all plans) and NetLLM's MPC variant.

All are batched (``act_batch``) and read raw values from ``info`` (``buffer_s``,
``throughput_mbps``, ``level``, ``chunk_index``, ``chunks_left``), not the normalised observation,
so they work with any history length. None imports torch.
"""

from __future__ import annotations

import itertools

import numpy as np

from traces.abr import Video

from .base import BatchPolicy, RowHistory


class BBA(BatchPolicy):
    """Buffer-based adaptation (Huang et al., SIGCOMM 2014), as in Pensieve/NetLLM's ``bba``.

    Level 0 below the reservoir, top level above reservoir + cushion, linear in between (truncated).
    """

    name = "bba"

    def __init__(self, video: Video, reservoir_s: float = 5.0, cushion_s: float = 10.0):
        self.levels = video.levels
        self.reservoir_s = reservoir_s  # Pensieve RESEVOIR = 5
        self.cushion_s = cushion_s  # Pensieve CUSHION = 10

    def act_batch(self, obs, info):
        buf = np.asarray(info["buffer_s"], dtype=np.float64)
        top = self.levels - 1
        linear = (top * (buf - self.reservoir_s) / self.cushion_s).astype(np.int64)
        return np.where(buf < self.reservoir_s, 0, np.where(buf >= self.reservoir_s + self.cushion_s, top, linear))


class RateBased(BatchPolicy):
    """Rate-based: the highest bitrate not above the harmonic mean of the last 5 throughputs."""

    name = "rate-based"

    def __init__(self, video: Video, window: int = 5):
        self.kbps = np.asarray(video.bitrates_kbps, dtype=np.float64)
        self.hist = RowHistory(window)

    def reset(self, seed=None):
        super().reset(seed)
        self.hist = RowHistory(self.hist.k)

    def act_batch(self, obs, info):
        self.hist.push(np.asarray(info["throughput_mbps"], dtype=np.float64), np.asarray(info["step"]) == 0)
        est_kbps = self.hist.harmonic_mean() * 1000.0
        affordable = (self.kbps[None, :] <= est_kbps[:, None]).sum(1)  # the ladder is increasing
        return np.maximum(affordable - 1, 0)


class BOLA(BatchPolicy):
    """BOLA-BASIC (Spiteri et al., INFOCOM 2016) with dash.js's parameterisation.

    Utility ``v_m = ln(S_m / S_0)``; ``γp`` and ``V`` from a minimum buffer of 10 s and a target of
    30 s (dash.js ``BolaRule`` MINIMUM_BUFFER_S, BUFFER_TARGET_S); pick
    ``argmax_m (V·(v_m + γp) − buffer_s) / S_m``.
    """

    name = "bola"

    def __init__(self, video: Video, min_buffer_s: float = 10.0, target_buffer_s: float = 30.0):
        kbps = np.asarray(video.bitrates_kbps, dtype=np.float64)
        self.kbps = kbps
        self.utility = np.log(kbps / kbps[0])
        self.gp = 1.0 + self.utility[-1] / (target_buffer_s / min_buffer_s - 1.0)
        self.vp = min_buffer_s / (self.utility[0] + self.gp - 1.0)

    def act_batch(self, obs, info):
        buf = np.asarray(info["buffer_s"], dtype=np.float64)[:, None]
        score = (self.vp * (self.utility[None, :] + self.gp) - buf) / self.kbps[None, :]
        return np.argmax(score, axis=1)


class _MPCBase(BatchPolicy):
    """Model predictive control over a ``horizon``-chunk lookahead (Yin et al., SIGCOMM 2015).

    Throughput forecast: harmonic mean of the last 5 chunk throughputs divided by
    ``1 + max`` of the last 5 relative forecast errors (RobustMPC). Each candidate plan is scored with
    the linear QoE of its chunks (download time = size / forecast; buffer drained, +chunk length);
    the first level of the best plan is played. Ties go to the later plan, as in Pensieve's code.
    """

    horizon = 5
    index_offset = 0  # which future chunk a plan's first entry is priced at (0 = the next one)

    def __init__(self, video: Video, rebuf_penalty: float = 4.3, smooth_penalty: float = 1.0):
        self.video = video
        self.levels = video.levels
        self.mbps = np.asarray(video.bitrates_kbps, dtype=np.float64) / 1000.0
        self.chunk_mb = video.chunk_bytes.astype(np.float64) / 1e6  # (levels, chunks)
        self.chunk_s = video.chunk_s
        self.rebuf_penalty = rebuf_penalty
        self.smooth_penalty = smooth_penalty
        self.reset()

    def reset(self, seed=None):
        super().reset(seed)
        self.thr = RowHistory(5)  # past throughputs (MB/s)
        self.err = RowHistory(5)  # past relative forecast errors
        self.last_est = np.zeros(0)  # last forecast before the robustness discount; NaN = none yet

    def _forecast(self, info) -> np.ndarray:
        new = np.asarray(info["step"]) == 0
        thr = np.asarray(info["throughput_mbps"], dtype=np.float64) / 8.0  # MB/s, like Pensieve's state[2]
        if self.last_est.shape != thr.shape:
            self.last_est = np.full(thr.shape, np.nan)
        self.last_est[new] = np.nan
        error = np.where(np.isnan(self.last_est), 0.0, np.abs(self.last_est - thr) / thr)
        self.err.push(error, new)
        self.thr.push(thr, new)
        harmonic = self.thr.harmonic_mean()
        self.last_est = harmonic
        max_err = np.where(self.err.mask(), self.err.values, 0.0).max(1)
        return harmonic / (1.0 + max_err)

    def plans_for(self, last_level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P, horizon) plan table and (B, P) validity mask."""
        raise NotImplementedError

    def act_batch(self, obs, info):
        bw = self._forecast(info)  # (B,) MB/s
        buf0 = np.asarray(info["buffer_s"], dtype=np.float64)
        last = np.asarray(info["level"], dtype=np.int64)
        chunk = np.asarray(info["chunk_index"], dtype=np.int64)
        left = np.asarray(info["chunks_left"], dtype=np.int64)
        plans, valid = self.plans_for(last)  # (P, H), (B, P)
        n_chunks = self.chunk_mb.shape[1]
        depth = np.minimum(self.horizon, left)  # plan steps that exist
        B, P = len(bw), len(plans)
        buf = np.repeat(buf0[:, None], P, axis=1)
        rebuf = np.zeros((B, P))
        quality = np.zeros((B, P))
        smooth = np.zeros((B, P))
        prev = np.repeat(last[:, None], P, axis=1)
        for j in range(self.horizon):
            live = (j < depth)[:, None]  # (B, 1)
            idx = np.minimum(chunk + j + self.index_offset, n_chunks - 1)  # (B,)
            lvl = plans[None, :, j]  # (1, P)
            size = self.chunk_mb[lvl, idx[:, None]]  # (B, P)
            dt = size / bw[:, None]
            rebuf += np.where(live, np.maximum(dt - buf, 0.0), 0.0)
            buf = np.where(live, np.maximum(buf - dt, 0.0) + self.chunk_s, buf)
            quality += np.where(live, self.mbps[lvl], 0.0)
            smooth += np.where(live, np.abs(self.mbps[lvl] - self.mbps[prev]), 0.0)
            prev = np.where(live, lvl, prev)
        score = quality - self.rebuf_penalty * rebuf - self.smooth_penalty * smooth
        score = np.where(valid, score, -np.inf)
        best = P - 1 - np.argmax(score[:, ::-1], axis=1)  # last maximum, as Pensieve's `>=`
        return plans[best, 0]


class RobustMPC(_MPCBase):
    """RobustMPC searching every ``levels^5`` plan (7,776 for 6 levels), priced at the right chunks.

    The plan table is built once; all plans of all sessions are scored in one vectorised pass.
    """

    name = "robustmpc"

    def __init__(self, video: Video, **kwargs):
        super().__init__(video, **kwargs)
        self._plans = np.asarray(list(itertools.product(range(self.levels), repeat=self.horizon)), dtype=np.int64)

    def plans_for(self, last_level):
        return self._plans, np.ones((len(last_level), len(self._plans)), dtype=bool)


class MPCNetLLM(_MPCBase):
    """NetLLM's MPC baseline, reproduced: only plans that move at most one level per chunk (from the
    last played level), and each plan step priced with the size of the chunk *after* the one it
    fetches (``index = last_index + position + 1`` in its ``calculate_rebuffer``). Past the end of the
    video the last chunk's size is used (NetLLM reads a 49th line of the size files there).
    """

    name = "mpc-netllm"
    index_offset = 1

    def __init__(self, video: Video, **kwargs):
        super().__init__(video, **kwargs)
        allp = np.asarray(list(itertools.product(range(self.levels), repeat=self.horizon)), dtype=np.int64)
        steps_ok = np.all(np.abs(np.diff(allp, axis=1)) <= 1, axis=1)
        self._plans = allp[steps_ok]
        self._first = self._plans[:, 0]

    def plans_for(self, last_level):
        valid = np.abs(self._first[None, :] - last_level[:, None]) <= 1
        return self._plans, valid
