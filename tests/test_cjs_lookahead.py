"""The rollout expert over the CJS GNN and DAgger toward it (distill.cjs_lookahead): simulator copies, the
expert's choices, a tiny DAgger run."""

from __future__ import annotations

import numpy as np

from agents.cjs_gnn import DecimaGNN, GNNConfig, ModelScheduler, save_checkpoint
from distill.cjs_lookahead import Lookahead, LookaheadDAgger, clone_env, train
from envs.cjs import CJSConfig, CJSEnv


def _mid_episode(steps: int = 15):
    env = CJSEnv(CJSConfig(num_jobs=6))
    obs, info = env.reset(seed=3)
    pol = ModelScheduler(model=DecimaGNN(GNNConfig(hidden=8)))
    for _ in range(steps):
        obs, _, _, _, info = env.step(pol.act(obs, info))
    return env, obs, pol


def test_a_copy_replays_the_original_and_leaves_it_alone(data_root):
    env, obs, pol = _mid_episode()
    now, area = env.sim.now, env.sim.area_ms
    twin = clone_env(env)
    trace, o, term = [], obs, False
    while not term:  # the copy plays to the end; the original has not moved
        o, _, term, _, _ = twin.step(pol.act(o))
        trace.append(twin.sim.now)
    assert env.sim.now == now and env.sim.area_ms == area and not env.sim.done
    again, o, term = [], obs, False
    while not term:  # the same actions on the original: the same event times (the duration stream was copied)
        o, _, term, _, _ = env.step(pol.act(o))
        again.append(env.sim.now)
    assert again == trace
    np.testing.assert_array_equal(env.sim.jct_s(), twin.sim.jct_s())


def test_expert_picks_among_the_bases_choices(data_root):
    env, obs, pol = _mid_episode()
    for foresee in (True, False):
        expert = Lookahead(pol, k=3, horizon_s=30.0, foresee=foresee)
        choices = expert.candidates(obs)
        assert 1 <= len(choices) <= 3 and all(c[0] == env.J * env.S or obs["stage_mask"][c[0]] for c in choices)
        assert np.array_equal(choices[0], pol.act(obs))  # its first choice is the base scheduler's own
        now = env.sim.now
        a = expert.act(env, obs)
        assert any(np.array_equal(a, c) for c in choices) and env.sim.now == now


def test_tiny_dagger_run(tmp_path, data_root):
    save_checkpoint(DecimaGNN(GNNConfig(hidden=8)), tmp_path / "init", {})
    args = LookaheadDAgger(init=str(tmp_path / "init"), rounds=1, episodes=1, jobs=3, k=2, horizon_s=20.0,
                           epochs=1, val_seeds=1, val_jobs=3, workers=0, device="cpu", out=str(tmp_path / "o"))
    model, metrics = train(args, log=lambda *_: None)
    hist = metrics["history"]
    assert [h["stage"] for h in hist] == ["init", "dagger"] and hist[1]["decisions"] > 0
    assert metrics["val_mean_jct_s"] == min(h["val_mean_jct_s"] for h in hist)
