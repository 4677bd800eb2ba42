"""stable-baselines3 bridges: extractors train end to end, pickle-free save/load, Policy <-> SB3 adapters."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from agents import make_agent
from agents.sb3 import SB3CJSPolicy, SB3Policy, load_sb3, policy_as_sb3
from distill.rl import RLTraining as Args, train


def test_ppo_pensieve_trains_saves_and_reloads(tmp_path, data_root):
    out = tmp_path / "ppo"
    model, metrics = train(Args(env="abr", timesteps=512, n_envs=2, n_steps=128, batch_size=128, epochs=1,
                                eval_traces="fcc-test", out=str(out)), log=lambda *_: None)
    assert metrics["timesteps"] == 512 and metrics["eval"]["fcc-test"]["traces"] == 100
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["algo"] == "PPO" and cfg["policy_kwargs"]["features_extractor_class"] == "PensieveExtractor"
    assert not list(out.glob("*.zip")) and not list(out.glob("*.pkl"))  # nothing pickled
    policy, _ = load_sb3(out)
    obs = np.random.default_rng(0).random((8, 6, 6)).astype(np.float32)
    a, _ = model.predict(obs, deterministic=True)
    b = SB3Policy(policy).act_batch(obs, {})
    np.testing.assert_array_equal(a, b)
    with torch.no_grad():
        for (k, v), (k2, v2) in zip(model.policy.state_dict().items(), policy.state_dict().items()):
            assert k == k2 and torch.equal(v.cpu(), v2)


@pytest.mark.parametrize("agent", ["bba", "robustmpc"])
def test_policy_as_sb3_matches_our_evaluation(agent, fcc_test, video1):
    from envs.abr import ABREnv
    from evaluation.abr import evaluate_abr

    from stable_baselines3.common.monitor import Monitor

    venv = DummyVecEnv([lambda: Monitor(ABREnv(fcc_test, video1, mode="test"))])
    rewards, lengths = evaluate_policy(policy_as_sb3(make_agent("abr", agent, video=video1), venv), venv, n_eval_episodes=3,
                                       deterministic=True, return_episode_rewards=True)
    ours = evaluate_abr(make_agent("abr", agent, video=video1), fcc_test, video1).records["qoe"][:3]
    assert lengths == [47, 47, 47]
    np.testing.assert_allclose(rewards, ours.sum(axis=1), rtol=1e-6)  # SB3 keeps rewards in float32


def test_cjs_graph_extractor_trains_and_acts(tmp_path, data_root):
    from envs.cjs import CJSConfig, CJSEnv

    model, metrics = train(Args(env="cjs", timesteps=256, n_envs=1, n_steps=128, batch_size=128, epochs=1, jobs=3,
                                eval_jobs=4, eval_seeds=1, out=str(tmp_path / "cjs")), log=lambda *_: None)
    assert metrics["eval"]["cjs-4-jobs"]["seeds"] == 1
    policy, cfg = load_sb3(tmp_path / "cjs")
    env = CJSEnv(CJSConfig(num_jobs=4))
    obs, info = env.reset(seed=5)
    pol = SB3CJSPolicy(policy)
    for _ in range(20):
        a = pol.act(obs, info)
        mask = obs["stage_mask"]
        assert mask[a[0]] or a[0] == len(mask) - 1
        obs, _, term, _, info = env.step(a)
        assert not info.get("invalid_action", False)
        if term:
            break


def test_student_fine_tuning_starts_as_the_student_and_applies_teacher_kl(tmp_path, data_root, fcc_test, video1):
    """PPO on the distilled student: before any update the SB3 policy acts exactly like the student;
    the KL-to-teacher callback runs after each rollout."""
    from agents.student import ABRStudent, StudentConfig, StudentPolicy, save_student
    from agents.teacher import ABRTeacher, TeacherConfig, save_teacher
    from evaluation.abr import evaluate_abr

    torch.manual_seed(0)
    student = ABRStudent(StudentConfig(layers="mma", d_model=32, d_state=16, headdim=16, attn_heads=2, condition="none"))
    save_student(student, tmp_path / "student", {"target_return": 0.0}, dtype=torch.float32)
    teacher = ABRTeacher(TeacherConfig(backbone="tiny-random", lora_rank=4, window=4, condition="none"))
    save_teacher(teacher, tmp_path / "teacher", {"target_return": 0.0})
    model, metrics = train(Args(env="abr", student=str(tmp_path / "student"), teacher=str(tmp_path / "teacher"),
                                timesteps=256, n_envs=2, n_steps=128, batch_size=128, epochs=1, lr=1e-4,
                                eval_traces="fcc-test", out=str(tmp_path / "ft")), log=lambda *_: None)
    from agents.student import load_student

    m, _ = load_student(tmp_path / "student")
    direct = evaluate_abr(StudentPolicy(m, 0.0), fcc_test, video1).summary()
    assert metrics["before_fine_tuning"]["fcc-test"] == direct
    assert len(metrics["teacher_kl"]) == 1 and np.isfinite(metrics["teacher_kl"][0])  # one rollout, one KL pass
    policy, cfg = load_sb3(tmp_path / "ft")
    assert cfg["policy_kwargs"]["features_extractor_class"] == "StudentExtractor"
