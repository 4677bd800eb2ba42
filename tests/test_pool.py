"""Experience pools: collection (incl. offline-optimal demonstrations), storage without pickle, merging."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distill.abr_pool import load_pool, merge_pools, save_pool

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_traces(tmp_path_factory, data_root):
    folder = tmp_path_factory.mktemp("traces")
    for p in sorted((data_root / "abr/traces/fcc-test").iterdir())[20:23]:
        (folder / p.name).write_bytes(p.read_bytes())
    return folder


def _collect(out, traces, policy, repeats=1):
    res = subprocess.run([sys.executable, "-m", "distill.abr", "pool", "--policy", policy, "--traces", str(traces),
                          "--repeats", str(repeats), "--out", str(out), "--quiet"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return load_pool(out)


def test_pool_from_baselines_and_offline_optimum(tmp_path, small_traces):
    arrays, meta = _collect(tmp_path / "p", small_traces, "bba,offline-optimal", repeats=2)
    n = 2 * 2 * 3 * 47
    assert meta["transitions"] == n and meta["episodes"] == 12
    assert arrays["obs"].shape == (n, 6, 6) and arrays["obs"].dtype == np.float32
    # episodes are contiguous, time-ordered, end with done, and return-to-go is the suffix sum
    for e in np.unique(arrays["episode"]):
        sel = arrays["episode"] == e
        assert np.array_equal(arrays["timestep"][sel], np.arange(47))
        assert arrays["done"][sel][-1] and not arrays["done"][sel][:-1].any()
        np.testing.assert_allclose(arrays["return_to_go"][sel][0], arrays["reward"][sel].sum())
    # the oracle demonstrations are better than the heuristic's
    assert meta["mean_qoe_per_chunk"]["offline-optimal"] > meta["mean_qoe_per_chunk"]["bba"]
    # the first observation of an episode is the env's reset observation (chunk 0 at level 0)
    first = arrays["obs"][arrays["timestep"] == 0]
    assert np.all(first[:, 0, -1] == pytest.approx(300 / 4300))


def test_merge_remaps_ids(tmp_path, small_traces):
    _collect(tmp_path / "a", small_traces, "bba")
    _collect(tmp_path / "b", small_traces, "robustmpc,bba")
    arrays, meta = merge_pools([tmp_path / "a", tmp_path / "b"])
    assert meta["policies"] == ["bba", "robustmpc"]
    assert len(np.unique(arrays["episode"])) == 3 + 6
    save_pool(tmp_path / "ab", arrays, meta)
    again, meta2 = load_pool(tmp_path / "ab")
    assert json.loads((tmp_path / "ab/meta.json").read_text())["transitions"] == 9 * 47
    np.testing.assert_array_equal(again["policy"], arrays["policy"])


def test_pool_refuses_pickled_objects(tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "meta.json").write_text("{}")
    np.savez(folder / "experience.npz", obs=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_pool(folder)


def test_save_is_atomic_on_bad_input(tmp_path):
    with pytest.raises(ValueError, match="missing arrays"):
        save_pool(tmp_path / "x", {"obs": np.zeros(3)}, {})
    assert not (tmp_path / "x").exists() and list(tmp_path.iterdir()) == []


def test_csv_writer_quotes_and_replaces_atomically(tmp_path):
    import csv

    from traces.atomic import write_csv_atomic

    path = tmp_path / "t.csv"
    path.write_text("old\n")
    write_csv_atomic(path, [{"trace": "a,b \"c\"", "qoe": 1.5}, {"trace": "d", "qoe": -2}], ["trace", "qoe"])
    assert list(csv.reader(path.open())) == [["trace", "qoe"], ["a,b \"c\"", "1.5"], ["d", "-2"]]
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # no temp file left behind
