"""``mamba4net/VP-v0``: replay one viewport trace per episode, predict the next 4 s each step."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from traces.viewport import FUTURE, HISTORY, STRIDE, TRIM_HEAD, TRIM_TAIL, ViewportTrace, load_jin2022_split, window_starts

from .. import checks
from .core import angular_error


class VPEnv(gym.Env):
    """Viewport prediction over a real head-movement trace.

    ## Action Space
    ``Box(-180, 180, (20, 3), float32)``: the predicted (roll, pitch, yaw) in degrees of the next 20
    samples (4 s at 5 Hz).

    ## Observation Space
    ``Box((10, 4), float32)``: the last 10 samples (2 s), columns ``time_s, roll, pitch, yaw``.

    ## Rewards
    ``−`` mean absolute angular error of the prediction against the trace (degrees, per axis, yaw
    wrapped at ±180°; :func:`envs.vp.core.angular_error`). ``info`` of the step holds ``truth`` and
    ``mae``.

    ## Starting State
    ``order="random"`` (default for the train split): a random trace per reset; ``"sequential"``:
    the traces in order. Each step moves to the next window: windows start every 15 samples from
    sample 30 and stop 60 samples before the end (NetLLM's windowing).

    ## Episode End
    ``terminated`` after the trace's last window.

    ## Arguments
    ``split`` (``train``/``valid``/``test`` of NetLLM's Jin2022 split) or ``traces`` (a list of
    :class:`ViewportTrace`); ``order``.

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": [], "render_fps": 5}

    def __init__(self, split: str = "train", traces: list[ViewportTrace] | None = None, order: str | None = None):
        if traces is None:
            traces = load_jin2022_split(split)
        self.traces = [t for t in traces if len(window_starts(len(t)))]
        if not self.traces:
            raise ValueError("no trace is long enough for one prediction window")
        self.order = order or ("random" if split == "train" else "sequential")
        if self.order not in ("random", "sequential"):
            raise ValueError("order must be 'random' or 'sequential'")
        low = np.tile(np.asarray([0.0, -360.0, -360.0, -360.0], dtype=np.float32), (HISTORY, 1))
        high = np.tile(np.asarray([np.inf, 360.0, 360.0, 360.0], dtype=np.float32), (HISTORY, 1))
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Box(-180.0, 180.0, (FUTURE, 3), dtype=np.float32)
        self._cursor = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._cursor = 0
        options = options or {}
        if "trace_index" in options:
            idx = checks.integer(options["trace_index"], 0, len(self.traces), "trace_index")
        elif self.order == "random":
            idx = int(self.np_random.integers(len(self.traces)))
        else:
            idx = self._cursor % len(self.traces)
            self._cursor += 1
        self.trace = self.traces[idx]
        self.trace_index = idx
        self.starts = window_starts(len(self.trace))
        self.k = 0
        return self._obs(), self._info()

    def _obs(self) -> np.ndarray:
        t = self.starts[self.k]
        tr = self.trace
        return np.concatenate([tr.times_s[t - HISTORY:t, None], tr.angles[t - HISTORY:t]], axis=1).astype(np.float32)

    def _info(self) -> dict[str, Any]:
        return {"video": self.trace.video, "user": self.trace.user, "window": self.k, "step": self.k,
                "start_row": int(self.starts[self.k])}

    def step(self, action):
        checks.not_done(getattr(self, "k", None) is None or self.k >= len(self.starts), "VP-v0")
        pred = checks.finite(action, (FUTURE, 3), "prediction (future × roll/pitch/yaw, degrees)")
        t = self.starts[self.k]
        truth = self.trace.angles[t:t + FUTURE]
        err = angular_error(pred, truth)
        reward = -float(err.mean())
        self.k += 1
        terminated = self.k >= len(self.starts)
        obs = self._obs() if not terminated else np.zeros(self.observation_space.shape, np.float32)
        if not terminated:
            info = self._info()
        else:
            info = {"video": self.trace.video, "user": self.trace.user, "window": self.k, "step": self.k}
        info.update({"truth": truth.copy(), "mae": -reward})
        return obs, reward, terminated, False, info


__all__ = ["VPEnv", "HISTORY", "FUTURE", "STRIDE", "TRIM_HEAD", "TRIM_TAIL"]
