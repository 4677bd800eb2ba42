"""The real CLIs with small budgets: compare (data and synthetic fallback), download, benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(args, env_extra=None, drop=()):
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_compare_abr_writes_table_csv_json_plots(tmp_path, data_root):
    out = tmp_path / "cmp"
    res = _run(["-m", "evaluation.compare", "--env", "abr", "--agents", "bba,rate-based", "--out", str(out), "--quiet",
                "--no-optimum"])
    assert res.returncode == 0, res.stderr
    assert "ABR on fcc-test (100 traces, video1)" in res.stdout
    assert "not in fcc-train" in res.stdout and "bba" in res.stdout
    data = json.loads((out / "abr_results.json").read_text())
    assert data["synthetic"] is False and len(data["clean_traces"]) == 58
    bba = next(r for r in data["summary"] if r["agent"] == "bba")
    assert 0.755 <= bba["qoe"] <= 0.775
    for name in ("abr_summary.csv", "abr_per_trace.csv", "abr_qoe_cdf.png", "abr_qoe_parts.png"):
        assert (out / name).stat().st_size > 0
    assert len((out / "abr_per_trace.csv").read_text().splitlines()) == 101


def test_compare_cjs_pairs_every_scheduler_with_wfair(tmp_path, data_root):
    """CJS rows carry their paired difference to wfair (the default reference) over the reference workloads, and
    FIFO / Fair land on the reference run's per-workload means (issue #25's fidelity, here on two workloads)."""
    out = tmp_path / "cmp"
    res = _run(["-m", "evaluation.compare", "--env", "cjs", "--agents", "fifo,fair,wfair", "--seeds", "2", "--out",
                str(out), "--quiet", "--no-plots"])
    assert res.returncode == 0, res.stderr
    assert "Δ vs wfair [95% CI]" in res.stdout
    data = json.loads((out / "cjs_results.json").read_text())
    assert data["reference"] == "wfair" and data["seeds"] == [1, 2]
    per = data["per_seed_mean_jct_s"]
    ref = json.loads((data_root / "cjs/reference/summary.json").read_text())["per_seed"]
    for name in ("fifo", "fair"):
        row = next(r for r in data["summary"] if r["agent"] == name)
        diffs = [per[name][s] - per["wfair"][s] for s in ("1", "2")]
        assert abs(row["vs_wfair_diff"] - sum(diffs) / 2) < 1e-9
        assert row["vs_wfair_wins"] + row["vs_wfair_ties"] + row["vs_wfair_losses"] == 2
        for s in ("1", "2"):
            assert abs(per[name][s] / ref[s][name]["mean_jct_s"] - 1) < 0.05
    assert "vs_wfair_diff" not in next(r for r in data["summary"] if r["agent"] == "wfair")


def test_compare_reports_share_of_offline_optimum(tmp_path, data_root):
    folder = tmp_path / "four"
    folder.mkdir()
    for name in sorted((data_root / "abr/traces/fcc-test").iterdir())[10:14]:
        (folder / name.name).write_bytes(name.read_bytes())
    out = tmp_path / "cmp"
    res = _run(["-m", "evaluation.compare", "--env", "abr", "--traces", str(folder), "--agents", "bba,robustmpc",
                "--out", str(out), "--quiet", "--no-plots"])
    assert res.returncode == 0, res.stderr
    rows = {r["agent"]: r for r in json.loads((out / "abr_results.json").read_text())["summary"]}
    assert set(rows) == {"bba", "robustmpc", "offline-optimal"}
    assert rows["offline-optimal"]["of_optimum"] == 1.0
    assert 0 < rows["bba"]["of_optimum"] < rows["robustmpc"]["of_optimum"] <= 1.0
    assert "of opt" in res.stdout


def test_compare_falls_back_to_synthetic_and_says_so(tmp_path):
    out = tmp_path / "cmp"
    res = _run(["-m", "evaluation.compare", "--env", "abr", "--agents", "bba", "--out", str(out), "--quiet", "--no-plots",
                "--no-optimum"],
               env_extra={"MAMBA4NET_CACHE": str(tmp_path / "empty")}, drop=("MAMBA4NET_DATA",))
    assert res.returncode == 0, res.stderr
    assert "synthetic" in res.stderr and "python -m traces.download fcc-test" in res.stderr
    assert json.loads((out / "abr_results.json").read_text())["synthetic"] is True


def test_compare_rejects_unknown_agent(tmp_path):
    res = _run(["-m", "evaluation.compare", "--env", "abr", "--agents", "nope", "--out", str(tmp_path), "--quiet"])
    assert res.returncode != 0 and "unknown ABR agent" in res.stderr


def test_env_speed_benchmark_harness(tmp_path, data_root):
    out = tmp_path / "bench.json"
    res = _run(["benchmarks/abr_env_speed.py", "--steps", "300", "--episodes-scale", "0.05", "--out", str(out)])
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    assert set(data["decisions_per_s"]) >= {"pensieve_ppo_single", "ours_single", "ours_batched_1024"}
    assert all(v > 0 for v in data["decisions_per_s"].values())


def test_compare_vp(tmp_path, data_root):
    out = tmp_path / "vp"
    res = _run(["-m", "evaluation.compare", "--env", "vp", "--agents", "velocity,static,track", "--out", str(out)])
    assert res.returncode == 0, res.stderr
    assert "VP on jin2022 test split: 126 traces, 1698 windows" in res.stdout
    data = json.loads((out / "vp_results.json").read_text())
    maes = {r["agent"]: r["mae"] for r in data["summary"]}
    assert maes["track"] < maes["velocity"]
    assert len(data["mae_per_step"]["track"]) == 20
    assert (out / "vp_mae_per_step.png").stat().st_size > 0
    assert len((out / "vp_per_step.csv").read_text().splitlines()) == 21


def test_compare_abr_runs_without_torch(tmp_path, data_root):
    """The main job needs only numpy/gymnasium/matplotlib: torch must not be imported on the way."""
    blocker = ("import sys\n"
               "class Block:\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name == 'torch' or name.startswith('torch.'):\n"
               "            raise ImportError('torch is blocked in this test')\n"
               "sys.meta_path.insert(0, Block())\n"
               "from evaluation.compare import main\n"
               f"main(['--env', 'abr', '--agents', 'bba,robustmpc', '--no-optimum', '--no-plots', '--quiet', "
               f"'--out', r'{tmp_path}'])\n")
    res = _run(["-c", blocker])
    assert res.returncode == 0, res.stderr
    assert "robustmpc" in res.stdout
