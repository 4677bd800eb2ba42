"""Event-driven Spark cluster simulator with the rules of spark_sched_sim (the Decima simulator NetLLM reuses),
as ``shared/data/cjs/reference/SEMANTICS.md`` and its source describe them; docs/CJS.md tabulates them.

* Workload: ``num_jobs`` TPC-H jobs, the first at t = 0, then exponential gaps (4e-5 per ms), or a given job
  sequence (``reset(workload=)``). ``num_executors`` (50) executors live in pools: the *common* pool, a *job*
  pool or a *stage* pool; moving to another job takes ``moving_delay_ms`` (2000 ms).
* **Rounds** run at one source pool: the common pool when a job arrives (the only round there), a job pool when
  a stage completion unlocks children, a stage pool when an executor finishes there with no task left and
  nothing committed (a completed job's last executor too). Each pick *commits* source executors to a stage (at
  most its demand). After picks the uncommitted ones are committed to the common pool; idle committed executors
  leave at once, busy ones when their stage has no task left to start. A round that offered nothing lets its
  idle executors go at once.
* **Letting go**: from a stage pool to the job pool; from a job pool nowhere; to the common pool only once
  every task of the job has started. A completed job's idle executors go to the common pool.
* **Offered stages**: demand (unstarted − moving − committed) > 0, every parent *saturated* (demand ≤ 0), not
  picked this round, the job's supply below the cluster size (except the source's own job). Supply = executors
  sent to the job, less those it sent to other jobs from its own pools, plus commitments from other pools: an
  executor that drops to the common pool keeps counting for its job. Tasks start only when every parent has
  *completed* (an executor that arrives earlier waits in the job pool); one whose target has no task left takes
  its job's last offered stage, or is let go.
* **Durations** from the recorded waves at the level of the job's local executors (n ≤ 5 → 5; a recorded level
  → itself; l < n < r → l with probability (n − l)/(r − l), else r). An executor keeps its last task through
  commitments within its job and loses it when it leaves the job, is released with nothing committed, or parks
  for a stage that cannot start. Without one it draws ``fresh_durations`` (none: ``first_wave`` + 1000 ms); on
  the same stage ``rest_wave`` (none: ``first_wave``); else ``first_wave`` (none: ``fresh_durations``).
* Time is in ms inside; JCT and rewards in seconds. Reward of a step: −(job-seconds in the system during it).

Kept different on purpose (docs/CJS.md): durations draw from Python's ``random`` seeded from the env's
generator (schedules match the reference in distribution, not draw for draw); a backup stage is searched in the
executor's own job only; when no event is left and jobs are unfinished (degenerate schedulers only), idle
executors go to the common pool, counted for no job, and are offered there.
"""

from __future__ import annotations

import heapq
import random
from collections import defaultdict
from dataclasses import dataclass
from itertools import count

import numpy as np

from traces.tpch import QUERY_SIZES, JobDAG

from .jobs import EXECUTOR_LEVELS, FIRST, FRESH, REST, Job, draw_tables, executor_intervals  # noqa: F401  (EXECUTOR_LEVELS: re-exported)

ARRIVAL, TASK_DONE, EXEC_ARRIVES = 0, 1, 2  # event kinds
TASK_START = 3  # logged only (a task starts inside another event's handling or a decision)
COMMON = (-1, -1)  # the common pool's key; a job pool is (job, -1), a stage pool (job, stage)


@dataclass(frozen=True)
class CJSConfig:
    """Workload and cluster (spark_sched_sim's ``decima_tpch.yaml``; NetLLM uses the same)."""

    num_executors: int = 50  # cluster size in Decima's TPC-H experiments
    num_jobs: int = 200  # streaming jobs per episode (NetLLM's CJS setting)
    arrival_rate_per_ms: float = 4e-5  # Poisson rate: mean inter-arrival 25 s (spark-sched-sim default)
    moving_delay_ms: float = 2000.0  # an executor changing jobs is unavailable this long
    warmup_delay_ms: float = 1000.0  # added to a fresh executor's first-wave task when no fresh duration exists
    query_sizes: tuple = QUERY_SIZES  # input sizes sampled uniformly
    event_log: bool = False  # keep SparkSim.log, every event of the episode (tests, debugging; ~460k per episode)


class SparkSim:
    """The simulator. ``reset(rng)`` builds a workload and runs to the first round; ``apply(job, stage,
    limit)`` commits source executors; ``advance()`` ends the round when it is over and runs events to the
    next round (or the end); ``advance(wait=True)`` ends the round now."""

    def __init__(self, templates: dict[tuple[int, str], JobDAG] | list[JobDAG], config: CJSConfig = CJSConfig(),
                 visible_jobs: int | None = None):
        self.config = config
        self.visible_jobs = visible_jobs  # only the oldest this many active jobs can be scheduled (obs slots)
        if isinstance(templates, dict):
            keys = [k for k in templates if k[1] in config.query_sizes]
            self.templates = [templates[k] for k in sorted(keys, key=lambda k: (config.query_sizes.index(k[1]), k[0]))]
        else:
            self.templates = list(templates)
        if not self.templates:
            raise ValueError("no job templates")
        self.intervals = executor_intervals(config.num_executors)
        self._levels = [(int(lo), int(hi)) for lo, hi in self.intervals]

    # -------------------------------------------------------------------------------- episode
    def reset(self, rng: np.random.Generator, workload: list[tuple[float, JobDAG]] | None = None) -> None:
        cfg = self.config
        self.rng = rng
        # task durations: Python's generator, as the reference's (seeded from the env's, so reset(seed) fixes all)
        self.prng = random.Random(int(rng.integers(2**62)))
        self.now = 0.0
        self.events: list = []
        self.seq = count()
        if workload is None:
            t, workload = 0.0, []
            for _ in range(cfg.num_jobs):
                workload.append((t, self.templates[int(rng.integers(len(self.templates)))]))
                t += rng.exponential(1.0 / cfg.arrival_rate_per_ms)
        self.jobs = [Job(i, dag, t) for i, (t, dag) in enumerate(workload)]
        for job in self.jobs:
            self._push(job.arrival_ms, ARRIVAL, job.id)
        n = cfg.num_executors
        self.pool = [COMMON] * n  # where each executor is (a moving one: its destination stage)
        self.busy = [False] * n  # Python lists: read and written once per task, where numpy scalars are slow
        self.in_transit = [False] * n
        # (job, stage) of each executor's last task; None while it is idle. As in spark_sched_sim, an executor
        # keeps its last task through commitments and moves (even to another job), and loses it only when it
        # is released with nothing committed or waits at its job for a stage that cannot start yet.
        self.last_task = [None] * n
        self.supply_job = [-1] * n  # the job each executor was last sent to (-1: none)
        self.local = [0] * len(self.jobs)  # executors at each job (in its pools, not moving)
        for job in self.jobs:
            job.draws = draw_tables(job.dag, self._levels, cfg.warmup_delay_ms)  # [case][stage][local executors]
            job.mean_ms = job.dag.mean_duration_ms.tolist()
        self.members = defaultdict(set)  # pool -> executors in it (not moving)
        self.members[COMMON] = set(range(n))
        self.commits = defaultdict(lambda: defaultdict(int))  # source pool -> destination -> count
        self.active: list[int] = []  # arrived, unfinished job ids, in arrival order
        self.completed: list[int] = []
        self.jct_total_ms = 0.0
        self.log: list[tuple] = []  # (time, kind, job, stage, executor), with config.event_log
        self._logging = self.config.event_log
        self.source = None  # the pool of the round in progress
        self.rounds = 0  # rounds started (with Job.version, the key of a job's cached stage mask)
        self.picked: set = set()  # stages picked in this round
        self.advance()

    def _push(self, t: float, kind: int, a: int, b: int = -1) -> None:
        heapq.heappush(self.events, (t, next(self.seq), kind, a, b))

    @property
    def area_ms(self) -> float:
        """∫ (jobs in the system) dt from the start to now, for rewards: each completed job's JCT plus the time
        each active one has spent so far (computed when asked, not on every event)."""
        return self.jct_total_ms + sum(self.now - self.jobs[j].arrival_ms for j in self.active)

    @property
    def done(self) -> bool:
        return len(self.completed) == len(self.jobs)

    def visible(self) -> list[int]:
        return self.active if self.visible_jobs is None else self.active[: self.visible_jobs]

    # ----------------------------------------------------------------------------- the round
    def _source_job(self) -> int:
        return -1 if self.source is None else self.source[0]

    def committable(self) -> int:
        """Executors of the source pool not committed yet (busy ones included)."""
        return 0 if self.source is None else self.committable_of(self.source)

    def free_executors(self) -> np.ndarray:
        """The committable executors of the round (their ids; busy ones included)."""
        if self.source is None:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(sorted(self.members[self.source]), dtype=np.int64)[: self.committable()]

    def supply(self, job: Job) -> int:
        return job.sent + job.incoming

    def can_grow(self, job: Job) -> bool:
        return job.id == self._source_job() or self.supply(job) < self.config.num_executors

    def stage_mask(self, job: Job) -> np.ndarray:
        """(N,) bool: the job's stages offered in this round."""
        if self.source is None or self.committable() <= 0 or not self.can_grow(job):
            return np.zeros(job.dag.num_stages, dtype=bool)
        key = (job.version, self.rounds)  # the job unchanged in this round: the mask is too (callers only read it)
        if job.mask_key == key:
            return job.mask
        mask = (job.demand() > 0) & job.parents_saturated() & ~job.stage_done
        for j, s in self.picked:
            if j == job.id:
                mask[s] = False
        job.mask_key, job.mask = key, mask
        return mask

    def needs_decision(self) -> bool:
        if self.source is None:
            return False
        return any(self.stage_mask(self.jobs[j]).any() for j in self.visible())

    def apply(self, job_id: int, stage: int, limit: int) -> int:
        """Commit source executors to ``stage`` of ``job_id``: as many as the job may still take under
        ``limit`` (the source's own job: all its executors), at most the stage's demand, at least one."""
        job = self.jobs[job_id]
        if job_id not in self.visible() or not self.stage_mask(job)[stage]:
            raise ValueError(f"stage {stage} of job {job_id} is not offered now")
        room = self.committable()
        if job_id == self._source_job():
            want = room if limit >= self.config.num_executors else max(1, limit - self.supply(job) + room)
        else:
            want = max(1, limit - self.supply(job))
        n = int(min(want, room, job.demand()[stage]))
        job.limit = int(limit)
        self.commits[self.source][(job_id, stage)] += n
        job.committed[stage] += n
        if job_id != self._source_job():
            job.incoming += n
        self.picked.add((job_id, stage))
        job.touch()
        return n

    def _end_round(self, decided: bool = True) -> None:
        """End the round. After decisions, the source's uncommitted executors are committed to the common pool
        and every idle committed one leaves now (busy ones when released); a round offered nothing moves only
        its idle executors on (:meth:`_release`)."""
        src = self.source
        self.source, self.picked = None, set()
        for j in self.active:
            if self.jobs[j].n_idle:
                self.jobs[j].n_idle = 0
                self.jobs[j].touch()
        if src is None:
            return
        if not decided:
            for e in sorted(self.members[src]):
                if not self.busy[e]:
                    self._release(e, src)
            return
        left = self.committable_of(src)
        if left > 0 and src != COMMON:
            self.commits[src][COMMON] += left
        for e in sorted(self.members[src]):
            if not self.busy[e]:
                self._fulfill(e)

    def _release(self, e: int, src) -> None:
        """``e``, idle, is let go from pool ``src``: from a stage pool to its job's pool, from a job pool nowhere,
        unless every task of the job has started (nothing left to give it): then to the common pool."""
        if src == COMMON:
            return
        job = self.jobs[src[0]]
        if job.unlaunched.any() and job.id in self.active:
            if self.pool[e] != (job.id, -1):
                self._move_to_pool(e, (job.id, -1))
            return
        self._detach(e)

    def _detach(self, e: int) -> None:
        """``e`` leaves its job for the common pool and forgets its last task (it counts in the job's supply
        still: only an executor sent away from the job's own pools leaves it)."""
        self._move_to_pool(e, COMMON)
        self.last_task[e] = None

    def committable_of(self, pool) -> int:
        return len(self.members[pool]) - sum(self.commits[pool].values())

    def _fulfill(self, e: int) -> bool:
        """Send ``e`` (idle, in its pool) where its pool committed an executor; False if nothing is."""
        src = self.pool[e]
        pending = self.commits[src]
        if not pending:
            return False
        dest = next(iter(pending))
        pending[dest] -= 1
        if pending[dest] == 0:
            del pending[dest]
        if dest == COMMON:
            self._release(e, src)
            return True
        job = self.jobs[dest[0]]
        job.committed[dest[1]] -= 1
        if src == COMMON or src[0] != job.id:
            job.incoming -= 1
        job.touch()
        if job.completed or job.id not in self.active:
            self._detach(e)
            return True
        if src != COMMON and src[0] == job.id:  # already at the job: no move
            self._move_to_pool(e, (job.id, -1))
            self._arrive(e, dest[1])
        else:
            # sent: it counts in the supply of its destination, and leaves that of the job it was at (one it
            # reached from the common pool stays counted where it was before: spark_sched_sim's bookkeeping)
            if src != COMMON:
                self.jobs[src[0]].sent -= 1
                self.jobs[src[0]].touch()
                self.last_task[e] = None  # it leaves its job: no last task at the next
            job.sent += 1
            self.supply_job[e] = job.id
            self._leave(e)
            self.in_transit[e] = True
            self.pool[e] = dest
            job.moving[dest[1]] += 1
            self._push(self.now + self.config.moving_delay_ms, EXEC_ARRIVES, e, dest[1])
        return True

    def _drop_supply(self, e: int) -> None:
        """``e`` no longer counts in the supply of the job it was last sent to (the end-of-workload fallback)."""
        old = self.supply_job[e]
        if old >= 0:
            self.jobs[old].sent -= 1
            self.jobs[old].touch()
            self.supply_job[e] = -1

    def _leave(self, e: int) -> None:
        pool = self.pool[e]
        self.members[pool].discard(e)
        if pool[0] >= 0 and not self.in_transit[e]:
            self.local[pool[0]] -= 1

    def _move_to_pool(self, e: int, pool) -> None:
        self._leave(e)
        self.pool[e] = pool
        self.members[pool].add(e)
        if pool[0] >= 0:
            self.local[pool[0]] += 1

    def _start_round(self, pool) -> None:
        if self.source is None and self.committable_of(pool) > 0:
            self.source, self.picked = pool, set()
            self.rounds += 1
            if pool != COMMON:
                job = self.jobs[pool[0]]
                job.n_idle = self.committable_of(pool)
                job.touch()

    # ------------------------------------------------------------------------------ executors
    def _draw(self, job: Job, stage: int, case: int) -> float:
        """One task duration of ``stage`` for an executor without a last task (FRESH), going on with the same
        stage (REST) or new to it (FIRST), at the level drawn around the job's local executors (jobs.draw_tables)."""
        local = self.local[job.id]
        lo, hi, arr, arr_hi, add, add_hi = job.draws[case][stage][local]
        rand = self.prng.random
        if lo != hi and 1 + int(rand() * (hi - lo)) > local - lo:
            arr, add = arr_hi, add_hi
        return arr[int(rand() * len(arr))] + add if arr else job.mean_ms[stage]

    def _start_task(self, e: int, job: Job, stage: int) -> None:
        before = self.last_task[e]  # its last task picks the wave
        d = self._draw(job, stage, FRESH if before is None else REST if before == (job.id, stage) else FIRST)
        if self.pool[e] != (job.id, stage):
            self._move_to_pool(e, (job.id, stage))
        job.unlaunched[stage] -= 1
        job.running[stage] += 1
        job.last_duration_ms[stage] = d
        job.touch()
        self.busy[e] = True
        self.last_task[e] = (job.id, stage)
        if self._logging:
            self.log.append((self.now, TASK_START, job.id, stage, e))
        self._push(self.now + d, TASK_DONE, e, stage)

    def _ready(self, job: Job, stage: int) -> bool:
        return job.unlaunched[stage] > 0 and not job.stage_done[stage] and job.parents_left[stage] == 0

    def _arrive(self, e: int, stage: int) -> None:
        """``e`` is at its job for ``stage``. A stage with no task left to start is replaced by the job's last
        offered stage (spark_sched_sim's backup); the task starts if its parents completed, else ``e`` waits,
        idle, in the job pool (as it does when no backup exists)."""
        job = self.jobs[self.pool[e][0]]
        if job.unlaunched[stage] <= 0 or job.stage_done[stage]:
            offered = np.flatnonzero((job.demand() > 0) & job.parents_saturated())
            stage = int(offered[-1]) if len(offered) else -1
        if stage < 0:  # no backup: let go from the job pool (it keeps its last task while it stays)
            self._release(e, (job.id, -1))
            return
        if self._ready(job, stage):
            self._start_task(e, job, stage)
            return
        if self.pool[e] != (job.id, -1):
            self._move_to_pool(e, (job.id, -1))
        self.last_task[e] = None

    # ---------------------------------------------------------------------------------- events
    def advance(self, wait: bool = False) -> None:
        """End the round if it is over (or ``wait``), then run events until the next round with an offered
        stage, or the end."""
        if wait or (self.source is not None and not self.needs_decision()):
            self._end_round()
        events, pop, on_task_done = self.events, heapq.heappop, self._on_task_done
        while True:
            if self.source is not None:  # (no round in progress: nothing to decide, the common case)
                if self.needs_decision():
                    return
                self._end_round(decided=False)
            if not events:
                if self.done:
                    return
                if self.source is None:
                    # nothing will happen unless idle executors go out: every idle one joins the common pool,
                    # counted for no job (else a job whose supply they fill is never offered them again), and
                    # is offered there (a round the scheduler cannot wait through: no event is left)
                    for x in range(self.config.num_executors):
                        if not self.busy[x] and not self.in_transit[x]:
                            if self.pool[x] != COMMON:
                                self._detach(x)
                            self._drop_supply(x)
                    self._start_round(COMMON)
                    if self.needs_decision():
                        return
                raise RuntimeError("simulation stalled with unfinished jobs")  # pragma: no cover
            t, _, kind, a, b = pop(events)
            self.now = t
            if kind == TASK_DONE:  # most events
                on_task_done(a, b)
            elif kind == ARRIVAL:
                self.active.append(a)
                if self._logging:
                    self.log.append((t, kind, a, -1, -1))
                self._start_round(COMMON)
            else:
                self._on_executor_arrival(a, b)

    def _on_executor_arrival(self, e: int, stage: int) -> None:
        job = self.jobs[self.pool[e][0]]
        self.in_transit[e] = False
        job.moving[stage] -= 1
        job.touch()
        self.members[self.pool[e]].add(e)
        self.local[job.id] += 1
        if self._logging:
            self.log.append((self.now, EXEC_ARRIVES, job.id, stage, e))
        if job.id not in self.active:  # the job completed while it moved
            self._detach(e)
            return
        self._arrive(e, stage)

    def _on_task_done(self, e: int, stage: int) -> None:
        job = self.jobs[self.pool[e][0]]
        now = self.now
        if self._logging:
            self.log.append((now, TASK_DONE, job.id, stage, e))
        job.version += 1  # touch()
        if job.unlaunched[stage] > 0:
            # the stage has tasks left: the executor goes straight on with it (most events: _start_task
            # unrolled; it stays busy, in its stage pool, and running is unchanged)
            d = self._draw(job, stage, REST)
            job.unlaunched[stage] -= 1
            job.last_duration_ms[stage] = d
            if self._logging:
                self.log.append((now, TASK_START, job.id, stage, e))
            heapq.heappush(self.events, (now + d, next(self.seq), TASK_DONE, e, stage))
            return
        self.busy[e] = False
        job.running[stage] -= 1
        unlocked = False  # a child can start now
        if job.running[stage] == 0:  # nothing left to start (above) and nothing running: the stage completed
            job.stage_done[stage] = True
            job.stages_left -= 1
            job.parents_left[job.children[stage]] -= 1
            unlocked = any(job.parents_left[c] == 0 and job.unlaunched[c] > 0 for c in job.children[stage])
            if job.completed:
                self._complete(job, e)
        if self._fulfill(e):  # committed elsewhere: it goes with its last task
            if unlocked:  # executors waiting at the job may now be committed to the children
                self._start_round((job.id, -1))
            return
        self.last_task[e] = None  # released with nothing committed: idle
        if unlocked:  # children can start: a round at the job pool, which it joins
            self._release(e, (job.id, stage))
            self._start_round((job.id, -1))
        else:  # a round at its stage pool offers it (a completed job's last executor too)
            self._start_round((job.id, stage))

    def _complete(self, job: Job, last: int) -> None:
        """The job's idle executors leave for the common pool, except ``last``, whose task completed it: it goes
        where its pool committed it, else a round at its stage pool offers it."""
        job.completion_ms = self.now
        self.jct_total_ms += self.now - job.arrival_ms
        self.active.remove(job.id)
        self.completed.append(job.id)
        for stage in range(-1, job.dag.num_stages):  # its job pool, then its stage pools
            for x in sorted(self.members.get((job.id, stage), ())):
                if x != last:
                    self._detach(x)
        job.touch()

    # --------------------------------------------------------------------------------- metrics
    def jct_s(self) -> np.ndarray:
        """Completion times (s) of the completed jobs, in job (arrival) order: the rows of a workload file."""
        return np.asarray([(self.jobs[j].completion_ms - self.jobs[j].arrival_ms) / 1000.0 for j in sorted(self.completed)])

    def makespan_s(self) -> float:
        return self.now / 1000.0
