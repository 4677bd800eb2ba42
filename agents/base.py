"""The one protocol every decision maker implements, and a base class for batched heuristics."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    """A decision maker for one of our envs: baseline, RL agent, LLM teacher or Mamba student.

    * ``reset(seed)`` clears all per-episode state (histories, windows, recurrent state).
    * ``act(obs, info)`` decides for one env (``info`` as returned by the env).
    * ``act_batch(obs, info)`` decides for a batch: ``obs`` has a leading batch axis and ``info`` is
      a dict of arrays with the same leading axis (the vector env's infos). A row whose
      ``info["step"] == 0`` has just started an episode: per-row state must be cleared for it.
    """

    name: str

    def reset(self, seed: int | None = None) -> None: ...

    def act(self, obs: Any, info: dict[str, Any]) -> Any: ...

    def act_batch(self, obs: np.ndarray, info: dict[str, np.ndarray]) -> np.ndarray: ...


class BatchPolicy:
    """Base for policies written once, batched: ``act`` runs ``act_batch`` on a batch of one."""

    name = "policy"

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        batch_info = {k: np.asarray(v)[None] for k, v in info.items() if not isinstance(v, str)}
        out = np.asarray(self.act_batch(np.asarray(obs)[None], batch_info))[0]
        return out.item() if out.ndim == 0 else out

    def act_batch(self, obs: np.ndarray, info: dict[str, np.ndarray]) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class RowHistory:
    """Per-row ring of the last ``k`` values of a signal, cleared for rows that start an episode."""

    def __init__(self, k: int):
        self.k = k
        self.values = np.zeros((0, k))
        self.count = np.zeros(0, dtype=np.int64)

    def _ensure(self, batch: int) -> None:
        if self.values.shape[0] != batch:
            self.values = np.zeros((batch, self.k))
            self.count = np.zeros(batch, dtype=np.int64)

    def clear(self, rows: np.ndarray) -> None:
        self.values[rows] = 0.0
        self.count[rows] = 0

    def push(self, x: np.ndarray, new_episode: np.ndarray) -> None:
        self._ensure(len(x))
        self.clear(np.flatnonzero(new_episode))
        self.values[:, :-1] = self.values[:, 1:]
        self.values[:, -1] = x
        self.count = np.minimum(self.count + 1, self.k)

    def mask(self) -> np.ndarray:
        """(B, k) True where a value has been recorded (the newest ``count`` columns)."""
        return np.arange(self.k)[None, :] >= (self.k - self.count)[:, None]

    def harmonic_mean(self) -> np.ndarray:
        m = self.mask()
        inv = np.where(m, 1.0 / np.where(m, self.values, 1.0), 0.0)
        return m.sum(1) / inv.sum(1)
