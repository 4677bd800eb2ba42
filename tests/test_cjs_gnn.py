"""The Decima-style GNN scheduler: shapes, masking, slot trimming, a tiny training run, round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.cjs_gnn import DecimaGNN, GNNConfig, ModelScheduler, load_checkpoint, save_checkpoint, to_tensors, trim
from distill.cjs_imitation import GNNTraining as Args
from distill.cjs_imitation import action_logp, train
from envs.cjs import CJSConfig, CJSEnv

SMALL = CJSConfig(num_jobs=6)


def test_forward_masks_and_trimming(data_root):
    env = CJSEnv(SMALL)
    obs, _ = env.reset(seed=0)
    model = DecimaGNN(GNNConfig(hidden=8, rounds=3))
    logits, limits = model(to_tensors(obs))
    assert logits.shape == (1, env.J * env.S + 1) and limits.shape == (1, env.J, env.E)
    allowed = obs["stage_mask"] == 1
    assert torch.all(logits[0, torch.as_tensor(~allowed)] < -1e8)
    small, slots = trim(obs, np.asarray([env.J * env.S, 3]))
    K = small["job_features"].shape[0]
    assert K < env.J and slots.tolist() == [K * env.S, 3]
    # the trimmed model gives the same scores on the kept slots
    lt, _ = model(to_tensors(small))
    torch.testing.assert_close(lt[0, : K * env.S], logits[0, : K * env.S])


def test_sampled_actions_are_valid_and_scored(data_root):
    env = CJSEnv(SMALL)
    pol = ModelScheduler(model=DecimaGNN(GNNConfig(hidden=8)), greedy=False, seed=1)
    obs, info = env.reset(seed=1)
    term = False
    while not term:
        a = pol.act(obs, info)
        assert a[0] == env.J * env.S or obs["stage_mask"][a[0]] == 1
        small, slots = trim(obs, np.asarray([a[0]]))
        lp, ent = action_logp(pol.model, to_tensors(small), torch.as_tensor(slots), torch.as_tensor([a[1]]))
        assert torch.isfinite(lp).all() and lp.item() <= 0 and ent.item() >= 0
        obs, _, term, _, info = env.step(a)
        assert not info["invalid_action"]


def test_tiny_training_and_round_trip(tmp_path, data_root):
    args = Args(jobs=4, bc_episodes=1, bc_epochs=1, dagger_rounds=1, dagger_episodes=2, dagger_epochs=1, iterations=1,
                rollouts=2, hidden=8, val_seeds=1, val_jobs=4, device="cpu")
    model, metrics = train(args, log=lambda *_: None)
    assert np.isfinite(metrics["val_mean_jct_s"]) and [h["stage"] for h in metrics["history"]] == ["bc", "dagger", "pg"]
    save_checkpoint(model, tmp_path / "gnn", {"metrics": metrics})
    loaded, meta = load_checkpoint(tmp_path / "gnn")
    env = CJSEnv(SMALL)
    obs, info = env.reset(seed=5)
    a = ModelScheduler(model=model).act(obs, info)
    b = ModelScheduler(tmp_path / "gnn").act(obs, info)
    assert np.array_equal(a, b)


def test_reinforce_with_worker_processes(tmp_path, data_root):
    """REINFORCE from a checkpoint, rollouts and validation in two spawned processes, validated every second
    iteration; a worker's greedy episode equals the in-process one."""
    from distill.cjs_imitation import Episodes
    from evaluation.rollout import DECISIONS_PER_JOB_CAP

    model = DecimaGNN(GNNConfig(hidden=8))
    save_checkpoint(model, tmp_path / "init", {})
    args = Args(init=str(tmp_path / "init"), jobs=4, iterations=2, rollouts=2, val_every=2, val_seeds=2, val_jobs=4, workers=2, device="cpu")
    trained, metrics = train(args, log=lambda *_: None)
    stages = [h["stage"] for h in metrics["history"]]
    assert stages == ["init", "pg"] and metrics["history"][-1]["iteration"] == 2  # validated every 2nd iteration
    assert np.isfinite(metrics["history"][-1]["val_mean_jct_s"])
    assert metrics["val_mean_jct_s"] == min(h["val_mean_jct_s"] for h in metrics["history"])  # the best is kept
    episodes = Episodes(2)
    try:
        far = episodes.run(model, 4, [2000, 2001], None, DECISIONS_PER_JOB_CAP * 4)
    finally:
        episodes.close()
    near = Episodes(0).run(model, 4, [2000, 2001], None, DECISIONS_PER_JOB_CAP * 4)
    for a, b in zip(far, near):
        np.testing.assert_allclose(a["jct_s"], b["jct_s"])


def test_shipped_gnn_schedules_deterministically(data_root):
    from agents import make_agent
    from evaluation.cjs import evaluate_cjs

    cfg = CJSConfig(num_jobs=8)
    a = evaluate_cjs(make_agent("cjs", "gnn"), seeds=[1000, 1001], config=cfg)
    b = evaluate_cjs(make_agent("cjs", "gnn"), seeds=[1000, 1001], config=cfg)
    assert a.agent == "gnn" and all(len(j) == 8 for j in a.jct_s)  # every job completes
    for x, y in zip(a.jct_s, b.jct_s):
        np.testing.assert_array_equal(x, y)


def test_shipped_gnn_scores_its_recorded_jct(data_root):
    """The shipped GNN's quality is pinned: its mean JCT on the first reference workload (200 jobs) equals the
    value recorded in its checkpoint."""
    import json

    from agents import agent_spec, make_agent
    from evaluation.cjs import evaluate_cjs, reference_workloads

    pinned = json.loads((agent_spec("cjs", "gnn").folder / "config.json").read_text())["pinned_mean_jct_s"]
    workloads = reference_workloads(str(data_root / "cjs/reference"))
    run = evaluate_cjs(make_agent("cjs", "gnn"), [pinned["seed"]], workloads={pinned["seed"]: workloads[pinned["seed"]]})
    assert run.jct_s[0].mean() == pytest.approx(pinned["mean_jct_s"], rel=1e-9)
