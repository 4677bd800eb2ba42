"""The Gymnasium ABR envs: API checks, determinism, pickling, vector env and core agreement."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers mamba4net/*)
from envs.abr import ABRBatchCore, ABREnv, ABRVectorEnv


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("history", [6, 8])
def test_gymnasium_check_env(fcc_test, video1, mode, history):
    env = ABREnv(fcc_test, video1, mode=mode, history=history)
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (6, history)


def test_sb3_check_env(fcc_test, video1):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    sb3_check_env(ABREnv(fcc_test, video1, mode="train"), warn=True)


def test_registered_ids(data_root):
    env = gym.make("mamba4net/ABR-v0", mode="test")
    obs, info = env.reset(seed=0)
    assert obs.shape == (6, 6) and info["trace"].startswith("000_")
    venv = gym.make_vec("mamba4net/ABR-v0", num_envs=3, vectorization_mode="vector_entry_point", mode="test")
    obs, info = venv.reset(seed=0)
    assert obs.shape == (3, 6, 6)


def _rollout(env, seed, steps=200):
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    out = [obs]
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(int(rng.integers(6)))
        out.append(obs)
        out.append(np.asarray([r, info["delay_ms"], info["buffer_s"]]))
        if term:
            obs, info = env.reset()
    return out


def test_same_seed_same_episodes(fcc_test, video1):
    a = _rollout(ABREnv(fcc_test, video1, mode="train"), seed=3)
    b = _rollout(ABREnv(fcc_test, video1, mode="train"), seed=3)
    c = _rollout(ABREnv(fcc_test, video1, mode="train"), seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_env_pickles_mid_episode(fcc_test, video1):
    env = ABREnv(fcc_test, video1, mode="train")
    env.reset(seed=5)
    env.step(2)
    clone = pickle.loads(pickle.dumps(env))  # round trip of our own env object (subprocess vector envs need it)
    for a in (0, 3, 5, 1):
        o1, r1, *_ = env.step(a)
        o2, r2, *_ = clone.step(a)
        assert r1 == r2 and np.array_equal(o1, o2)


def test_episode_structure_and_info(fcc_test, video1):
    env = ABREnv(fcc_test, video1, mode="test")
    obs, info = env.reset()
    assert info["step"] == 0 and info["chunk_index"] == 1 and info["level"] == 0
    n, total = 0, 0.0
    term = False
    while not term:
        obs, r, term, trunc, info = env.step(3)
        n += 1
        total += r
        assert r == pytest.approx(info["qoe_bitrate"] - info["qoe_rebuffer"] - info["qoe_smooth"], abs=1e-12)
    assert n == 47 and info["chunks_left"] == 0 and not trunc
    assert np.all(info["next_chunk_bytes"] == 0)
    # observation rows: last bitrate normalised, buffer/10, chunks-left fraction
    assert obs[0, -1] == pytest.approx(1850 / 4300)
    assert obs[1, -1] == pytest.approx(info["buffer_s"] / 10, rel=1e-6)
    assert obs[5, -1] == 0.0
    # test mode cycles through traces in order, from their start offsets
    _, info = env.reset()
    assert info["trace"] == fcc_test.names[1] and info["start_index"] == fcc_test.start_index[1]


def test_invalid_actions_and_arguments(fcc_test, video1):
    env = ABREnv(fcc_test, video1, mode="test")
    env.reset()
    with pytest.raises(ValueError, match=r"must be in \[0, 6\)"):
        env.step(6)
    with pytest.raises(ValueError, match="mode must be"):
        ABREnv(fcc_test, video1, mode="eval")
    with pytest.raises(ValueError, match="trace_index"):
        env.reset(options={"trace_index": 1000})


def test_training_noise_only_in_train_mode(fcc_test, video1):
    test_env = ABREnv(fcc_test, video1, mode="test")
    train_env = ABREnv(fcc_test, video1, mode="train")
    _, a = test_env.reset(options={"trace_index": 3, "start_index": 5})
    _, b = train_env.reset(seed=0, options={"trace_index": 3, "start_index": 5})
    ratio = b["delay_ms"] / a["delay_ms"]
    assert ratio != 1.0 and 0.9 <= ratio <= 1.1


def test_vector_env_equals_single_envs(fcc_test, video1):
    n = 8
    venv = ABRVectorEnv(n, fcc_test, video1, mode="test")
    obs, info = venv.reset(seed=0, options={"trace_index": np.arange(n)})
    singles = [ABREnv(fcc_test, video1, mode="test") for _ in range(n)]
    sobs = [e.reset(options={"trace_index": i})[0] for i, e in enumerate(singles)]
    np.testing.assert_array_equal(obs, np.stack(sobs))
    rng = np.random.default_rng(0)
    for _ in range(47):
        acts = rng.integers(6, size=n)
        obs, rew, term, trunc, info = venv.step(acts)
        outs = [e.step(int(a)) for e, a in zip(singles, acts)]
        np.testing.assert_array_equal(obs, np.stack([o[0] for o in outs]))
        np.testing.assert_array_equal(rew, [o[1] for o in outs])
        np.testing.assert_array_equal(term, [o[2] for o in outs])
    assert term.all()
    # NEXT_STEP autoreset: the following step resets, ignores actions, reward 0, not terminated
    obs, rew, term, trunc, info = venv.step(np.zeros(n, dtype=np.int64))
    assert not term.any() and np.all(rew == 0) and np.all(info["step"] == 0)


def test_vector_env_check_and_train_mode(fcc_test, video1):
    venv = ABRVectorEnv(4, fcc_test, video1, mode="train")
    o1, _ = venv.reset(seed=1)
    o2, _ = ABRVectorEnv(4, fcc_test, video1, mode="train").reset(seed=1)
    np.testing.assert_array_equal(o1, o2)
    assert venv.observation_space.contains(o1)
    for _ in range(120):  # crosses episode boundaries
        o, r, t, tr, i = venv.step(venv.action_space.sample())
        assert venv.observation_space.contains(o)


def test_batched_core_equals_session_with_noise(fcc_test, video1):
    """Same noise draws -> the batched core and the single-session path agree exactly."""
    from envs.abr import ABRSession

    rng = np.random.default_rng(2)
    n = 16
    tids = rng.integers(len(fcc_test), size=n)
    starts = np.asarray([rng.integers(1, len(fcc_test.traces[t])) for t in tids])
    noise = rng.uniform(0.9, 1.1, size=(48, n))
    acts = rng.integers(6, size=(47, n))
    core = ABRBatchCore(fcc_test.traces, video1, n)
    core.reset_rows(np.arange(n), tids, starts, 0, noise[0])
    sessions = [ABRSession(fcc_test.traces, video1) for _ in range(n)]
    for j, s in enumerate(sessions):
        s.reset(int(tids[j]), int(starts[j]), 0, float(noise[0, j]))
    for t in range(47):
        core.step(acts[t], noise[t + 1])
        for j, s in enumerate(sessions):
            s.step(int(acts[t, j]), float(noise[t + 1, j]))
        np.testing.assert_array_equal(core.obs, np.stack([s.obs for s in sessions]))
        np.testing.assert_array_equal(core.qoe, [s.qoe for s in sessions])
        np.testing.assert_array_equal(core.buffer_ms, [s.buffer_ms for s in sessions])
