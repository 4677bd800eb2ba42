"""CJS heuristics: FIFO, Fair (dynamic partition) and wfair (size-weighted Fair), and :class:`WaitGate` (a
learned scheduler's timing with wfair's placement). numpy only; they read the observation."""

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


WFAIR_EXPONENT = 0.5  # wfair's share exponent, shares ∝ remaining work ^ this (picked on training seeds, docs/CJS.md)


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

    def __init__(self, exponent: float = WFAIR_EXPONENT, order: str = "least-work"):
        if order not in ("deficit", "least-work"):
            raise ValueError(f"WeightedFair(order={order!r}): use 'deficit' or 'least-work'")
        self.exponent, self.order = float(exponent), order

    def ranking(self, work, executors, idle_local, eligible, E: int) -> tuple[np.ndarray, np.ndarray]:
        """The rule on plain arrays over the jobs in the system (oldest first): remaining work, executors
        at or moving to each job, its idle ones, whether it has a stage it can grow into. Returns the
        candidate jobs in the order served (the first is the choice) and every job's share. Shared by
        :meth:`act` (observations) and the lookahead expert (the simulator's state)."""
        work = np.asarray(work, dtype=np.float64)
        n = max(len(work), 1)
        if self.exponent == 0.0:
            share = np.full(len(work), int(np.ceil(E / n)))
        else:
            w = np.maximum(work, 1e-3) ** self.exponent
            share = np.maximum(np.ceil(E * w / max(w.sum(), 1e-12)), 1).astype(np.int64)
        candidates = np.flatnonzero(np.asarray(eligible) & ((executors < share) | (idle_local > 0)))
        if self.order == "deficit":
            key = (executors[candidates] - idle_local[candidates]) / share[candidates]  # ties: the oldest
        else:  # the job with the least remaining work first
            key = work[candidates]
        return candidates[np.argsort(key, kind="stable")], share

    def observed(self, obs) -> tuple[np.ndarray, ...]:
        """:meth:`ranking` on an observation: the slots of the jobs in the system (oldest first), the
        schedulable-stage mask (all slots × stages), and over those jobs the ranking, their shares and
        their executors."""
        J, S = _split(obs)
        mask = np.asarray(obs["stage_mask"])[: J * S].reshape(J, S)
        jobs = np.asarray(obs["job_features"])
        E = np.asarray(obs["limit_mask"]).shape[-1]
        present = np.flatnonzero(jobs[:, 0] > 0)
        executors = np.rint(jobs[present, 1] * E).astype(np.int64)
        idle_local = np.rint(jobs[present, 5] * E).astype(np.int64)
        ranked, share = self.ranking(jobs[present, 4], executors, idle_local, mask[present].any(1), E)
        return present, mask, ranked, share, executors

    def act(self, obs, info=None):
        J, S = _split(obs)
        E = np.asarray(obs["limit_mask"]).shape[-1]
        present, mask, ranked, share, executors = self.observed(obs)
        if len(ranked) == 0:
            return np.asarray([J * S, 0])
        i = ranked[0]
        k = int(present[i])
        stage = int(np.flatnonzero(mask[k])[0])
        return np.asarray([k * S + stage, min(max(int(share[i]), executors[i] + 1), E) - 1])


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


class WaitGate:
    """A wait gate over wfair: ``inner`` (e.g. a distilled student) decides *when* a free executor goes out
    (its waits are kept as they are); where it sends one, wfair decides *where* — or ``inner``'s own choice
    stands, where wfair would wait. ``limit="wfair"`` sends wfair's whole choice (job, stage, limit);
    ``limit="own"`` only wfair's job and stage, with ``inner``'s limit for that job (``inner`` is asked
    again with only that stage open). ``inner`` needs ``act`` (and ``act_list`` for batched evaluation:
    then this has one too)."""

    def __init__(self, inner, name: str | None = None, limit: str = "wfair"):
        if limit not in ("wfair", "own"):
            raise ValueError(f"WaitGate(limit={limit!r}): use 'wfair' or 'own'")
        self.inner, self.rule, self.limit = inner, WeightedFair(), limit
        self.name = name or getattr(inner, "name", "policy") + ("+wfair" if limit == "wfair" else "+wfair-slot")
        if hasattr(inner, "act_list"):
            self.act_list = self._act_list

    def reset(self, seed: int | None = None) -> None:
        self.inner.reset(seed=seed)

    def _place(self, obs, action) -> np.ndarray:
        J, S = _split(obs)
        if int(action[0]) == J * S:  # the scheduler waits
            return np.asarray(action)
        w = self.rule.act(obs)
        return np.asarray(action) if int(w[0]) == J * S else w

    def _own_limits(self, obs_list, own, placed, ask) -> list[np.ndarray]:
        """``limit="own"``: ``inner``'s action where wfair picks its slot too, else ``inner``'s action with
        only wfair's slot open."""
        if self.limit == "wfair":
            return placed
        out = [np.asarray(a) for a in own]  # the waits, and where wfair waits or picks the same slot
        again = [i for i, (a, p) in enumerate(zip(own, placed)) if int(a[0]) != int(p[0])]
        masked = []
        for i in again:
            m = np.zeros_like(np.asarray(obs_list[i]["stage_mask"]))
            m[int(placed[i][0])] = 1
            masked.append({**obs_list[i], "stage_mask": m})
        for i, a in zip(again, ask(masked) if masked else []):
            out[i] = np.asarray(a)
        return out

    def act(self, obs, info=None):
        a = self.inner.act(obs, info)
        return self._own_limits([obs], [a], [self._place(obs, a)], lambda m: [self.inner.act(o) for o in m])[0]

    def _act_list(self, obs_list, infos=None):
        own = self.inner.act_list(obs_list, infos)
        placed = [self._place(o, a) for o, a in zip(obs_list, own)]
        return self._own_limits(obs_list, own, placed, self.inner.act_list)
