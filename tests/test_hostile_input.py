"""Hostile and careless input: each failure of issue #26 reproduced, now refused with one clear error.

Property-based fuzzing (hypothesis, derandomized so CI is deterministic) drives every loader and the
restricted unpickler with arbitrary bytes: they either return a valid object or raise the loader's own
error naming the file — never hang, crash the interpreter or raise something else.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traces.abr import MAX_FILE_BYTES, load_cooked_trace, load_mahimahi_trace, load_trace_dir, load_video
from traces.errors import TraceFormatError
from traces.safe_pickle import UnsafePickleError, decode_plain_pickle, load_legacy_pickle, restricted_loads
from traces.viewport import load_viewport_csv, load_viewport_dataset

ROOT = Path(__file__).resolve().parents[1]
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _cli(args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


# ------------------------------------------------------------------------------------ the unpickler

class _ObjectArrayFromBytes:
    """An object array whose element is an address of the attacker's choosing (only allow-listed names)."""

    def __reduce__(self):
        return (np._core.multiarray._reconstruct, (np.ndarray, (0,), b"b"),
                (1, (1,), np.dtype(object), False, b"\x41" * 8))


class _Bytes:
    def __reduce__(self):
        return (bytes, (10**8,))


class _ListBomb:
    def __reduce__(self):
        return (list, (_Bytes(),))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_unpickler_refuses_object_arrays_from_raw_bytes(protocol):
    blob = pickle.dumps(_ObjectArrayFromBytes(), protocol=protocol)
    with pytest.raises(UnsafePickleError, match="object array built from raw bytes"):
        restricted_loads(blob, "crafted.pkl")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_unpickler_refuses_allocation_bombs(protocol):
    blob = pickle.dumps(_ListBomb(), protocol=protocol)
    assert len(blob) < 70
    with pytest.raises(UnsafePickleError, match="bytes"):
        restricted_loads(blob, "bomb.pkl")
    with pytest.raises(UnsafePickleError, match="items"):  # a total cap on items, whatever builds them
        restricted_loads(pickle.dumps(list(range(1000))), "many.pkl", max_items=100)


def test_unpickler_refuses_reference_dtypes_and_scalars():
    with pytest.raises(UnsafePickleError, match="holds references"):
        restricted_loads(pickle.dumps(np.zeros(2, dtype=[("a", "O")]), protocol=2))
    # the one object array admitted is np.save's wrapper: items that are themselves unpickled values
    assert restricted_loads(pickle.dumps(np.array([None, 1], dtype=object))).tolist() == [None, 1]


def test_object_npy_reaches_the_env_only_through_checks(tmp_path, data_root):
    """The original failure: a crafted task_duration file under MAMBA4NET_DATA crashed CJS-v0 (exit 139);
    now the env refuses it with one line naming the file."""
    root = tmp_path / "data"
    (root / "cjs").mkdir(parents=True)
    os.symlink(data_root / "abr", root / "abr")
    tpch = root / "cjs/tpch"
    import shutil

    shutil.copytree(data_root / "cjs/tpch", tpch)
    evil = tpch / "2g/task_duration_1.npy"
    header = np.lib.format.header_data_from_array_1_0(np.array(None, dtype=object))
    with open(evil, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(pickle.dumps(_ObjectArrayFromBytes(), protocol=2))
    res = _cli(["-c", "import gymnasium as gym, envs; gym.make('mamba4net/CJS-v0').reset(seed=0)"],
               {"MAMBA4NET_DATA": str(root)})
    assert res.returncode == 1 and "UnsafePickleError" in res.stderr and "task_duration_1.npy" in res.stderr


@FUZZ
@given(st.binary(max_size=300))
def test_unpickler_fuzz_never_crashes(data):
    try:
        restricted_loads(data, "fuzz")
    except pickle.UnpicklingError:  # UnsafePickleError is one
        pass


@FUZZ
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=3), kids, max_size=4),
                    max_leaves=20), st.sampled_from([0, 2, 4, 5]))
def test_unpickler_reads_plain_values_back(value, protocol):
    blob = pickle.dumps(value, protocol=protocol)
    assert restricted_loads(blob) == value
    assert decode_plain_pickle(blob) == value


def test_plain_decoder_refuses_every_global():
    with pytest.raises(UnsafePickleError, match="plain values only"):
        decode_plain_pickle(pickle.dumps(np.arange(3)))


# ----------------------------------------------------------------------------- traces and videos

def test_traces_that_would_hang_the_simulator_are_refused(tmp_path):
    """``0 0 / 5 0 / 5 1``: the only bandwidth sits on a zero-duration row; 1e-300 Mbps never delivers."""
    (tmp_path / "a").write_text("0 0\n5 0\n5 1\n")
    with pytest.raises(TraceFormatError, match="nothing is delivered"):
        load_cooked_trace(tmp_path / "a")
    (tmp_path / "b").write_text("0 1e-300\n5 1e-300\n10 1e-300\n")
    with pytest.raises(TraceFormatError, match="below"):
        load_cooked_trace(tmp_path / "b")


def test_env_refuses_a_trace_too_slow_to_finish_a_chunk(video1):
    import gymnasium as gym

    import envs  # noqa: F401
    from traces.abr import BandwidthTrace, TraceSet

    slow = BandwidthTrace("slow", np.array([0.0, 1.0, 2.0]), np.array([1e-5, 1e-5, 1e-5]), source="slow.txt")
    with pytest.raises(TraceFormatError, match="slow.txt: delivers .* passes"):
        gym.make("mamba4net/ABR-v0", traces=TraceSet([slow]), video=video1)


def test_trace_errors_do_not_echo_huge_lines(tmp_path):
    (tmp_path / "t").write_text("0 " + "9" * 100_000 + "x\n")
    with pytest.raises(TraceFormatError) as exc:
        load_cooked_trace(tmp_path / "t")
    assert len(str(exc.value)) < 300 and "100,001 characters" in str(exc.value)


def test_oversized_trace_files_are_not_read(tmp_path):
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(TraceFormatError, match="cap"):
        load_cooked_trace(big)


def test_absurd_values_are_refused(tmp_path):
    for text, what in (("0 1\n5 1e9\n", "beyond"), ("0 1\n1e12 1\n", "beyond"), ("0 1\n5 nan\n", "finite")):
        (tmp_path / "t").write_text(text)
        with pytest.raises(TraceFormatError, match=what):
            load_cooked_trace(tmp_path / "t")


def test_video_levels_must_agree(tmp_path):
    for level, n in enumerate((49, 49, 48)):
        (tmp_path / f"video_size_{level}").write_text("\n".join([str(1000 * (level + 1))] * n))
    with pytest.raises(TraceFormatError, match="different numbers of chunks"):
        load_video(tmp_path, bitrates_kbps=(300, 750, 1200), total_chunks=None)
    for level in range(3):
        (tmp_path / f"video_size_{level}").write_text("\n".join([str(5000 - 1000 * level)] * 48))
    with pytest.raises(TraceFormatError, match="grow with the level"):
        load_video(tmp_path, bitrates_kbps=(300, 750, 1200))


def test_one_bad_file_does_not_sink_a_folder(tmp_path, data_root):
    for name in sorted((data_root / "abr/traces/fcc-test").iterdir())[:3]:
        (tmp_path / name.name).write_bytes(name.read_bytes())
    (tmp_path / "zz_bad").write_text("0 1\n5 2\n3 1\n")  # time goes backwards
    with pytest.raises(TraceFormatError, match="zz_bad:3: time goes backwards"):
        load_trace_dir(tmp_path)
    with pytest.warns(UserWarning) as record:
        traces = load_trace_dir(tmp_path, on_error="skip")
    assert len(traces) == 3
    messages = [str(w.message) for w in record]
    assert any("zz_bad:3" in m for m in messages) and any("skipped 1 of 4 files" in m for m in messages)


def test_viewport_folder_skips_bad_files(tmp_path, data_root):
    src = data_root / "vp/Jin2022/video1/5Hz"
    dst = tmp_path / "video1/5Hz"
    dst.mkdir(parents=True)
    for f in sorted(src.iterdir())[:3]:
        (dst / f.name).write_bytes(f.read_bytes())
    (dst / "simple_5Hz_user99.csv").write_text("0.0,1,2,3\n0.2,1,2,3\n0.1,1,2,3\n")
    with pytest.raises(TraceFormatError, match="time goes backwards"):
        load_viewport_dataset(tmp_path)
    with pytest.warns(UserWarning, match="skipped 1 of 4 files"):
        assert len(load_viewport_dataset(tmp_path, on_error="skip")) == 3


@FUZZ
@given(st.binary(max_size=400))
def test_trace_loaders_fuzz(tmp_path, data):
    path = tmp_path / "fuzz"
    path.write_bytes(data)
    for load in (load_cooked_trace, load_mahimahi_trace, lambda p: load_viewport_csv(p, 1, 1)):
        try:
            out = load(path)
        except TraceFormatError as exc:
            assert str(path) in str(exc)
            continue
        assert len(out) >= 1


@FUZZ
@given(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-10, 1e3)), min_size=0, max_size=12))
def test_cooked_fuzz_accepts_only_playable_traces(tmp_path, rows):
    path = tmp_path / "t"
    path.write_text("".join(f"{t!r} {b!r}\n" for t, b in rows))
    try:
        tr = load_cooked_trace(path)
    except TraceFormatError:
        return
    assert np.all(np.diff(tr.times_s) >= 0) and np.all(tr.mbps >= 0)
    assert np.any((tr.mbps[1:] > 0) & (np.diff(tr.times_s) > 0))


@FUZZ
@given(st.binary(max_size=300))
def test_legacy_npy_fuzz(tmp_path, data):
    path = tmp_path / "x.npy"
    path.write_bytes(b"\x93NUMPY" + data)
    try:
        load_legacy_pickle(path)
    except (pickle.UnpicklingError, ValueError):
        pass


# ------------------------------------------------------------------------------------------ envs

def test_abr_env_validates_actions_and_end(fcc_test, video1):
    import gymnasium as gym

    import envs  # noqa: F401

    env = gym.make("mamba4net/ABR-v0", mode="test").unwrapped
    env.reset(seed=0)
    for bad in (2.5, "3", True, 6, -1, np.float64(1.0)):
        with pytest.raises(ValueError):
            env.step(bad)
    env.step(np.int64(2))
    env.step(np.asarray(3))
    with pytest.raises(ValueError, match="trace_index"):
        env.reset(options={"trace_index": -1})
    env.reset(options={"trace_index": 0})
    done = False
    while not done:
        done = env.step(0)[2]
    with pytest.raises(gym.error.ResetNeeded):
        env.step(0)


def test_vp_env_validates_predictions_and_end(data_root):
    import gymnasium as gym

    import envs  # noqa: F401

    env = gym.make("mamba4net/VP-v0").unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((3, 20)))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full((20, 3), np.nan))
    with pytest.raises(ValueError, match="trace_index"):
        env.reset(options={"trace_index": -1})
    env.reset(options={"trace_index": 0})
    done = False
    while not done:
        done = env.step(np.zeros((20, 3)))[2]
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.zeros((20, 3)))


def test_cjs_env_validates_actions_and_end(data_root):
    import gymnasium as gym

    from agents.cjs import FIFO
    from envs.cjs import CJSConfig, CJSEnv

    env = CJSEnv(CJSConfig(num_jobs=2))
    obs, info = env.reset(seed=0)
    for bad in ([0.5, 1], [0], [0, 50], [-1, 0]):
        with pytest.raises(ValueError):
            env.step(bad)
    pol, done = FIFO(), False
    while not done:
        obs, _, done, _, info = env.step(pol.act(obs, info))
    with pytest.raises(gym.error.ResetNeeded):
        env.step(pol.act(obs, info))


# ----------------------------------------------------------------------------------- checkpoints

def _copy_student(tmp_path) -> Path:
    import shutil

    from agents.checkpoint import PRETRAINED_DIR

    folder = tmp_path / "student"
    shutil.copytree(PRETRAINED_DIR / "student_abr", folder)
    return folder


def test_corrupt_checkpoints_are_refused_with_the_folder(tmp_path):
    from safetensors.torch import load_file, save_file

    from agents.checkpoint import CheckpointError
    from agents.student import load_student

    folder = _copy_student(tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    # flipped weights: the SHA-256 recorded in config.json no longer matches
    tensors = load_file(str(folder / "model.safetensors"))
    key = next(iter(tensors))
    tensors[key] = -tensors[key]
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_student(folder)
    # NaN weights with a matching hash: refused as non-finite
    tensors[key] = tensors[key] * float("nan")
    save_file(tensors, str(folder / "model.safetensors"))
    from agents.checkpoint import file_sha256

    (folder / "config.json").write_text(json.dumps({**cfg, "weights_sha256": file_sha256(folder / "model.safetensors")}))
    with pytest.raises(CheckpointError, match="non-finite"):
        load_student(folder)
    folder = _copy_student(tmp_path / "b")
    for change, match in ((lambda c: c["config"].update(return_scale=0), "return_scale"),
                          (lambda c: c.update(model="vp-student"), "expected mamba4net-student"),
                          (lambda c: c.update(task="cjs"), "task 'cjs'")):
        bad = json.loads(json.dumps(cfg))
        change(bad)
        (folder / "config.json").write_text(json.dumps(bad))
        with pytest.raises(CheckpointError, match=match) as exc:
            load_student(folder)
        assert str(folder) in str(exc.value)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json: not readable JSON"):
        load_student(folder)


def test_shipped_checkpoints_record_their_weights_hash():
    from agents.checkpoint import PRETRAINED_DIR, file_sha256

    for folder in sorted(PRETRAINED_DIR.iterdir()):
        meta = json.loads((folder / "config.json").read_text())
        (weights,) = [p for p in folder.iterdir() if p.suffix == ".safetensors"]
        assert meta["weights_sha256"] == file_sha256(weights), folder.name


# ------------------------------------------------------------------------------- atomic writes

def test_replacing_a_folder_never_loses_the_old_copy(tmp_path, monkeypatch):
    from traces import atomic

    dest = tmp_path / "pool"
    with atomic.staged_dir(dest) as tmp:
        (tmp / "a").write_text("old")
    real = os.replace
    calls = []

    def crash_on_second(src, dst):  # the crash between moving the old aside and moving the new in
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        with atomic.staged_dir(dest) as tmp:
            (tmp / "a").write_text("new")
    monkeypatch.setattr(atomic.os, "replace", real)
    assert (dest / "a").read_text() == "old"  # put back
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_stale_temporaries_of_a_killed_writer_are_cleaned(tmp_path):
    from traces import atomic

    dest = tmp_path / "ckpt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / f".ckpt.tmp-{pid}-abc").mkdir()
    old = tmp_path / f".ckpt.old-{pid}-def"
    old.mkdir()
    (old / "a").write_text("old")
    atomic.clean_stale(dest)  # the destination is missing: the old copy comes back
    assert (dest / "a").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_pool_collection_resumes(tmp_path, data_root, monkeypatch):
    from distill.abr_pool import collect_abr

    parts = tmp_path / "parts"
    full, _ = collect_abr(["bba", "rate-based"], str(data_root / "abr/traces/fcc-test"), progress=False,
                          parts_dir=parts)
    assert sorted(p.name for p in parts.glob("part-*.npz")) == ["part-0-0.npz", "part-1-0.npz"]
    (parts / "part-1-0.npz").unlink()  # killed after the first policy: only that one is played again
    import evaluation.abr

    played = []
    real = evaluation.abr.evaluate_abr
    monkeypatch.setattr(evaluation.abr, "evaluate_abr", lambda pol, *a, **k: played.append(pol.name) or real(pol, *a, **k))
    again, _ = collect_abr(["bba", "rate-based"], str(data_root / "abr/traces/fcc-test"), progress=False,
                           parts_dir=parts)
    assert played == ["rate-based"]
    for k in full:
        np.testing.assert_array_equal(full[k], again[k])


# ------------------------------------------------------------------------------- command lines

@pytest.mark.parametrize("args, needle", [
    (["--env", "cjs", "--seeds", "-1"], "--seeds must be at least 1"),
    (["--env", "cjs", "--seeds", "0"], "--seeds must be at least 1"),
    (["--env", "abr", "--agents", "bba,bba"], "--agents: bba listed more than once"),
    (["--env", "abr", "--agents", ""], "--agents is empty"),
    (["--env", "abr", "--agents", "bba,nope"], "unknown ABR agent(s) 'nope'"),
    (["--env", "abr", "--agents", "bba", "--traces", "/nonexistent/traces"], "/nonexistent/traces"),
])
def test_compare_refuses_bad_flags_before_work_in_one_line(tmp_path, args, needle, data_root):
    res = _cli(["-m", "evaluation.compare", *args, "--out", str(tmp_path / "o"), "--quiet", "--no-plots"])
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr and "Traceback" not in res.stderr
    assert len([ln for ln in res.stderr.splitlines() if ln.strip()]) <= 2  # argparse: usage + one line


def test_compare_checks_out_before_any_evaluation(tmp_path, data_root):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = _cli(["-m", "evaluation.compare", "--env", "abr", "--agents", "robustmpc", "--out", str(blocker)])
    assert res.returncode == 2 and "--out" in res.stderr and "not a folder" in res.stderr
    assert "Traceback" not in res.stderr
    res = _cli(["-m", "evaluation.compare", "--env", "abr", "--agents", "bba", "--traces", "/nonexistent",
                "--out", str(tmp_path / "o"), "--debug"])
    assert res.returncode == 1 and "Traceback" in res.stderr  # --debug shows where


def test_downloads_have_a_deadline_and_a_size_cap(tmp_path):
    """A server that sends one byte at a time never times out per read; the overall deadline stops it."""
    import http.server
    import threading
    import time

    from traces.datasets import _fetch
    from traces.errors import DatasetNotFoundError

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.05)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/f"
    try:
        t0 = time.monotonic()
        with pytest.raises(DatasetNotFoundError, match="not complete after"):
            _fetch(url, deadline_s=0.5)
        assert time.monotonic() - t0 < 3
        with pytest.raises(Exception, match="cap"):
            _fetch(url, max_bytes=10)
    finally:
        server.shutdown()
    big = tmp_path / "big"
    big.write_bytes(b"y" * 2000)
    with pytest.raises(Exception, match="cap"):
        _fetch(big.as_uri(), max_bytes=1000)


@FUZZ
@given(st.lists(st.text(alphabet="0123456789-.e,\t x\n", max_size=12), max_size=8), st.integers(0, 5))
def test_video_offsets_and_workload_loaders_fuzz(tmp_path, lines, level):
    """Video size files, start-offset tables and CJS workload files: a valid object or the loader's own
    error naming the file."""
    from traces.abr import load_start_offsets
    from traces.tpch import load_workload

    text = "\n".join(lines)
    vdir = tmp_path / "v"
    vdir.mkdir(exist_ok=True)
    for k in range(6):
        (vdir / f"video_size_{k}").write_text(text if k == level else "\n".join([str(1000 * (k + 1))] * 48))
    (tmp_path / "o.tsv").write_text(text.replace(",", "\t"))
    (tmp_path / "w.csv").write_text("job_index,arrival_ms,query,size,num_stages,num_tasks\n" + text)
    for load, path in ((lambda p: load_video(p), vdir), (load_start_offsets, tmp_path / "o.tsv"),
                       (lambda p: load_workload(p, {}), tmp_path / "w.csv")):
        try:
            load(path)
        except TraceFormatError as exc:
            assert str(path) in str(exc)


def test_compare_skips_bad_trace_files_when_asked(tmp_path, data_root):
    folder = tmp_path / "t"
    folder.mkdir()
    for name in sorted((data_root / "abr/traces/fcc-test").iterdir())[:2]:
        (folder / name.name).write_bytes(name.read_bytes())
    (folder / "zz_bad").write_text("0 1\n5 2\n3 1\n")
    args = ["-m", "evaluation.compare", "--env", "abr", "--traces", str(folder), "--agents", "bba", "--no-optimum",
            "--out", str(tmp_path / "o"), "--quiet", "--no-plots"]
    res = _cli(args)
    assert res.returncode == 2 and "zz_bad:3: time goes backwards" in res.stderr
    res = _cli([*args, "--on-bad-file", "skip"])
    assert res.returncode == 0 and "skipped 1 of 3 files" in res.stderr
