"""The ABR offline optimum: an upper reference for every online policy, stable under a finer grid."""

from __future__ import annotations

import numpy as np
import pytest

from agents import ABR_AGENTS, make_abr_agent
from agents.offline import solve_offline_optimal
from envs.abr import ABREnv
from evaluation.abr import evaluate_abr

PICK = [3, 21, 48, 77]  # slow, medium and fast fcc-test traces


@pytest.fixture(scope="module")
def handful(fcc_test):
    return fcc_test.subset(np.asarray(PICK))


@pytest.fixture(scope="module")
def solved(handful, video1):
    return solve_offline_optimal(handful, video1, np.arange(len(handful)), handful.start_index)


def test_optimum_beats_every_online_policy_on_every_trace(handful, video1, solved):
    _, values = solved
    for name in ABR_AGENTS:
        if name in ("offline-optimal", "teacher"):
            continue
        returns = evaluate_abr(make_abr_agent(name, video1), handful, video1).records["qoe"].sum(axis=1)
        assert np.all(values >= returns - 1e-9), (name, values - returns)


def test_plan_replays_to_the_reported_value(handful, video1, solved):
    plans, values = solved
    env = ABREnv(handful, video1, mode="test")
    for i in range(len(handful)):
        env.reset(options={"trace_index": i})
        total = sum(env.step(int(a))[1] for a in plans[i])
        assert total == pytest.approx(values[i], abs=1e-9)


def test_finer_grid_gives_the_same_value(handful, video1, solved):
    _, values = solved
    _, finer = solve_offline_optimal(handful, video1, np.arange(len(handful)), handful.start_index, grid_s=0.025)
    assert np.all(finer >= values - 1e-9)  # finer merging never loses
    assert np.max(np.abs(finer - values)) / 47 < 2e-3  # per-chunk QoE


def test_offline_optimal_agent_in_the_harness(handful, video1, solved):
    run = evaluate_abr(make_abr_agent("offline-optimal", video1, handful), handful, video1)
    np.testing.assert_allclose(run.records["qoe"].sum(axis=1), solved[1], atol=1e-9)
