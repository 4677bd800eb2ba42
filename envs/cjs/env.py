"""``mamba4net/CJS-v0``: Spark job scheduling on TPC-H DAGs (Decima semantics), fixed-shape spaces."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from traces.tpch import JobDAG, load_tpch

from .. import checks
from .core import CJSConfig, SparkSim

NODE_FEATURES = 5  # unlaunched tasks, task duration, remaining work, running tasks, schedulable
JOB_FEATURES = 6  # present, local executors, limit, time in system, remaining work, idle local executors


class CJSEnv(gym.Env):
    """Scheduling streaming Spark jobs on a 50-executor cluster, with spark_sched_sim's rules (``core``).

    ## Action Space
    ``MultiDiscrete([max_jobs·max_stages + 1, num_executors])``: a stage slot (job slot · max_stages +
    stage; the last value = wait: end the scheduling round, its uncommitted executors go to the common
    pool) and a parallelism limit − 1 for that stage's job: the round's source executors committed to the
    stage are ``limit − supply`` (at least one; the source's own job: all of them when the limit is the
    cluster), at most the stage's demand. ``obs["stage_mask"]`` marks the offered slots; :meth:`action_masks`
    gives both masks. An invalid choice (a slot not offered, or wait with no event pending) is replaced by
    the first offered stage and flagged ``info["invalid_action"] = True``, so every step progresses.

    ## Observation Space
    ``Dict`` with fixed shapes; job slot ``k`` is the ``k``-th oldest job in the system:

    | key | shape | content |
    |---|---|---|
    | ``node_features`` | (J, S, 5) | unlaunched tasks / 100, last task duration (s) / 10, remaining work (s) / 1000, running tasks / executors, offered (1: parents completed, 0.5: parents only saturated) |
    | ``job_features`` | (J, 6) | present, supply / executors, limit / executors, time in system (s) / 100, remaining work (s) / 1000, its own executors this round may commit / executors |
    | ``adjacency`` | (J, S, S) int8 | ``[k, i, j] = 1``: stage i of job k is a parent of stage j |
    | ``stage_mask`` | (J·S + 1,) int8 | offered stage slots (+ wait, valid while a future event is pending) |
    | ``limit_mask`` | (J, E) int8 | ``[k, l] = 1`` if limit ``l + 1`` exceeds job k's supply |
    | ``free_executors`` | (1,) | the round's committable executors / executors |

    ## Rewards
    ``−`` the job-seconds spent in the system during the step (sum over jobs present of the time
    they spent there). Its episode sum is −(total JCT); ``info["mean_jct_s"]`` is computed from the
    simulator's completion times.

    ## Starting State
    A workload of 200 TPC-H jobs (random query and size) with Poisson arrivals, from ``reset(seed)``; or a
    recorded job sequence, ``reset(options={"workload": [(arrival_ms, JobDAG), ...]})``.

    ## Episode End
    ``terminated`` when every job has completed.

    ## Arguments
    ``config`` (:class:`CJSConfig`), ``max_jobs`` (observation slots, 64), ``max_stages`` (20; TPC-H
    has ≤ 18), ``templates`` (job DAGs; default: all TPC-H queries from the ``tpch`` dataset).

    ## Version History
    * v0: initial version; its core now follows spark_sched_sim's pools and commitment rounds (issue #25).
    """

    metadata = {"render_modes": [], "render_fps": 1}

    def __init__(self, config: CJSConfig = CJSConfig(), max_jobs: int = 64, max_stages: int = 20,
                 templates: dict | list[JobDAG] | None = None):
        self.config = config
        self.J, self.S, self.E = max_jobs, max_stages, config.num_executors
        templates = load_tpch() if templates is None else templates
        dags = templates.values() if isinstance(templates, dict) else templates
        too_big = [d for d in dags if d.num_stages > max_stages]
        if too_big:
            raise ValueError(f"a job has {too_big[0].num_stages} stages; raise max_stages (now {max_stages})")
        self.sim = SparkSim(templates, config, visible_jobs=max_jobs)
        J, S, E = self.J, self.S, self.E
        self.observation_space = spaces.Dict({
            "node_features": spaces.Box(0.0, np.inf, (J, S, NODE_FEATURES), np.float32),
            "job_features": spaces.Box(0.0, np.inf, (J, JOB_FEATURES), np.float32),
            "adjacency": spaces.Box(0, 1, (J, S, S), np.int8),
            "stage_mask": spaces.Box(0, 1, (J * S + 1,), np.int8),
            "limit_mask": spaces.Box(0, 1, (J, E), np.int8),
            "free_executors": spaces.Box(0.0, 1.0, (1,), np.float32),
        })
        self.action_space = spaces.MultiDiscrete([J * S + 1, E])
        self._adj_cache: dict[int, np.ndarray] = {}

    # --------------------------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._episode = None
        self.sim.reset(self.np_random, (options or {}).get("workload"))
        self._area = self.sim.area_ms
        return self._observe(), self._info()

    def step(self, action):
        checks.not_done(self.sim.done, "CJS-v0")
        a = checks.integers(action, (2,), 0, max(self.J * self.S + 1, self.E), "action (stage slot, limit − 1)")
        if a[1] >= self.E:
            raise ValueError(f"action's limit − 1 must be in [0, {self.E}), got {a[1]}")
        slot, lim = int(a[0]), int(a[1]) + 1
        visible = self.sim.visible()
        k, stage = divmod(slot, self.S)
        wait = slot == self.J * self.S
        if wait:
            invalid = not self.sim.events  # nothing left to wait for
        else:
            invalid = not 0 <= slot < self.J * self.S or k >= len(visible) or not self._mask_stage(visible[k], stage)
        if wait and not invalid:
            self.sim.advance(wait=True)
        else:
            if invalid:  # fall back to the first schedulable stage, so that every step makes progress
                k, stage = divmod(int(np.flatnonzero(self._last_stage_mask[:-1])[0]), self.S)
            self.sim.apply(visible[k], stage, lim)
            self.sim.advance()
        reward = -(self.sim.area_ms - self._area) / 1000.0
        self._area = self.sim.area_ms
        info = self._info()
        info["invalid_action"] = invalid
        return self._observe(), reward, self.sim.done, False, info

    def action_masks(self) -> np.ndarray:
        """Concatenated per-dimension masks (stage slots, limits) for MultiDiscrete maskable agents."""
        return np.concatenate([self._last_stage_mask.astype(bool), np.ones(self.E, dtype=bool)])

    # ------------------------------------------------------------------------------- internals
    def _mask_stage(self, job_id: int, stage: int) -> bool:
        job = self.sim.jobs[job_id]
        return stage < job.dag.num_stages and bool(self.sim.stage_mask(job)[stage])

    def _adjacency(self, job) -> np.ndarray:
        key = id(job.dag)
        if key not in self._adj_cache:
            a = np.zeros((self.S, self.S), dtype=np.int8)
            n = job.dag.num_stages
            a[:n, :n] = job.dag.adjacency
            self._adj_cache[key] = a
        return self._adj_cache[key]

    def _observe(self) -> dict[str, np.ndarray]:
        """Fixed-shape observation. Slot arrays persist across steps; a slot is rewritten only when
        its job changed (``Job.version``) or another job took the slot."""
        J, S, E = self.J, self.S, self.E
        sim = self.sim
        if getattr(self, "_episode", None) is not sim.jobs:  # new episode: fresh slot arrays
            self._episode = sim.jobs
            self._node = np.zeros((J, S, NODE_FEATURES), np.float32)
            self._jobf = np.zeros((J, JOB_FEATURES), np.float32)
            self._adj = np.zeros((J, S, S), np.int8)
            self._smask = np.zeros(J * S + 1, np.int8)
            self._lmask = np.zeros((J, E), np.int8)
            self._slot = [(-1, -1)] * J  # (job id, version) last written
        visible = sim.visible()
        for k in range(len(visible), J):
            if self._slot[k][0] != -1:
                self._node[k] = 0
                self._jobf[k] = 0
                self._adj[k] = 0
                self._smask[k * S:(k + 1) * S] = 0
                self._lmask[k] = 0
                self._slot[k] = (-1, -1)
        for k, j in enumerate(visible):
            job = sim.jobs[j]
            if self._slot[k] == (j, job.version):
                continue
            if self._slot[k][0] != j:
                self._adj[k] = self._adjacency(job)
                self._node[k] = 0
            n = job.dag.num_stages
            left = job.unlaunched + job.running  # tasks not done
            offered = sim.stage_mask(job)
            sched = offered * np.where(job.parents_completed(), 1.0, 0.5)  # 0.5: a parent still runs
            node = self._node[k]
            node[:n, 0] = job.unlaunched / 100.0
            node[:n, 1] = job.last_duration_ms / 10_000.0
            node[:n, 2] = left * job.dag.mean_duration_ms / 1e6
            node[:n, 3] = job.running / E
            node[:n, 4] = sched
            supply = sim.supply(job)
            self._jobf[k] = (1.0, supply / E, job.limit / E, 0.0, float(node[:n, 2].sum()), job.n_idle / E)
            self._smask[k * S:(k + 1) * S] = 0
            self._smask[k * S:k * S + n] = offered
            self._lmask[k] = 0
            self._lmask[k, min(supply, E - 1):] = 1
            self._slot[k] = (j, job.version)
        if visible:
            arrival = np.fromiter((sim.jobs[j].arrival_ms for j in visible), float, len(visible))
            self._jobf[: len(visible), 3] = (sim.now - arrival) / 1e5
        self._smask[-1] = 1 if sim.events else 0  # waiting needs a future event
        self._last_stage_mask = self._smask
        free = np.asarray([len(sim.free_executors()) / E], np.float32)
        return {"node_features": self._node.copy(), "job_features": self._jobf.copy(), "adjacency": self._adj.copy(),
                "stage_mask": self._smask.copy(), "limit_mask": self._lmask.copy(), "free_executors": free}

    def _info(self) -> dict[str, Any]:
        done = len(self.sim.completed)
        info = {"wall_time_s": self.sim.now / 1000.0, "jobs_done": done, "jobs_active": len(self.sim.active)}
        if done:  # present once a job has completed
            info["mean_jct_s"] = self.sim.jct_total_ms / done / 1000.0
        return info


class CJSFlatten(gym.Wrapper):
    """For stable-baselines3: a flat ``Box`` observation and an always-valid ``MultiDiscrete`` action.

    The stage component indexes the *schedulable* stages (taken modulo their number; the wait action
    when there are none), so an untrained policy never picks an invalid one.
    """

    def __init__(self, env: CJSEnv):
        super().__init__(env)
        self._keys = list(env.observation_space.spaces)
        size = sum(int(np.prod(env.observation_space[k].shape)) for k in self._keys)
        self.observation_space = spaces.Box(-np.inf, np.inf, (size,), np.float32)
        self.action_space = spaces.MultiDiscrete([env.J * env.S, env.E])

    def _flat(self, obs) -> np.ndarray:
        self._mask = obs["stage_mask"][:-1]
        return np.concatenate([np.asarray(obs[k], np.float32).ravel() for k in self._keys])

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return self._flat(obs), info

    def step(self, action):
        a = np.asarray(action, dtype=np.int64).reshape(-1)
        valid = np.flatnonzero(self._mask)
        slot = int(valid[a[0] % len(valid)]) if len(valid) else self.env.J * self.env.S
        obs, r, term, trunc, info = self.env.step(np.asarray([slot, a[1]]))
        return self._flat(obs), r, term, trunc, info
