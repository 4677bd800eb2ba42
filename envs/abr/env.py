"""Gymnasium ABR environments over real bandwidth traces: ``mamba4net/ABR-v0`` and its vector env."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from traces.abr import TraceSet, Video
from traces.datasets import load_abr_traces, load_abr_video

from .. import checks
from .core import STATE_ROWS, ABRBatchCore, ABRConfig, ABRSession

MODES = ("train", "test")


def _load(traces, video, mode: str) -> tuple[TraceSet, Video]:
    if traces is None:
        traces = "fcc-train" if mode == "train" else "fcc-test"
    if not isinstance(traces, TraceSet):
        if isinstance(traces, (str, os.PathLike)):
            traces = load_abr_traces(traces)
        else:
            traces = TraceSet(list(traces))
    if not isinstance(video, Video):
        video = load_abr_video(video)
    return traces, video


def _observation_space(history: int) -> spaces.Box:
    return spaces.Box(low=0.0, high=np.inf, shape=(STATE_ROWS, history), dtype=np.float32)


class ABREnv(gym.Env):
    """Adaptive bitrate streaming of one video over one bandwidth trace per episode.

    Pensieve / NetLLM semantics (see :mod:`envs.abr.core`). Each episode streams the whole video:
    ``reset`` fetches chunk 0 at ``initial_level`` (Pensieve's default-quality first chunk), then the
    agent picks the level of each of the remaining chunks, so an episode has ``chunks − 1`` steps
    (47 for ``video1``) and its rewards are the per-chunk QoE with the first chunk skipped — the
    number NetLLM reports.

    ## Action Space
    ``Discrete(levels)``: the quality level of the next chunk (``video1``: 300, 750, 1200, 1850, 2850,
    4300 kbps).

    ## Observation Space
    ``Box(0, inf, (6, history), float32)``, Pensieve's state matrix; column ``-1`` is the newest chunk:

    | row | value | unit / normalisation |
    |-----|-------|----------------------|
    | 0 | bitrate of the last chunk | / max bitrate |
    | 1 | buffer after the last chunk | s / 10 |
    | 2 | throughput of the last chunks | kB/ms (= MB/s) |
    | 3 | download time of the last chunks | s / 10 |
    | 4 | sizes of the next chunk at each level (first ``levels`` columns) | MB |
    | 5 | chunks left | min(left, 48) / 48 |

    ## Rewards
    Per-chunk QoE, linear by default: ``bitrate_Mbps − 4.3·rebuffer_s − |Δbitrate_Mbps|``.
    ``info`` holds the parts (``qoe_bitrate``, ``qoe_rebuffer``, ``qoe_smooth``) and raw values
    (``buffer_s``, ``delay_ms``, ``rebuffer_s``, ``throughput_mbps``, ``next_chunk_bytes``…).

    ## Starting State
    ``mode="train"``: a random trace and a random start row (Pensieve training), delay noise
    ``U(0.9, 1.1)``. ``mode="test"``: the traces in order, one per reset, from their start offsets
    (NetLLM's for ``fcc-test``), no noise; a seeded reset starts again from the first trace. ``reset(options={"trace_index": i})`` picks trace ``i``.

    ## Episode End
    ``terminated`` when the last chunk has been fetched. No truncation.

    ## Arguments
    ``traces``: a dataset name (``fcc-train``, ``fcc-test``…), a folder, or a :class:`TraceSet`;
    ``video``: ``video1``/``video2``, a folder or a :class:`Video`; ``mode``; ``history`` (6 as NetLLM,
    8 as Pensieve); ``initial_level``; ``config`` (:class:`ABRConfig`).

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": [], "render_fps": 1}

    def __init__(self, traces=None, video="video1", mode: str = "train", history: int = 6,
                 initial_level: int = 0, config: ABRConfig = ABRConfig()):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.trace_set, self.video = _load(traces, video, mode)
        self.mode = mode
        self.config = config
        self.history = history
        if not 0 <= initial_level < self.video.levels:
            raise ValueError(f"initial_level must be in [0, {self.video.levels})")
        self.initial_level = initial_level
        self.session = ABRSession(self.trace_set.traces, self.video, config, history)
        self.action_space = spaces.Discrete(self.video.levels)
        self.observation_space = _observation_space(history)
        self._cursor = 0

    def _noise(self) -> float | None:
        if self.mode != "train":
            return None
        return float(self.np_random.uniform(self.config.noise_low, self.config.noise_high))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._cursor = 0  # a seeded reset restarts test mode's pass over the traces
        options = options or {}
        n = len(self.trace_set)
        if "trace_index" in options:
            tid = checks.integer(options["trace_index"], 0, n, "trace_index")
        elif self.mode == "train":
            tid = int(self.np_random.integers(n))
        else:
            tid = self._cursor % n
            self._cursor += 1
        if "start_index" in options:
            start = checks.integer(options["start_index"], 1, len(self.trace_set.traces[tid]), "start_index")
        elif self.mode == "train":
            start = int(self.np_random.integers(1, len(self.trace_set.traces[tid])))
        else:
            start = int(self.trace_set.start_index[tid])
        self.session.reset(tid, start, self.initial_level, self._noise())
        self._done = False
        return self.session.obs.copy(), self._info()

    def step(self, action):
        checks.not_done(getattr(self, "_done", True), "ABR-v0")
        level = checks.integer(action, 0, self.video.levels, "action (bitrate level)")
        reward, terminated = self.session.step(level, self._noise())
        self._done = terminated
        return self.session.obs.copy(), reward, terminated, False, self._info()

    def _info(self) -> dict[str, Any]:
        info = self.session.info()
        info["trace"] = self.trace_set.traces[self.session.trace_id].name
        return info


class ABRVectorEnv(VectorEnv):
    """``num_envs`` ABR sessions stepped together by one batched numpy core.

    Autoreset follows Gymnasium's default (``NEXT_STEP``): the step after a session terminates
    resets it and ignores its action (reward 0, not terminated). In test mode, ``reset`` assigns
    traces round-robin from a cursor; ``reset(options={"trace_index": array})`` assigns them
    explicitly (and ``"start_index": array`` their start rows) — the evaluation harness runs a whole
    trace set as one batch this way.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, traces=None, video="video1", mode: str = "train", history: int = 6,
                 initial_level: int = 0, config: ABRConfig = ABRConfig()):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.trace_set, self.video = _load(traces, video, mode)
        self.num_envs = int(num_envs)
        self.mode = mode
        self.config = config
        self.initial_level = initial_level
        self.core = ABRBatchCore(self.trace_set.traces, self.video, self.num_envs, config, history)
        self.single_action_space = spaces.Discrete(self.video.levels)
        self.single_observation_space = _observation_space(history)
        self.action_space = spaces.MultiDiscrete(np.full(self.num_envs, self.video.levels))
        self.observation_space = spaces.Box(0.0, np.inf, (self.num_envs, STATE_ROWS, history), np.float32)
        self._cursor = 0
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)
        self._np_random = None

    def _noise(self, k: int) -> np.ndarray | None:
        if self.mode != "train":
            return None
        return self.np_random.uniform(self.config.noise_low, self.config.noise_high, size=k)

    def _start(self, rows: np.ndarray, trace_ids: np.ndarray | None = None, starts: np.ndarray | None = None) -> None:
        n = len(self.trace_set)
        k = len(rows)
        if trace_ids is None:
            if self.mode == "train":
                trace_ids = self.np_random.integers(n, size=k)
            else:
                trace_ids = (self._cursor + np.arange(k)) % n
                self._cursor += k
        trace_ids = np.asarray(trace_ids, dtype=np.int64)
        if starts is not None:
            starts = np.asarray(starts, dtype=np.int64)
        elif self.mode == "train":
            lengths = self.core.bank.length[trace_ids]
            starts = 1 + np.floor(self.np_random.random(k) * (lengths - 1)).astype(np.int64)
        else:
            starts = self.trace_set.start_index[trace_ids]
        self.core.reset_rows(rows, trace_ids, starts, self.initial_level, self._noise(k))

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._np_random, self._np_random_seed = gym.utils.seeding.np_random(seed)
            self._cursor = 0
        options = options or {}
        rows = np.arange(self.num_envs)
        tids = options.get("trace_index")
        if tids is not None:
            tids = checks.integers(tids, (self.num_envs,), 0, len(self.trace_set), "trace_index")
        starts = options.get("start_index")
        if starts is not None and tids is None:
            raise ValueError("start_index needs trace_index")
        self._start(rows, tids, starts)
        self._needs_reset[:] = False
        return self.core.obs.copy(), self._infos()

    def step(self, actions):
        actions = checks.integers(actions, (self.num_envs,), 0, self.video.levels, "actions (bitrate levels)")
        rewards = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=bool)
        live = np.flatnonzero(~self._needs_reset)
        dead = np.flatnonzero(self._needs_reset)
        if live.size:
            r, t = self.core.step(actions[live], self._noise(live.size), rows=live)
            rewards[live] = r
            terminated[live] = t
        if dead.size:
            self._start(dead)
        self._needs_reset = terminated.copy()
        truncated = np.zeros(self.num_envs, dtype=bool)
        return self.core.obs.copy(), rewards, terminated, truncated, self._infos()

    def _infos(self) -> dict[str, np.ndarray]:
        return self.core.info(np.arange(self.num_envs))


class ABREpisodeObs(gym.ObservationWrapper):
    """The episode so far as one fixed-shape observation, for sequence policies under SB3.

    Observation ``(max_decisions, 6·H + 3)``: row ``t`` = [the (6, H) observation at decision ``t``
    flattened, the level chosen at ``t − 1`` (``levels`` at ``t = 0``), ``t``, 1]; rows after the current
    decision are 0 (right padding, so a causal model's output at the current row ignores them). The
    current decision is the last row whose final column is 1.
    """

    def __init__(self, env: ABREnv, max_decisions: int = 64):
        super().__init__(env)
        rows, history = env.observation_space.shape
        self.levels = env.action_space.n
        self.T, self.width = max_decisions, rows * history
        self.observation_space = spaces.Box(0.0, np.inf, (max_decisions, self.width + 3), np.float32)
        self._buf = np.zeros(self.observation_space.shape, np.float32)
        self._t = 0

    def reset(self, **kwargs):
        self._buf[:] = 0.0
        self._t = 0
        self._prev = self.levels
        return super().reset(**kwargs)

    def step(self, action):
        self._prev = int(action)
        self._t += 1
        return super().step(action)

    def observation(self, obs):
        if self._t >= self.T:
            raise ValueError(f"ABREpisodeObs: episode longer than max_decisions={self.T}")
        row = self._buf[self._t]
        row[: self.width] = np.asarray(obs, np.float32).ravel()
        row[self.width:] = (self._prev, self._t, 1.0)
        return self._buf.copy()
