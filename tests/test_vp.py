"""Viewport prediction: loader, NetLLM splits and windows, the angular metric, env, baselines, TRACK."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from agents import make_agent
from agents.vp import LinearRegressionVP, StaticVP, VelocityVP
from envs.vp import VPEnv, angular_error, mae
from evaluation.vp import evaluate_vp
from traces import TraceFormatError
from traces.viewport import (
    JIN2022_USERS,
    JIN2022_VIDEOS,
    load_jin2022_split,
    load_viewport_csv,
    make_windows,
    unwrap_yaw,
    window_starts,
)


@pytest.fixture(scope="module")
def test_split(data_root):
    return load_jin2022_split("test")


@pytest.fixture(scope="module")
def test_windows(test_split):
    return make_windows(test_split)


# ------------------------------------------------------------------------------------ the metric
@pytest.mark.parametrize(
    "pred, truth, want",
    [
        ((0, 0, 179.0), (0, 0, -179.0), 2.0),  # across the seam
        ((0, 0, -170.0), (0, 0, 170.0), 20.0),
        ((0, 0, 180.0), (0, 0, -180.0), 0.0),  # same direction
        ((0, 0, 90.0), (0, 0, -90.0), 180.0),  # opposite: the largest yaw error
        ((0, 0, 10.0), (0, 0, 350.0), 20.0),  # unwrapped input
        ((5.0, -3.0, 0.0), (0.0, 0.0, 0.0), None),
    ],
)
def test_angular_error_by_hand(pred, truth, want):
    err = angular_error(np.asarray(pred), np.asarray(truth))
    if want is None:
        np.testing.assert_allclose(err, [5.0, 3.0, 0.0])
    else:
        assert err[2] == pytest.approx(want)


def test_angular_error_symmetric_and_bounded():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-180, 180, (1000, 3)), rng.uniform(-180, 180, (1000, 3))
    np.testing.assert_allclose(angular_error(a, b), angular_error(b, a))
    assert angular_error(a, b)[:, 2].max() <= 180.0
    assert mae(a, a) == 0.0


def test_unwrap_yaw_makes_turns_continuous():
    yaw = np.asarray([170.0, 178.0, -176.0, -168.0])
    out = unwrap_yaw(np.stack([np.zeros(4), np.zeros(4), yaw], axis=-1))
    np.testing.assert_allclose(out[:, 2], [170, 178, 184, 192])


# -------------------------------------------------------------------------------- data and splits
def test_splits_have_no_video_or_user_overlap():
    for a, b in (("train", "test"), ("train", "valid"), ("valid", "test")):
        assert not set(JIN2022_VIDEOS[a]) & set(JIN2022_VIDEOS[b])
        assert not set(JIN2022_USERS[a]) & set(JIN2022_USERS[b])
    assert len(JIN2022_USERS["test"]) == 84 - 42 - 21


def test_split_sizes_and_windows(test_split, test_windows, data_root):
    assert len(test_split) == 6 * 21
    assert {t.video for t in test_split} == set(JIN2022_VIDEOS["test"])
    assert test_windows.history.shape[1:] == (10, 3) and test_windows.future.shape[1:] == (20, 3)
    # NetLLM's rule: starts at 30, every 15, stopping 60 before the end
    np.testing.assert_array_equal(window_starts(300), np.arange(30, 240, 15))
    assert len(window_starts(89)) == 0
    tr = test_split[0]
    w = make_windows([tr])
    np.testing.assert_array_equal(w.history[0], tr.angles[20:30])
    np.testing.assert_array_equal(w.future[0], tr.angles[30:50])


def test_malformed_viewport_rows(tmp_path):
    p = tmp_path / "simple_5Hz_user1.csv"
    p.write_text("0.0,1,2,3\n0.2,1,2\n")
    with pytest.raises(TraceFormatError, match=r"user1.csv:2: expected 4 fields"):
        load_viewport_csv(p, 1, 1)
    p.write_text("0.0,1,2,3\n0.2,1,x,3\n")
    with pytest.raises(TraceFormatError, match=r":2: pitch 'x' is not a number"):
        load_viewport_csv(p, 1, 1)
    p.write_text("0.4,1,2,3\n0.2,1,2,3\n")
    with pytest.raises(TraceFormatError, match=r":2: time goes backwards"):
        load_viewport_csv(p, 1, 1)
    p.write_text("0.0,1,2,nan\n")
    with pytest.raises(TraceFormatError, match=r":1: yaw 'nan' is not finite"):
        load_viewport_csv(p, 1, 1)


# ------------------------------------------------------------------------------------------- env
def test_vp_env_checks_and_episode(test_split):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = VPEnv(traces=test_split[:5], order="random")
    check_env(env, skip_render_check=True)
    sb3_check_env(VPEnv(traces=test_split[:5]), warn=True)
    env = VPEnv(split="test")
    obs, info = env.reset(seed=0)
    assert obs.shape == (10, 4) and info["window"] == 0
    tr = env.trace
    np.testing.assert_allclose(obs[:, 1:], tr.angles[20:30], atol=1e-4)
    steps, total = 0, 0.0
    term = False
    while not term:
        pred = np.repeat(obs[-1:, 1:], 20, axis=0)
        obs, r, term, trunc, info = env.step(pred)
        total += r
        steps += 1
        assert r == pytest.approx(-info["mae"])
    assert steps == len(window_starts(len(tr)))


def test_env_reward_equals_evaluation_metric(test_split):
    traces = test_split[:3]
    env = VPEnv(traces=traces, order="sequential")
    agent = VelocityVP()
    errs = []
    for _ in traces:
        obs, info = env.reset()
        term = False
        while not term:
            obs, r, term, _, info = env.step(agent.act(obs, info))
            errs.append(-r)
    run = evaluate_vp(VelocityVP(), make_windows(traces))
    assert np.mean(errs) == pytest.approx(run.summary()["mae"], rel=1e-6)


# ------------------------------------------------------------------------------------- baselines
def test_baselines_by_hand():
    hist = np.zeros((1, 10, 4))
    hist[0, :, 1] = np.arange(10)  # roll +1 per step
    hist[0, :, 3] = 175 + np.arange(10) * 2  # yaw crossing +180
    hist[0, :, 3] = (hist[0, :, 3] + 180) % 360 - 180
    v = VelocityVP().act_batch(hist)
    np.testing.assert_allclose(v[0, :, 0], np.arange(10, 30))
    np.testing.assert_allclose(v[0, 0, 2], ((175 + 20) + 180) % 360 - 180)  # 195 -> -165
    lr = LinearRegressionVP().act_batch(hist)
    np.testing.assert_allclose(lr, v, atol=1e-4)  # a straight line: both extrapolate it exactly
    s = StaticVP().act_batch(hist)
    np.testing.assert_allclose(s[0, :, 0], 9.0)


def test_track_round_trip_and_tiny_training(tmp_path, test_split):
    import torch

    from agents.vp_track import TrackVP, save_checkpoint
    from distill.vp_track import TrackTraining as Args, train

    w = make_windows(test_split[:20])
    model, metrics = train(Args(epochs=2, hidden=16, batch_size=64), w, w, log=lambda *_: None)
    assert metrics["epochs_run"] == 2 and np.isfinite(metrics["valid_mae"])
    save_checkpoint(model, tmp_path / "ck", {"metrics": metrics})
    agent = TrackVP(tmp_path / "ck")
    obs = np.concatenate([w.history_t[..., None], w.history], axis=-1)[:7]
    with torch.no_grad():
        a = agent.act_batch(obs)
    b = TrackVP(tmp_path / "ck").act_batch(obs)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (7, 20, 3) and np.all(np.abs(a[..., 2]) <= 180)


def test_shipped_track_beats_extrapolation_on_test(test_windows):
    q = {n: evaluate_vp(make_agent("vp", n), test_windows).summary()["mae"] for n in ("lr", "velocity", "static", "track")}
    assert q["track"] < q["velocity"] < q["lr"]
    assert q["track"] < q["static"]
