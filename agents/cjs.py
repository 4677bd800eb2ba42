"""CJS heuristics: FIFO, Fair (dynamic partition) and wfair (size-weighted Fair), as spark_sched_sim's
round-robin schedulers decide. numpy only; they read the observation."""

from __future__ import annotations

import numpy as np

from .base import BatchPolicy


def _split(obs):
    node = np.asarray(obs["node_features"])
    J, S = node.shape[-3], node.shape[-2]
    return J, S


WFAIR_EXPONENT = 0.5  # wfair's share exponent, shares ∝ remaining work ^ this (picked on training seeds, docs/CJS.md)
SHARE_TOL = 1e-4  # shares are whole executors: a fraction below this is rounding (float32 in the models), not a share


def _first_stage(mask_row: np.ndarray, unblocked_row: np.ndarray) -> int:
    """The job's offered stage to serve: one whose parents have all completed first, then by index."""
    offered = np.flatnonzero(mask_row)
    full = offered[unblocked_row[offered] >= 1.0]
    return int(full[0] if len(full) else offered[0])


class WeightedFair(BatchPolicy):
    """The round-robin family of spark_sched_sim's heuristics (FIFO, Fair), with shares weighted by work.

    In a round whose source is a job's pool (the job's ``idle local executors`` feature > 0: executors
    of its own the round may commit), that job's offered stage gets all of them. Otherwise the jobs whose
    supply (executors sent to them) is below their share are served in ``order`` — ``"arrival"`` (oldest
    first, as Fair and FIFO) or ``"least-work"`` (least remaining work first) — and the first with an
    offered stage gets it at limit = its share (the simulator commits share − supply executors). Shares:
    ``cap`` when given (FIFO: 25), else ``⌈E · w_k / Σ w⌉`` with ``w_k = remaining_work_k ^ exponent``
    (exponent 0: Fair's ⌈E / jobs⌉). No such job: wait. A stage whose parents have all completed is served
    before one whose parents are only saturated (spark_sched_sim's rule)."""

    name = "wfair"

    def __init__(self, exponent: float = WFAIR_EXPONENT, order: str = "least-work", cap: int | None = None):
        if order not in ("arrival", "least-work"):
            raise ValueError(f"WeightedFair(order={order!r}): use 'arrival' or 'least-work'")
        self.exponent, self.order, self.cap = float(exponent), order, cap

    def ranking(self, work, executors, idle_local, eligible, E: int) -> tuple[np.ndarray, np.ndarray]:
        """The rule on plain arrays over the jobs in the system (oldest first): remaining work, supply,
        source executors of each job, whether it has an offered stage. Returns the candidate jobs in the
        order served (the first is the choice) and every job's share."""
        work = np.asarray(work, dtype=np.float64)
        if self.cap is not None:
            share = np.full(len(work), int(self.cap))
        elif self.exponent == 0.0:
            share = np.full(len(work), int(np.ceil(E / max(len(work), 1))))
        else:
            w = np.maximum(work, 1e-3) ** self.exponent
            # the tolerance keeps a whole share whole (50·w/w can round to 50.000000000000007 -> 51)
            share = np.maximum(np.ceil(E * w / max(w.sum(), 1e-12) - SHARE_TOL), 1).astype(np.int64)
        eligible, idle_local = np.asarray(eligible, bool), np.asarray(idle_local)
        source = np.flatnonzero(eligible & (idle_local > 0))
        below = np.flatnonzero(eligible & (np.asarray(executors) < share) & (idle_local <= 0))
        if self.order == "least-work":
            below = below[np.argsort(work[below], kind="stable")]
        return np.concatenate([source, below]).astype(np.int64), share

    def observed(self, obs) -> tuple[np.ndarray, ...]:
        """:meth:`ranking` on an observation: the slots of the jobs in the system (oldest first), the
        offered-stage mask (all slots × stages), and over those jobs the ranking, their shares and supply."""
        J, S = _split(obs)
        mask = np.asarray(obs["stage_mask"])[: J * S].reshape(J, S).astype(bool)
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
        present, mask, ranked, share, _ = self.observed(obs)
        if len(ranked) == 0:
            return np.asarray([J * S, 0])
        i = ranked[0]
        k = int(present[i])
        unblocked = np.asarray(obs["node_features"])[k, :, 4]
        source = np.asarray(obs["job_features"])[k, 5] > 0
        limit = E if source else min(int(share[i]), E)  # the round's own job takes all of its executors
        return np.asarray([k * S + _first_stage(mask[k], unblocked), limit - 1])


class Fair(WeightedFair):
    """Dynamic partition (spark_sched_sim's Fair): each job may hold ⌈executors / jobs in the system⌉;
    the oldest job below that with an offered stage is served."""

    name = "fair"

    def __init__(self):
        super().__init__(exponent=0.0, order="arrival")


class FIFO(WeightedFair):
    """spark_sched_sim's FIFO as NetLLM runs it: the oldest job below a fixed cap of 25 executors
    (⌈50 / 2⌉) is served."""

    name = "fifo"

    def __init__(self, cap: int = 25):
        super().__init__(exponent=0.0, order="arrival", cap=cap)


class UncappedFIFO(FIFO):
    """FIFO without the cap: the oldest job may take the whole cluster (Spark's default FIFO)."""

    name = "fifo-uncapped"

    def __init__(self):
        super().__init__(cap=50)
