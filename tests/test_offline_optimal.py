"""The ABR offline optimum: an upper reference for every online policy, stable under a finer grid."""

from __future__ import annotations

import numpy as np
import pytest

from agents import agent_names, make_agent
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
    for name in agent_names("abr"):
        if name in ("offline-optimal", "teacher"):
            continue
        returns = evaluate_abr(make_agent("abr", name, video=video1), handful, video1).records["qoe"].sum(axis=1)
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
    run = evaluate_abr(make_agent("abr", "offline-optimal", video=video1, traces=handful), handful, video1)
    np.testing.assert_allclose(run.records["qoe"].sum(axis=1), solved[1], atol=1e-9)


def test_blocks_and_processes_give_the_one_block_result(handful, video1, solved):
    """Traces solved in blocks of bounded memory (here: one trace, then two per block) and in worker
    processes give exactly the plans and values of the one-block solve."""
    from agents.offline import block_size, candidates_per_trace

    per_trace = candidates_per_trace(video1) * 400
    assert block_size(video1, memory_bytes=per_trace) == 1 and block_size(video1, memory_bytes=1) == 1
    assert block_size(video1) >= 50  # the default 1 GB budget: dozens of traces per block
    ids, starts = np.arange(len(handful)), handful.start_index
    done = []
    for memory, workers in ((per_trace, 1), (2 * per_trace, 1), (2 * per_trace, 2)):
        plans, values = solve_offline_optimal(handful, video1, ids, starts, memory_bytes=memory, workers=workers,
                                              progress=done.append)
        np.testing.assert_array_equal(plans, solved[0])
        np.testing.assert_array_equal(values, solved[1])
    assert done == [1, 1, 1, 1, 2, 2, 2, 2]
