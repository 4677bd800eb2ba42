"""Ray scale-out: a local 2-CPU cluster gives exactly the single-process tables and pools."""

from __future__ import annotations

import numpy as np
import pytest

import ray  # a dependency of the test extra: no skip


@pytest.fixture(scope="module")
def local_ray(data_root):
    from evaluation.parallel import init_ray

    init_ray(None, workers=2)
    yield
    ray.shutdown()


def test_abr_tables_identical(local_ray, fcc_test, video1):
    from agents import make_agent
    from evaluation.abr import evaluate_abr
    from evaluation.parallel import evaluate_abr_ray

    for name in ("bba", "robustmpc", "offline-optimal"):
        traces = fcc_test.subset(np.arange(6)) if name == "offline-optimal" else fcc_test
        one = evaluate_abr(make_agent("abr", name, video=video1, traces=traces), traces, video1)
        par = evaluate_abr_ray(name, traces, video1, workers=2)
        assert par.meta["ray_tasks"] == 2
        assert one.summary() == par.summary()
        for k in one.records:
            np.testing.assert_array_equal(one.records[k], par.records[k], err_msg=f"{name} {k}")


def test_cjs_identical(local_ray):
    from agents import make_agent
    from envs.cjs import CJSConfig
    from evaluation.cjs import evaluate_cjs
    from evaluation.parallel import evaluate_cjs_ray

    cfg = CJSConfig(num_jobs=10)
    one = evaluate_cjs(make_agent("cjs", "fair"), (1000, 1001, 1002), cfg)
    par = evaluate_cjs_ray("fair", (1000, 1001, 1002), cfg, workers=2)
    assert one.summary() == par.summary()


def test_pool_identical(local_ray, tmp_path, data_root):
    from distill.abr_pool import collect_abr

    folder = tmp_path / "traces"
    folder.mkdir()
    for p in sorted((data_root / "abr/traces/fcc-test").iterdir())[:5]:
        (folder / p.name).write_bytes(p.read_bytes())
    a, _ = collect_abr(["bba", "robustmpc"], str(folder), repeats=2, progress=False)
    b, _ = collect_abr(["bba", "robustmpc"], str(folder), repeats=2, progress=False, ray="", workers=2)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
