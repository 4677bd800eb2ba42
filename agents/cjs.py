"""CJS heuristics: FIFO and Fair (dynamic partition). numpy only; they read the observation."""

from __future__ import annotations

import numpy as np

from .base import BatchPolicy


def _split(obs):
    node = np.asarray(obs["node_features"])
    J, S = node.shape[-3], node.shape[-2]
    return J, S


class FIFO(BatchPolicy):
    """Oldest job first: its first schedulable stage, with every executor allowed (Spark's default)."""

    name = "fifo"

    def act(self, obs, info=None):
        J, S = _split(obs)
        mask = np.asarray(obs["stage_mask"])
        E = np.asarray(obs["limit_mask"]).shape[-1]
        slots = np.flatnonzero(mask[: J * S])
        return np.asarray([slots[0] if len(slots) else J * S, E - 1])


class WeightedFair(BatchPolicy):
    """Fair with shares weighted by each job's remaining work: ``share_k = ⌈E · w_k / Σ w⌉``,
    ``w_k = remaining_work_k ^ exponent`` (at least 1 executor).

    Among the jobs below their share that have a schedulable stage, ``order="least-work"`` serves
    the one with the least remaining work first, ``order="deficit"`` the one furthest below its own
    share (the smallest executors / share ratio; ties: the oldest), as Fair does; the job gets its
    first schedulable stage at limit = its share, and when every job with work is at its share the
    free executors wait, as in Fair; :class:`Fair` is ``WeightedFair(0, order="deficit")``. The defaults — shares ∝ √work (bigger jobs get more executors) served least work
    first — were picked on training workload seeds 0–5 from exponents {0, 0.25, 0.5, 0.75} × both
    orders, not on the held-out evaluation seeds (docs/CJS.md).
    """

    name = "wfair"

    def __init__(self, exponent: float = 0.5, order: str = "least-work"):
        if order not in ("deficit", "least-work"):
            raise ValueError(f"WeightedFair(order={order!r}): use 'deficit' or 'least-work'")
        self.exponent, self.order = float(exponent), order

    def act(self, obs, info=None):
        J, S = _split(obs)
        mask = np.asarray(obs["stage_mask"])[: J * S].reshape(J, S)
        jobs = np.asarray(obs["job_features"])
        E = np.asarray(obs["limit_mask"]).shape[-1]
        present = jobs[:, 0] > 0
        n_jobs = max(int(present.sum()), 1)
        if self.exponent == 0.0:
            share = np.full(J, int(np.ceil(E / n_jobs)))
        else:
            w = np.where(present, np.maximum(jobs[:, 4], 1e-3) ** self.exponent, 0.0)
            share = np.maximum(np.ceil(E * w / max(w.sum(), 1e-12)), 1).astype(np.int64)
        executors = np.rint(jobs[:, 1] * E).astype(np.int64)
        idle_local = np.rint(jobs[:, 5] * E).astype(np.int64)
        candidates = np.flatnonzero(mask.any(1) & ((executors < share) | (idle_local > 0)))
        if len(candidates) == 0:
            return np.asarray([J * S, 0])
        if self.order == "deficit":
            busy = executors[candidates] - idle_local[candidates]
            k = candidates[np.argmin(busy / share[candidates])]  # ties: the oldest
        else:  # the job with the least remaining work first
            k = candidates[np.argmin(jobs[candidates, 4])]
        stage = int(np.flatnonzero(mask[k])[0])
        return np.asarray([k * S + stage, min(max(int(share[k]), executors[k] + 1), E) - 1])


class Fair(WeightedFair):
    """Dynamic partition: each job in the system gets at most ⌈executors / jobs⌉ executors.

    The job furthest below its share that has a schedulable stage gets its first schedulable stage at
    limit = share (a job's own idle executors may always return to work); when every such job is at
    its share, the free executors wait for the next event. (:class:`WeightedFair` with equal weights
    and Fair's order.)
    """

    name = "fair"

    def __init__(self):
        super().__init__(exponent=0.0, order="deficit")
