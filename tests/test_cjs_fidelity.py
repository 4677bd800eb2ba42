"""CJS-v0 against an independent run of the reference simulator (spark_sched_sim, as NetLLM runs it):
the ten reference workloads replayed job for job with FIFO (25 executors at most per job) and Fair.

The issue's target is 5% per workload and 2% over the ten. This simulator reaches, over the ten, −0.1% (FIFO)
and +0.4% (Fair); per workload FIFO is within 0.4% everywhere and Fair within 4.2% (seed 3, +4.0% ± 0.3 over
five duration streams; docs/CJS.md). Our duration draws differ from the reference's in stream, not in law:
repeated with other draws, a workload's mean JCT moves by 0.3–1.2% (sd, Fair). The bounds below are the issue's.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

PER_SEED, OVERALL, PER_SIZE = 0.05, 0.02, 0.05  # reached: per workload ≤ 0.4% (FIFO), ≤ 4.2% (Fair); over the ten −0.1% / +0.4%


@pytest.fixture(scope="module")
def reference(data_root):
    from evaluation.cjs import reference_workloads

    summary = json.loads((data_root / "cjs/reference/summary.json").read_text())["per_seed"]
    return reference_workloads(str(data_root / "cjs/reference")), summary


@pytest.mark.parametrize("name", ["fifo", "fair"])
def test_fifo_and_fair_follow_the_reference_run(reference, name, data_root):
    from agents import make_agent
    from evaluation.cjs import evaluate_cjs

    workloads, summary = reference
    seeds = sorted(workloads)
    assert seeds == list(range(1, 11))
    run = evaluate_cjs(make_agent("cjs", name), seeds, workloads=workloads)
    ours = np.asarray([j.mean() for j in run.jct_s])
    ref = np.asarray([summary[str(s)][name]["mean_jct_s"] for s in seeds])
    assert all(len(j) == 200 for j in run.jct_s)  # every job, as the reference averages
    gap = ours / ref - 1
    assert np.all(np.abs(gap) <= PER_SEED), dict(zip(seeds, np.round(100 * gap, 1)))
    assert abs(ours.mean() / ref.mean() - 1) <= OVERALL
    # per input size (every job of the ten workloads against its JCT in the reference run): the previous rules
    # favoured large jobs under Fair (100 GB −9.8%, 2 GB +13.3%); now within 2.1% (Fair) and 0.2% (FIFO)
    sizes, ours_by, ref_by = [], [], []
    for s, jct in zip(seeds, run.jct_s):
        sizes += [dag.size for _, dag in workloads[s]]
        ours_by += list(jct)
        ref_csv = (data_root / f"cjs/reference/jct_seed{s}.csv").read_text().splitlines()
        col = ref_csv[0].split(",").index(f"{name}_jct_s")
        ref_by += [float(r.split(",")[col]) for r in ref_csv[1:]]
    sizes, ours_by, ref_by = np.asarray(sizes), np.asarray(ours_by), np.asarray(ref_by)
    by_size = {z: ours_by[sizes == z].mean() / ref_by[sizes == z].mean() - 1 for z in sorted(set(sizes))}
    assert len(by_size) == 7 and all(abs(g) <= PER_SIZE for g in by_size.values()), by_size
    # the ordering the reference shows on every workload
    if name == "fair":
        fifo = np.asarray([summary[str(s)]["fifo"]["mean_jct_s"] for s in seeds])
        assert np.all(ours < fifo)


def test_workload_files_are_checked(tmp_path, data_root):
    from traces.errors import TraceFormatError
    from traces.tpch import load_tpch, load_workload

    src = (data_root / "cjs/reference/workloads_seed1.csv").read_text().splitlines()
    bad = tmp_path / "w.csv"
    bad.write_text("\n".join([src[0], src[1].replace(",11,20g,11,", ",11,20g,12,")]))
    with pytest.raises(TraceFormatError, match="w.csv:2: query 11 20g has 11 stages"):
        load_workload(bad, load_tpch())
    bad.write_text("\n".join([src[0], src[2], src[1]]))
    with pytest.raises(TraceFormatError, match="w.csv:3: arrival"):
        load_workload(bad, load_tpch())
