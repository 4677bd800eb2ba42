"""CJS: TPC-H loading and validation, the simulator's invariants, the env's API, FIFO and Fair."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from agents.cjs import FIFO, Fair, WeightedFair
from envs.cjs import CJSConfig, CJSEnv, CJSFlatten
from envs.cjs.core import executor_intervals
from traces import TraceFormatError
from traces.safe_pickle import UnsafePickleError
from traces.tpch import load_job_dag, load_tpch, random_job_dag, validate_dag

SMALL = CJSConfig(num_jobs=12)


@pytest.fixture(scope="module")
def tpch(data_root):
    return load_tpch()


def run(env, policy, seed):
    obs, info = env.reset(seed=seed)
    term, steps, ret = False, 0, 0.0
    while not term:
        obs, r, term, _, info = env.step(policy.act(obs, info))
        steps += 1
        ret += r
    return info, steps, ret


# ------------------------------------------------------------------------------------- data
def test_tpch_templates(tpch):
    assert len(tpch) == 22 * 7
    q = tpch[(2, "2g")]
    assert q.num_stages == 18 and q.adjacency.sum() == 19
    assert q.num_tasks[0] == 2  # len(first_wave[2]) + len(rest_wave[2])
    assert max(d.num_stages for d in tpch.values()) == 18


def test_dag_validation_names_the_file(tmp_path):
    with pytest.raises(TraceFormatError, match="cycle"):
        validate_dag(np.array([[0, 1], [1, 0]]), "q.npy")
    with pytest.raises(TraceFormatError, match="square"):
        validate_dag(np.zeros((2, 3)), "q.npy")
    with pytest.raises(TraceFormatError, match="only 0 and 1"):
        validate_dag(np.array([[0, 2], [0, 0]]), "q.npy")
    # durations missing for a stage
    (tmp_path / "2g").mkdir()
    np.save(tmp_path / "2g/adj_mat_1.npy", np.array([[0, 1], [0, 0]], dtype=float))
    d = {0: {"first_wave": {5: [1.0]}, "rest_wave": {5: []}, "fresh_durations": {5: [2.0]}}}
    np.save(tmp_path / "2g/task_duration_1.npy", np.array(d, dtype=object), allow_pickle=True)
    with pytest.raises(TraceFormatError, match=r"task_duration_1.npy: no durations for stage\(s\) \[1\]"):
        load_job_dag(tmp_path, 1, "2g")


def test_malicious_duration_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    (tmp_path / "2g").mkdir()
    np.save(tmp_path / "2g/adj_mat_1.npy", np.zeros((1, 1)))
    (tmp_path / "2g/task_duration_1.npy").write_bytes(pickle.dumps({0: Evil()}))
    with pytest.raises(UnsafePickleError, match="refused to load global"):
        load_job_dag(tmp_path, 1, "2g")


def test_first_wave_cleaning(tpch):
    # first-wave durations that were also recorded as fresh are removed (multiset difference)
    q = tpch[(9, "100g")]
    for waves in q.durations:
        for level, arr in waves["first_wave"].items():
            assert arr.ndim == 1


def test_executor_intervals():
    iv = executor_intervals(50)
    assert tuple(iv[3]) == (5, 5) and tuple(iv[7]) == (5, 10) and tuple(iv[10]) == (10, 10)
    assert tuple(iv[45]) == (40, 50) and tuple(iv[50]) == (50, 50)


# ------------------------------------------------------------------------------------ the env
def test_check_env_gymnasium_and_sb3(tpch):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    check_env(CJSEnv(SMALL), skip_render_check=True)
    sb3_check_env(CJSFlatten(CJSEnv(SMALL)), warn=True)


def test_same_seed_same_event_trace(tpch):
    env = CJSEnv(SMALL)
    run(env, Fair(), seed=3)
    a = list(env.sim.log)
    run(env, Fair(), seed=3)
    assert env.sim.log == a
    run(env, Fair(), seed=4)
    assert env.sim.log != a


def test_conservation_and_metrics(tpch):
    env = CJSEnv(SMALL)
    info, steps, ret = run(env, FIFO(), seed=0)
    sim = env.sim
    assert len(sim.completed) == 12 and not sim.active
    for job in sim.jobs:
        assert np.all(job.done_tasks == job.dag.num_tasks) and job.completion_ms >= job.arrival_ms
    # every task ran exactly once
    done = sum(1 for e in sim.log if e[1] == 1)
    assert done == sum(int(j.dag.num_tasks.sum()) for j in sim.jobs)
    # the episode return is minus the total time jobs spent in the system
    assert -ret == pytest.approx(sim.jct_s().sum(), rel=1e-9)
    assert info["mean_jct_s"] == pytest.approx(sim.jct_s().mean())


def test_dag_order_respected(tpch):
    env = CJSEnv(SMALL)
    run(env, Fair(), seed=1)
    last_done, starts = {}, {}
    for t, kind, j, s, e in env.sim.log:
        if kind == 1:
            last_done[(j, s)] = t
        elif kind == 3:
            starts.setdefault((j, s), t)
    # no task of a stage starts before every task of its parents has completed
    for job in env.sim.jobs:
        for s in range(job.dag.num_stages):
            for p in np.flatnonzero(job.dag.adjacency[:, s]):
                assert last_done[(job.id, p)] <= starts[(job.id, s)]


def test_invalid_action_waits_and_is_flagged(tpch):
    env = CJSEnv(SMALL)
    obs, _ = env.reset(seed=0)
    bad = int(np.flatnonzero(obs["stage_mask"][:-1] == 0)[0])
    _, _, _, _, info = env.step(np.asarray([bad, 3]))
    assert info["invalid_action"]


def test_random_dags_run(tpch):
    rng = np.random.default_rng(0)
    dags = [random_job_dag(rng) for _ in range(8)]
    env = CJSEnv(CJSConfig(num_jobs=15), templates=dags)
    info, steps, _ = run(env, Fair(), seed=0)
    assert info["jobs_done"] == 15


def test_fair_beats_fifo_on_the_standard_workload(tpch):
    """NetLLM's chart: FIFO ≈ 82 s, Fair ≈ 58.5 s. Two seeds here; ten in docs/RESULTS.md."""
    env = CJSEnv()
    fifo = np.mean([run(env, FIFO(), seed=s)[0]["mean_jct_s"] for s in (0, 1)])
    fair = np.mean([run(env, Fair(), seed=s)[0]["mean_jct_s"] for s in (0, 1)])
    assert fair < fifo


def test_weighted_fair_generalises_fair(tpch):
    """exponent 0 with Fair's order acts exactly like Fair; the default (size-weighted shares, least
    work first) changes the schedule and still completes every job."""
    env = CJSEnv(SMALL)
    obs, info = env.reset(seed=5)
    fair, wf0, steps = Fair(), WeightedFair(0.0, order="deficit"), 0
    term = False
    while not term:
        a = fair.act(obs, info)
        assert np.array_equal(a, wf0.act(obs, info)), steps
        obs, _, term, _, info = env.step(a)
        steps += 1
    base = info["mean_jct_s"]
    info, _, _ = run(env, WeightedFair(), seed=5)
    assert info["jobs_done"] == SMALL.num_jobs and info["mean_jct_s"] != base
    with pytest.raises(ValueError, match="least-work"):
        WeightedFair(order="shortest")


def test_timed_wfair_keeps_the_waits_and_places_as_wfair(tpch):
    """``WaitGate(inner)``: where ``inner`` waits, it waits; where ``inner`` acts, wfair's action goes
    (``inner``'s own where wfair would wait). With FIFO inside (never waits while work is schedulable)
    the schedule is wfair's wherever wfair acts; an inner that always waits keeps waiting."""
    from agents.cjs import WaitGate

    env = CJSEnv(SMALL)
    obs, info = env.reset(seed=3)
    timed, wf, fifo = WaitGate(FIFO()), WeightedFair(), FIFO()
    assert timed.name == "fifo+wfair" and not hasattr(timed, "act_list")
    term, steps, own = False, 0, 0
    while not term:
        J, S = np.asarray(obs["node_features"]).shape[:2]
        a, w, f = timed.act(obs, info), wf.act(obs, info), fifo.act(obs, info)
        if int(f[0]) == J * S:  # FIFO waits: so does the timed policy
            assert int(a[0]) == J * S
        elif int(w[0]) == J * S:  # wfair would wait: FIFO's action
            assert np.array_equal(a, f)
            own += 1
        else:
            assert np.array_equal(a, w)
        obs, _, term, _, info = env.step(a)
        steps += 1
    assert info["jobs_done"] == SMALL.num_jobs and own > 0 and steps > own

    class Waits(FIFO):
        name = "waits"

        def act(self, obs, info=None):
            return np.asarray([int(np.prod(np.asarray(obs["node_features"]).shape[:2])), 0])

    obs, info = env.reset(seed=3)
    assert int(WaitGate(Waits()).act(obs, info)[0]) == int(np.prod(np.asarray(obs["node_features"]).shape[:2]))


def test_timed_wfair_with_its_own_limit(tpch, tmp_path):
    """``WaitGate(inner, limit="own")``: where both act, wfair's job and stage with ``inner``'s limit for
    that job (``inner`` asked again with only that stage open); ``inner``'s whole action where wfair would
    wait; its waits kept. ``act`` and the batched ``act_list`` agree. And an agent's own pool
    (``agents.cjs_lookahead.record(..., scheduler=NAME)``) is its episode's actions, and it replays."""
    import json

    from agents.cjs import WaitGate
    from distill.cjs_pool import POOL_FORMAT, record, replay_pool

    class Sometimes(FIFO):  # FIFO (limit: every executor) that waits when the schedulable slots number 3, 6, ...
        name = "sometimes"

        def act(self, obs, info=None):
            J, S = _slots(obs)
            if int(np.asarray(obs["stage_mask"])[:-1].sum()) % 3 == 0:
                return np.asarray([J * S, 0])
            return super().act(obs, info)

        def act_list(self, obs_list, infos=None):
            return [self.act(o) for o in obs_list]

    def _slots(obs):
        return np.asarray(obs["node_features"]).shape[:2]

    with pytest.raises(ValueError, match="limit='x'"):
        WaitGate(FIFO(), limit="x")
    inner, wf = Sometimes(), WeightedFair()
    timed = WaitGate(inner, limit="own")
    assert timed.name == "sometimes+wfair-slot" and hasattr(timed, "act_list")
    env = CJSEnv(SMALL)
    obs, info = env.reset(seed=3)
    term, seen = False, {"wait": 0, "own": 0, "moved": 0}
    while not term:
        J, S = _slots(obs)
        E = np.asarray(obs["limit_mask"]).shape[-1]
        a, s, w = timed.act_list([obs])[0], inner.act(obs), wf.act(obs)
        assert np.array_equal(a, timed.act(obs))
        if int(s[0]) == J * S or int(w[0]) == J * S:
            assert np.array_equal(a, s)
            seen["wait" if int(s[0]) == J * S else "own"] += 1
        else:
            assert int(a[0]) == int(w[0]) and int(a[1]) == E - 1  # wfair's slot, FIFO's limit
            seen["moved"] += int(w[0]) != int(s[0])
        obs, _, term, _, info = env.step(a)
    assert all(seen.values()), seen
    w = record(3, 5, scheduler="wfair")
    e = CJSEnv(CJSConfig(num_jobs=5))
    obs, info = e.reset(seed=3)
    for a in w["actions"]:
        assert wf.act(obs).tolist() == a
        obs, _, term, _, info = e.step(np.asarray(a))
    assert term and "labels" not in w and w["mean_jct_s"] == info["mean_jct_s"]
    path = tmp_path / "pool.json"
    path.write_text(json.dumps({"format": POOL_FORMAT, "workloads": [w]}))
    (t,) = replay_pool(path)
    assert t["decisions"] == len(w["actions"]) and t["mean_jct_s"] == w["mean_jct_s"]
