"""Event-driven Spark cluster simulator with Decima / spark-sched-sim semantics (numpy, no torch).

* Workload: ``num_jobs`` jobs, each a TPC-H query (1–22) at a random input size, arriving as a
  Poisson process (rate 4e-5 per ms: one job every 25 s on average), the first at t = 0.
* ``num_executors`` executors (50). An executor is idle, moving (2000 ms between jobs, also from the
  general pool) or running one task.
* Decisions: whenever some executor is free and some stage is schedulable, the scheduler picks a
  stage and a parallelism limit for that stage's job; free executors are sent to that stage (those
  already at the job first, without moving), as many as the stage still needs, the job's limit allows
  and are free. If free executors and schedulable stages remain, it is asked again at the same time.
* A stage is schedulable when all its parents have completed, it still has tasks no executor has
  taken or is heading for, and its job is not at the whole cluster. An executor that finishes a task
  keeps working on its stage while it has tasks left and the job is within its limit; otherwise it
  waits, free, at its job. When a job completes, its executors return to the general pool.
* Task durations are drawn from the recorded waves at the executor level nearest the job's number
  of local executors (spark-sched-sim's interval rule over levels 5, 10, 20, 40, 50, 60, 80, 100):
  an executor fresh to a stage after being idle or moving gets ``fresh_durations`` (else
  ``first_wave`` + 1000 ms warm-up); one continuing its stage gets ``rest_wave``; one switching
  stages within its job without idling gets ``first_wave``.
* Time is in ms inside; JCT and rewards are reported in seconds. Reward of a step: −(sum over jobs
  in the system of the time they spent in it during the step).

Deliberate simplifications against spark-sched-sim (docs/CJS.md): one pool of free executors per
decision instead of its per-source commitment rounds; a stage is ready when its parents have
*completed* (Decima's rule) rather than when they are saturated.
"""

from __future__ import annotations

import copy
import heapq
from dataclasses import dataclass, field
from itertools import count

import numpy as np

from traces.tpch import QUERY_SIZES, JobDAG

EXECUTOR_LEVELS = (5, 10, 20, 40, 50, 60, 80, 100)  # recorded executor counts in the TPC-H data
ARRIVAL, TASK_DONE, EXEC_ARRIVES = 0, 1, 2  # event kinds
TASK_START = 3  # logged only (a task starts inside another event's handling or a decision)
IDLE, MOVING, BUSY = 0, 1, 2  # executor states


@dataclass(frozen=True)
class CJSConfig:
    """Workload and cluster (Decima / NetLLM defaults)."""

    num_executors: int = 50  # cluster size in Decima's TPC-H experiments
    num_jobs: int = 200  # streaming jobs per episode (NetLLM's CJS setting)
    arrival_rate_per_ms: float = 4e-5  # Poisson rate: mean inter-arrival 25 s (spark-sched-sim default)
    moving_delay_ms: float = 2000.0  # an executor changing jobs is unavailable this long
    warmup_delay_ms: float = 1000.0  # added to a fresh executor's first-wave task when no fresh duration exists
    query_sizes: tuple = QUERY_SIZES  # input sizes sampled uniformly


def executor_intervals(cap: int, levels=EXECUTOR_LEVELS) -> np.ndarray:
    """(cap+1, 2) neighbouring recorded levels for each local-executor count (spark-sched-sim's rule)."""
    iv = np.zeros((cap + 1, 2), dtype=np.int64)
    for n in range(cap + 1):
        if n <= levels[0]:
            iv[n] = levels[0]
        elif n >= levels[-1]:
            iv[n] = levels[-1]
        elif n in levels:
            iv[n] = n
        else:
            k = np.searchsorted(levels, n)
            iv[n] = (levels[k - 1], levels[k])
    return iv


@dataclass
class Job:
    id: int
    dag: JobDAG
    arrival_ms: float
    completion_ms: float = np.nan
    limit: int = 0
    unlaunched: np.ndarray = field(default=None)  # type: ignore[assignment]  # tasks nobody took yet
    heading: np.ndarray = field(default=None)  # type: ignore[assignment]  # executors moving to each stage
    running: np.ndarray = field(default=None)  # type: ignore[assignment]
    done_tasks: np.ndarray = field(default=None)  # type: ignore[assignment]
    parents_left: np.ndarray = field(default=None)  # type: ignore[assignment]
    stage_done: np.ndarray = field(default=None)  # type: ignore[assignment]
    executors: set = field(default_factory=set)  # at the job or moving to it
    last_duration_ms: np.ndarray = field(default=None)  # type: ignore[assignment]
    n_moving: int = 0  # of `executors`, moving to the job
    n_idle: int = 0  # of `executors`, idle at the job

    def __post_init__(self):
        n = self.dag.num_stages
        self.unlaunched = self.dag.num_tasks.copy()
        self.heading = np.zeros(n, dtype=np.int64)
        self.running = np.zeros(n, dtype=np.int64)
        self.done_tasks = np.zeros(n, dtype=np.int64)
        self.parents_left = self.dag.adjacency.sum(0).astype(np.int64)
        self.stage_done = np.zeros(n, dtype=bool)
        self.last_duration_ms = self.dag.mean_duration_ms.copy()
        self.children = [np.flatnonzero(self.dag.adjacency[i]) for i in range(n)]
        self._sched = None  # cached schedulable(); cleared by touch() on every change

    version: int = 0  # bumped by touch(): observers recompute this job's features only when it changed

    def touch(self) -> None:
        self._sched = None
        self.version += 1

    @property
    def completed(self) -> bool:
        return bool(self.stage_done.all())

    def demand(self) -> np.ndarray:
        return self.unlaunched - self.heading

    def schedulable(self) -> np.ndarray:
        """(N,) bool: parents complete, tasks left that nobody took or heads for."""
        if self._sched is None:
            self._sched = (self.parents_left == 0) & ~self.stage_done & (self.unlaunched - self.heading > 0)
            self._any = bool(self._sched.any())
        return self._sched

    def any_schedulable(self) -> bool:
        if self._sched is None:
            self.schedulable()
        return self._any

    def remaining_work_ms(self) -> float:
        left = self.dag.num_tasks - self.done_tasks
        return float((left * self.dag.mean_duration_ms).sum())


class SparkSim:
    """The simulator. ``reset(rng)`` builds a workload; ``apply(job, stage, limit)`` makes one
    decision; ``advance()`` runs events until the next decision point or the end."""

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

    # -------------------------------------------------------------------------------- episode
    def reset(self, rng: np.random.Generator, workload: list[tuple[float, JobDAG]] | None = None) -> None:
        cfg = self.config
        self.rng = rng
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
        self.exec_state = np.full(n, IDLE, dtype=np.int64)
        self.exec_job = np.full(n, -1, dtype=np.int64)  # -1: general pool
        self.exec_stage = np.full(n, -1, dtype=np.int64)
        self.exec_free_since = np.zeros(n)  # when it last became idle
        self.exec_fresh = np.ones(n, dtype=bool)  # next task is its first after idling or moving
        self.active: list[int] = []  # arrived, unfinished job ids, in arrival order
        self.completed: list[int] = []
        self.jct_total_ms = 0.0  # running sum, so per-step info needs no pass over the completed jobs
        self.area_ms = 0.0  # ∫ (jobs in system) dt, for rewards
        self.log: list[tuple] = []  # (time, kind, job, stage, executor): the event trace, task starts included
        self.advance()

    def _push(self, t: float, kind: int, a: int, b: int = -1) -> None:
        heapq.heappush(self.events, (t, next(self.seq), kind, a, b))

    @property
    def done(self) -> bool:
        return len(self.completed) == len(self.jobs)

    def free_executors(self) -> np.ndarray:
        return np.flatnonzero(self.exec_state == IDLE)

    def can_grow(self, job: Job) -> bool:
        """The job can put another free executor to work: it is below the whole cluster, or one of
        its own executors is idle."""
        return len(job.executors) < self.config.num_executors or job.n_idle > 0

    def idle_local(self, job: Job) -> int:
        return job.n_idle

    def visible(self) -> list[int]:
        return self.active if self.visible_jobs is None else self.active[: self.visible_jobs]

    def schedulable_stages(self) -> list[tuple[int, int]]:
        out = []
        for j in self.visible():
            job = self.jobs[j]
            if not self.can_grow(job):
                continue
            out.extend((j, int(s)) for s in np.flatnonzero(job.schedulable()))
        return out

    def needs_decision(self) -> bool:
        if not (self.exec_state == IDLE).any():
            return False
        for j in self.visible():
            job = self.jobs[j]
            if job.any_schedulable() and self.can_grow(job):
                return True
        return False

    # ------------------------------------------------------------------------------- decisions
    def apply(self, job_id: int, stage: int, limit: int) -> int:
        """Send free executors to ``stage`` of ``job_id`` under parallelism ``limit``; return how many."""
        job = self.jobs[job_id]
        if job_id not in self.visible() or not job.schedulable()[stage]:
            raise ValueError(f"stage {stage} of job {job_id} is not schedulable now")
        cfg = self.config
        limit = int(min(max(limit, len(job.executors) + 1), cfg.num_executors))
        job.limit = limit
        free = self.free_executors()
        local = free[self.exec_job[free] == job_id]
        others = free[self.exec_job[free] != job_id]
        want = int(min(job.demand()[stage], limit - len(job.executors) + len(local), len(free)))
        chosen = list(local[:want]) + list(others[: max(0, want - len(local))])
        for e in chosen:
            if self.exec_job[e] == job_id:
                self._start_task(int(e), job, stage)
            else:
                self._send(int(e), job, stage)
        return len(chosen)

    def _send(self, e: int, job: Job, stage: int) -> None:
        old = self.exec_job[e]
        if old >= 0:
            self.jobs[old].executors.discard(e)
            self.jobs[old].n_idle -= 1  # only free (idle) executors are sent
            self.jobs[old].touch()
        job.executors.add(e)
        job.heading[stage] += 1
        job.n_moving += 1
        job.touch()
        self.exec_state[e] = MOVING
        self.exec_job[e] = job.id
        self.exec_stage[e] = stage
        self.exec_fresh[e] = True
        self._push(self.now + self.config.moving_delay_ms, EXEC_ARRIVES, e, stage)

    def _duration(self, e: int, job: Job, stage: int, continuing: bool) -> float:
        local = len(job.executors) - job.n_moving
        lo, hi = self.intervals[min(max(local, 0), self.config.num_executors)]
        key = int(lo)
        if lo != hi and 1 + int(self.rng.random() * (hi - lo)) > local - lo:
            key = int(hi)
        waves = job.dag.durations[stage]
        if key not in waves["first_wave"]:
            key = max(waves["first_wave"])  # more executors than the data recorded

        def draw(w):
            arr = waves[w].get(key)
            if arr is None or arr.size == 0:
                return None
            return float(arr[int(self.rng.integers(arr.size))])

        # fresh: just arrived from another job, or idle for a while; else it goes on without a break
        fresh = not continuing and (self.exec_fresh[e] or self.exec_free_since[e] < self.now)
        if fresh:
            d = draw("fresh_durations")
            if d is None:
                d = draw("first_wave")
                d = None if d is None else d + self.config.warmup_delay_ms
        elif continuing:
            d = draw("rest_wave")
            if d is None:
                d = draw("first_wave")
        else:
            d = draw("first_wave")
            if d is None:
                d = draw("fresh_durations")
        if d is None:
            d = float(job.dag.mean_duration_ms[stage])
        return d

    def _start_task(self, e: int, job: Job, stage: int, continuing: bool = False) -> None:
        d = self._duration(e, job, stage, continuing)
        if self.exec_state[e] == IDLE and self.exec_job[e] == job.id:
            job.n_idle -= 1
        job.unlaunched[stage] -= 1
        job.touch()
        job.running[stage] += 1
        job.last_duration_ms[stage] = d
        job.executors.add(e)
        self.exec_state[e] = BUSY
        self.exec_job[e] = job.id
        self.exec_stage[e] = stage
        self.exec_fresh[e] = False
        self.log.append((self.now, TASK_START, job.id, stage, e))
        self._push(self.now + d, TASK_DONE, e, stage)

    # ---------------------------------------------------------------------------------- events
    def advance(self, wait: bool = False) -> None:
        """Run events until a decision is needed or every job has completed.

        ``wait``: the scheduler chose to leave the free executors idle for now; run at least one event
        before asking again.
        """
        while wait or not self.needs_decision():
            if not self.events and wait:
                return  # nothing left to wait for: the decision stands as it was
            wait = False
            if not self.events:
                if not self.done:  # pragma: no cover - guarded by the model
                    raise RuntimeError("simulation stalled with unfinished jobs")
                return
            t, _, kind, a, b = heapq.heappop(self.events)
            self.area_ms += (t - self.now) * len(self.active)
            self.now = t
            if kind == ARRIVAL:
                self.active.append(a)
                self.log.append((t, kind, a, -1, -1))
            elif kind == EXEC_ARRIVES:
                self._on_arrival(a, b)
            else:
                self._on_task_done(a, b)

    def _on_arrival(self, e: int, stage: int) -> None:
        job = self.jobs[self.exec_job[e]]
        job.heading[stage] -= 1
        job.n_moving -= 1
        job.touch()
        self.log.append((self.now, EXEC_ARRIVES, job.id, stage, e))
        if job.unlaunched[stage] > 0 and not job.stage_done[stage]:
            self._start_task(e, job, stage)
        else:
            self._make_idle(e)

    def _make_idle(self, e: int) -> None:
        self.exec_state[e] = IDLE
        self.exec_free_since[e] = self.now
        if self.exec_job[e] >= 0:
            job = self.jobs[self.exec_job[e]]
            job.n_idle += 1
            job.touch()

    def _on_task_done(self, e: int, stage: int) -> None:
        job = self.jobs[self.exec_job[e]]
        self.log.append((self.now, TASK_DONE, job.id, stage, e))
        job.running[stage] -= 1
        job.done_tasks[stage] += 1
        job.touch()
        if job.done_tasks[stage] == job.dag.num_tasks[stage]:
            job.stage_done[stage] = True
            for c in job.children[stage]:
                job.parents_left[c] -= 1
            if job.completed:
                job.completion_ms = self.now
                self.jct_total_ms += self.now - job.arrival_ms
                self.active.remove(job.id)
                self.completed.append(job.id)
                job.n_idle = 0
                for x in list(job.executors):
                    job.executors.discard(x)
                    self.exec_job[x] = -1
                    if self.exec_state[x] == IDLE or x == e:
                        self.exec_stage[x] = -1
                self._make_idle(e)
                self.exec_fresh[e] = True
                return
        if job.unlaunched[stage] - job.heading[stage] > 0 and len(job.executors) <= max(job.limit, 1):
            self._start_task(e, job, stage, continuing=True)  # keep working on the stage
        else:
            self._make_idle(e)

    # ------------------------------------------------------------------------- snapshot, restore
    _JOB_ARRAYS = ("unlaunched", "heading", "running", "done_tasks", "parents_left", "stage_done", "last_duration_ms")
    _EXEC_ARRAYS = ("exec_state", "exec_job", "exec_stage", "exec_free_since", "exec_fresh")

    def snapshot(self) -> dict:
        """The episode's mutable state (clock, event heap, RNG, executors, unfinished jobs), for
        :meth:`restore`: a lookahead can try a decision, roll on and come back (~0.3 ms on a 200-job
        workload, where a ``deepcopy`` of the simulator takes ~0.5 s). Completed jobs never change again
        and are left out; the event log is kept by length (a restore truncates it)."""
        done = set(self.completed)
        jobs = [(j, [getattr(j, a).copy() for a in self._JOB_ARRAYS], set(j.executors), j.limit, j.n_moving,
                 j.n_idle, j.completion_ms) for j in self.jobs if j.id not in done]
        return {"episode": self.jobs, "now": self.now, "events": list(self.events), "seq": copy.copy(self.seq),
                "rng": copy.deepcopy(self.rng.bit_generator.state),
                "exec": [getattr(self, a).copy() for a in self._EXEC_ARRAYS], "active": list(self.active),
                "completed": list(self.completed), "jct": self.jct_total_ms, "area": self.area_ms,
                "log": len(self.log), "jobs": jobs}

    def restore(self, snap: dict) -> None:
        """Return to a :meth:`snapshot` of this episode (any number of times)."""
        if snap["episode"] is not self.jobs:
            raise ValueError("snapshot of another episode (the simulator was reset since)")
        self.now, self.events, self.seq = snap["now"], list(snap["events"]), copy.copy(snap["seq"])
        self.rng.bit_generator.state = snap["rng"]
        for name, arr in zip(self._EXEC_ARRAYS, snap["exec"]):
            getattr(self, name)[:] = arr
        self.active, self.completed = list(snap["active"]), list(snap["completed"])
        self.jct_total_ms, self.area_ms = snap["jct"], snap["area"]
        del self.log[snap["log"]:]
        for job, arrays, executors, limit, moving, idle, completion in snap["jobs"]:
            for name, arr in zip(self._JOB_ARRAYS, arrays):
                getattr(job, name)[:] = arr
            job.executors, job.limit, job.n_moving, job.n_idle = set(executors), limit, moving, idle
            job.completion_ms = completion
            job.touch()  # new version: observers recompute the job's features

    # --------------------------------------------------------------------------------- metrics
    def jct_s(self) -> np.ndarray:
        """Completion times (s) of the completed jobs, in completion order."""
        return np.asarray([(self.jobs[j].completion_ms - self.jobs[j].arrival_ms) / 1000.0 for j in self.completed])

    def makespan_s(self) -> float:
        return self.now / 1000.0
