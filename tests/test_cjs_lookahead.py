"""The simulator's snapshot/restore, the wfair rule on the simulator's state, and the lookahead expert's
recorded pools (replay, validation)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agents.cjs import WeightedFair
from agents.cjs_lookahead import Lookahead, LookaheadConfig, wfair_candidates
from distill.cjs_pool import POOL_FORMAT, load_pool, record, replay_pool
from envs.cjs import CJSConfig, CJSEnv

SMALL = CJSConfig(num_jobs=8)


@pytest.fixture(scope="module")
def env(data_root):
    return CJSEnv(SMALL)


def _finish(env, policy, obs, info):
    term = False
    while not term:
        obs, _, term, _, info = env.step(policy.act(obs, info))
    return info["mean_jct_s"], list(env.sim.log)


def _state(sim):
    return (sim.now, len(sim.events), list(sim.active), list(sim.completed), sim.area_ms, sim.exec_state.tolist(),
            sim.exec_job.tolist(), [(j.done_tasks.tolist(), j.unlaunched.tolist(), sorted(j.executors), j.limit)
                                   for j in sim.jobs], sim.rng.bit_generator.state["state"]["state"])


def test_restore_replays_the_same_future(env):
    """From a snapshot, the same decisions give the same event trace, any number of times; other
    decisions in between leave no trace after a restore."""
    wfair = WeightedFair()
    obs, info = env.reset(seed=2)
    for _ in range(60):
        obs, _, _, _, info = env.step(wfair.act(obs, info))
    snap, before = env.sim.snapshot(), _state(env.sim)
    first = _finish(env, wfair, obs, info)
    env.sim.restore(snap)
    assert _state(env.sim) == before
    env._area = env.sim.area_ms
    # a different future (FIFO-like: always the first slot), then back again
    term = False
    while not term:
        o, _, term, _, _ = env.step(np.asarray([int(np.flatnonzero(obs["stage_mask"])[0]), 49]))
        obs = o
    env.sim.restore(snap)
    env._area = env.sim.area_ms
    obs = env._observe()
    assert _finish(env, wfair, obs, info) == first
    env.reset(seed=3)
    with pytest.raises(ValueError, match="another episode"):
        env.sim.restore(snap)


def test_wfair_rule_on_the_simulator_equals_the_agent(env):
    """The lookahead's wfair (simulator state) picks exactly what WeightedFair picks from the observation."""
    wfair = WeightedFair()
    obs, info = env.reset(seed=4)
    term, n = False, 0
    while not term:
        a = wfair.act(obs, info)
        c = wfair_candidates(env.sim, wfair)
        if c:
            job, stage, limit = c[0]
            assert a.tolist() == [env.sim.visible().index(job) * env.S + stage, limit - 1]
        else:
            assert a[0] == env.J * env.S
        obs, _, term, _, info = env.step(a)
        n += 1
    assert n > 100


def test_lookahead_leaves_the_simulator_as_it_found_it(env):
    obs, info = env.reset(seed=1)
    expert, tried = Lookahead(LookaheadConfig(horizon_s=20.0)), 0
    for _ in range(40):
        before = _state(env.sim)
        a = expert.act_env(env)
        tried += len(wfair_candidates(env.sim, expert.rule)) > 1
        assert _state(env.sim) == before
        obs, _, term, _, info = env.step(a)
        assert not info["invalid_action"]
    assert tried > 5  # the lookahead did compare options


def test_pool_records_replays_and_validates(tmp_path, data_root):
    w = record(2, 5, LookaheadConfig(horizon_s=10.0))
    e = CJSEnv(CJSConfig(num_jobs=5))
    base = _finish(e, WeightedFair(), *e.reset(seed=2))
    assert w["decisions"] == len(w["actions"]) and np.isfinite(w["mean_jct_s"])
    assert w["mean_jct_s"] != base[0]  # the expert scheduled otherwise than wfair
    path = tmp_path / "pool.json"
    path.write_text(json.dumps({"format": POOL_FORMAT, "workloads": [w]}))
    (t,) = replay_pool(path)
    assert t["decisions"] == w["decisions"] and t["acts"].shape == (w["decisions"], 2)
    assert (t["seed"], t["jobs"]) == (2, 5)
    assert t["mean_jct_s"] == pytest.approx(w["mean_jct_s"], abs=1e-9)
    # a pool that no longer replays (another simulator or data version) is an error naming the workload
    bad = dict(w, mean_jct_s=w["mean_jct_s"] + 1.0)
    path.write_text(json.dumps({"format": POOL_FORMAT, "workloads": [bad]}))
    with pytest.raises(ValueError, match=r"workloads\[0\] \(seed 2\) replays"):
        replay_pool(path)
    path.write_text(json.dumps({"format": POOL_FORMAT, "workloads": [{"seed": 7}]}))
    with pytest.raises(ValueError, match=r"workloads\[0\] lacks field\(s\) jobs, mean_jct_s, actions"):
        load_pool(path)
    path.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="field 'format'"):
        load_pool(path)


def test_lookahead_labels_dagger_states(data_root):
    """As a DAgger labeler in a batched rollout, the expert reads each environment itself: the recorded labels are
    its choices on the states the policy (wfair here) reaches, and the policy's actions are executed."""
    from evaluation.rollout import batched_rollout, make_envs

    expert = Lookahead(LookaheadConfig(horizon_s=10.0))
    (t,) = batched_rollout(make_envs(5, 1), [2], WeightedFair(), expert=expert, follow=0.0)
    e = CJSEnv(CJSConfig(num_jobs=5))
    base_jct, _ = _finish(e, WeightedFair(), *e.reset(seed=2))
    assert t["mean_jct_s"] == pytest.approx(base_jct)  # wfair's episode, not the expert's
    from agents.cjs_gnn import trim

    obs, info = e.reset(seed=2)
    wfair, differ = WeightedFair(), 0
    for label in t["acts"]:
        want = expert.act_env(e)
        _, (slot,) = trim(obs, np.asarray([want[0]]))
        assert label.tolist() == [int(slot), int(want[1])]
        a = wfair.act(obs, info)
        differ += int(want[0] != a[0])
        obs, _, _, _, info = e.step(a)
    assert differ > 0  # the labels are the expert's, not the policy's


def test_student_clones_a_recorded_pool(tmp_path, data_root):
    """``distill.cjs --pool-file``: the offline part is the recorded pool's decisions, and the checkpoint
    says which workloads it came from."""
    from distill.cjs_llm import CJSDistillation as Args, train

    w = record(2, 5, LookaheadConfig(horizon_s=10.0))
    path = tmp_path / "pool.json"
    path.write_text(json.dumps({"format": POOL_FORMAT, "workloads": [w]}))
    args = Args(role="student", teacher="", init="random", task_init="", layers="mma", d_model=32, d_state=16,
                headdim=16, hidden=8, pool_file=str(path), bc_epochs=1, dagger_rounds=0, val_seeds=1, val_jobs=2,
                eval_seeds=0, batch_size=64, device="cpu", out=str(tmp_path / "s"))
    _, metrics = train(args, log=lambda *_: None)
    assert metrics["history"][0]["stage"] == "bc" and metrics["history"][0]["decisions"] == w["decisions"]
    meta = json.loads((tmp_path / "s" / "config.json").read_text())
    assert meta["pool_file"]["seeds"] == [2] and meta["pool_file"]["jobs"] == 5


def test_dagger_pool_records_the_policy_and_trains_on_the_labels(tmp_path, data_root):
    """``--policy``: the scheduler acts (its episode, its JCT), the expert labels each state it reaches;
    the replayed pool gives the policy's states with the expert's labels."""
    from agents.cjs_gnn import ModelScheduler, trim

    cfg = LookaheadConfig(horizon_s=10.0, wait=False)
    w = record(2, 5, cfg, policy="agents/pretrained/cjs_gnn")
    assert len(w["labels"]) == len(w["actions"]) == w["decisions"] and w["truncated"] is False
    e, gnn, expert = CJSEnv(CJSConfig(num_jobs=5)), ModelScheduler(), Lookahead(cfg)
    jct, _ = _finish(e, gnn, *e.reset(seed=2))
    assert w["mean_jct_s"] == pytest.approx(jct)  # the GNN's own episode
    path = tmp_path / "dagger.json"
    path.write_text(json.dumps({"format": POOL_FORMAT, "workloads": [w]}))
    (t,) = replay_pool(path)
    obs, info = e.reset(seed=2)
    differ = 0
    for a, label, got in zip(w["actions"], w["labels"], t["acts"]):
        assert expert.act_env(e).tolist() == label
        _, (slot,) = trim(obs, np.asarray([label[0]]))
        assert got.tolist() == [int(slot), label[1]]
        differ += a != label
        obs, _, _, _, info = e.step(np.asarray(a))
    assert differ > 0  # the labels are the expert's, not the GNN's
    # relabelled by another expert (here: with its wait option): the same episode, that expert's labels
    again = record(2, 5, LookaheadConfig(horizon_s=10.0), policy="gnn", actions=w["actions"])
    assert again["actions"] == w["actions"] and again["mean_jct_s"] == pytest.approx(jct)
    assert len(again["labels"]) == len(w["labels"]) and again["labels"] != w["labels"]
    path.write_text(json.dumps({"format": POOL_FORMAT, "workloads": [dict(w, labels=w["labels"][1:])]}))
    with pytest.raises(ValueError, match=r"workloads\[0\] has \d+ labels for \d+ actions"):
        load_pool(path)
