"""Trace loaders, named datasets, download with checksums, synthetic generators, safe pickles."""

from __future__ import annotations

import functools
import hashlib
import http.server
import pickle
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traces import (
    ChecksumError,
    DatasetNotFoundError,
    TraceFormatError,
    duplicate_mask,
    load_abr_traces,
    load_abr_video,
    load_cooked_trace,
    load_mahimahi_trace,
    load_trace_dir,
    markov_bandwidth_trace,
    resolve,
    synthetic_trace_set,
    synthetic_video,
)
from traces.abr import parse_cooked
from traces.datasets import download_dataset, manifest
from traces.safe_pickle import UnsafePickleError, load_legacy_pickle, restricted_loads


# ------------------------------------------------------------------------------------- real data
def test_named_sets_have_expected_sizes(data_root):
    assert len(load_abr_traces("fcc-train")) == 235
    assert len(load_abr_traces("fcc-valid")) == 150
    ts = load_abr_traces("fcc-test")
    assert len(ts) == 100
    # NetLLM offsets: first two rows of the shipped table
    assert ts.names[0] == "000_trace_942154_http---www.ebay.com_0" and ts.start_index[0] == 28
    assert ts.start_index[1] == 99
    assert np.all(ts.start_index >= 1)


def test_video_ladder_and_chunks(video1):
    assert video1.bitrates_kbps == (300, 750, 1200, 1850, 2850, 4300)
    assert video1.chunk_bytes.shape == (6, 48)  # 49 lines per file, 48 used (Pensieve)
    assert video1.chunk_bytes[0, 0] == 181801
    assert np.all(np.diff(video1.chunk_bytes.mean(1)) > 0)


def test_irregular_hsdpa_traces_load(data_root):
    ts = load_abr_traces("fcc-train")
    hsdpa = [t for t in ts.traces if t.name.startswith("bus.")]
    assert hsdpa, "fcc-train holds Norway HSDPA logs with irregular steps"
    steps = np.diff(hsdpa[0].times_s)
    assert steps.std() > 0 and np.all(steps >= 0)


def test_clean_subset_is_58_traces(data_root):
    dup = duplicate_mask("fcc-test", "fcc-train")
    assert dup.sum() == 42 and (~dup).sum() == 58


# ----------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("", None, "empty trace"),
        ("\n\n", None, "empty trace"),
        ("0 1.0\n1 abc\n", 2, "not a number"),
        ("0 1.0\n1 nan\n", 2, "not finite"),
        ("0 1.0\n-1 2.0\n", 2, "negative time"),
        ("0 1.0\n5 1.0\n3 1.0\n", 3, "backwards"),
        ("0 0\n1 0\n2 0\n", None, "zero for the whole trace"),
        ("0 1.0\n1 -2\n", 2, "negative bandwidth"),
        ("0 1.0\n7\n", 2, "expected 'time_s Mbps'"),
    ],
)
def test_malformed_cooked_names_file_and_line(tmp_path, text, line, fragment):
    path = tmp_path / "bad_trace"
    path.write_text(text)
    with pytest.raises(TraceFormatError) as exc:
        load_cooked_trace(path)
    msg = str(exc.value)
    assert str(path) in msg and fragment in msg
    if line is not None:
        assert f"{path}:{line}:" in msg and exc.value.line == line


def test_malformed_mahimahi_and_video(tmp_path):
    p = tmp_path / "mm"
    p.write_text("1\n2\nx\n")
    with pytest.raises(TraceFormatError, match=r"mm:3: timestamp 'x'"):
        load_mahimahi_trace(p)
    vdir = tmp_path / "video"
    vdir.mkdir()
    for lvl in range(6):
        (vdir / f"video_size_{lvl}").write_text("100\n" * 48)
    (vdir / "video_size_2").write_text("100\n-5\n")
    with pytest.raises(TraceFormatError, match=r"video_size_2:2: chunk size must be positive"):
        load_abr_video(vdir)


def test_mahimahi_conversion(tmp_path):
    p = tmp_path / "mm"
    # 10 packets in the first second, 20 in the second -> 0.12 and 0.24 Mbps
    p.write_text("\n".join([str(i * 100) for i in range(10)] + [str(1000 + i * 50) for i in range(20)]))
    tr = load_mahimahi_trace(p)
    np.testing.assert_allclose(tr.times_s, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(tr.mbps, [0.12, 0.12, 0.24])


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.-e \tnaif\n", max_size=200))
def test_fuzz_cooked_parser_only_raises_trace_format_error(text):
    try:
        tr = parse_cooked(text.splitlines(), "fuzz")
    except TraceFormatError as exc:
        assert str(exc).startswith("fuzz")
    else:
        assert np.all(np.diff(tr.times_s) >= 0) and np.all(tr.mbps >= 0) and np.isfinite(tr.mbps).all()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0.01, 50)), min_size=2, max_size=40))
def test_fuzz_valid_traces_round_trip(pairs):
    times = np.cumsum([p[0] for p in pairs])
    if times[-1] <= times[0]:
        times = times + np.arange(len(times))
    lines = [f"{float(t)!r}\t{b!r}" for t, (_, b) in zip(times, pairs)]
    tr = parse_cooked(lines, "gen")
    np.testing.assert_array_equal(tr.times_s, times)
    np.testing.assert_array_equal(tr.mbps, [b for _, b in pairs])


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_loader_on_bytes(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("fz") / "t"
    path.write_bytes(blob)
    try:
        load_cooked_trace(path)
    except TraceFormatError as exc:
        assert str(path) in str(exc)


# ------------------------------------------------------------------------------- synthetic data
def test_synthetic_generators_are_seeded_and_valid():
    a = markov_bandwidth_trace(np.random.default_rng(1))
    b = markov_bandwidth_trace(np.random.default_rng(1))
    np.testing.assert_array_equal(a.mbps, b.mbps)
    assert a.mbps.min() > 0 and len(a) == 401
    ts = synthetic_trace_set(np.random.default_rng(0), count=5)
    assert ts.synthetic and len(ts) == 5
    v = synthetic_video(np.random.default_rng(0))
    assert v.chunk_bytes.shape == (6, 48) and np.all(np.diff(v.chunk_bytes, axis=0) > 0)


# ---------------------------------------------------------------------------- dataset resolution
def test_resolution_order(tmp_path, monkeypatch, data_root):
    monkeypatch.setenv("MAMBA4NET_CACHE", str(tmp_path / "cache"))
    # explicit path wins
    assert resolve(str(data_root / "abr/traces/fcc-test")).name is None
    # then $MAMBA4NET_DATA
    assert resolve("fcc-test").root == data_root
    # then the cache
    monkeypatch.delenv("MAMBA4NET_DATA")
    cached = tmp_path / "cache/abr/traces/fcc-test"
    shutil.copytree(data_root / "abr/traces/fcc-test", cached)
    assert resolve("fcc-test").path == cached
    # missing: a clear error that says how to get it, and nothing is downloaded
    with pytest.raises(DatasetNotFoundError, match=r"python -m traces.download fcc-valid"):
        resolve("fcc-valid")
    assert not (tmp_path / "cache/abr/traces/fcc-valid").exists()
    with pytest.raises(DatasetNotFoundError, match="neither an existing path nor a known dataset"):
        resolve("no-such-set")


def _netllm_mirror(root: Path, data_root: Path) -> Path:
    """Lay out fcc-test + video1 the way NetLLM's repository does, from the shared copy."""
    m = manifest()["datasets"]
    for name in ("fcc-test", "video1"):
        dst = root / m[name]["remote"]
        shutil.copytree(data_root / m[name]["local"], dst)
    # NetLLM ships the start offsets as a pickled list (one per trace, sorted order)
    from traces.abr import load_start_offsets

    offsets = load_start_offsets(data_root / "abr/fcc-test-start-offsets.tsv")
    ptrs = [offsets[n] for n in sorted(m["fcc-test"]["files"])]
    (root / m["fcc-test"]["offsets"]["remote"]).write_bytes(pickle.dumps(ptrs))
    return root


@pytest.fixture()
def http_mirror(tmp_path, data_root):
    root = _netllm_mirror(tmp_path / "mirror", data_root)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", root
    server.shutdown()
    server.server_close()


def test_download_verifies_and_loads(tmp_path, monkeypatch, http_mirror, data_root):
    url, _ = http_mirror
    monkeypatch.setenv("MAMBA4NET_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MAMBA4NET_DATA")
    download_dataset("fcc-test", base_url=url, progress=False)
    download_dataset("video1", base_url=url, progress=False)
    got = load_abr_traces("fcc-test")
    monkeypatch.setenv("MAMBA4NET_DATA", str(data_root))
    ref = load_abr_traces("fcc-test")
    assert got.names == ref.names
    np.testing.assert_array_equal(got.start_index, ref.start_index)
    np.testing.assert_array_equal(got.traces[7].mbps, ref.traces[7].mbps)
    assert (tmp_path / "cache/abr/fcc-test-start-offsets.tsv").read_text() == \
        (data_root / "abr/fcc-test-start-offsets.tsv").read_text()


def test_download_rejects_tampered_file_and_leaves_nothing(tmp_path, monkeypatch, http_mirror):
    url, root = http_mirror
    victim = root / manifest()["datasets"]["fcc-test"]["remote"] / "000_trace_942154_http---www.ebay.com_0"
    victim.write_text(victim.read_text().replace("0.815568", "9.999999"))
    monkeypatch.setenv("MAMBA4NET_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ChecksumError, match="does not match the pinned"):
        download_dataset("fcc-test", base_url=url, progress=False)
    leftovers = list((tmp_path / "cache/abr/traces").iterdir())
    assert leftovers == [], leftovers


def test_manifest_pins_every_shared_file(data_root):
    for name, entry in manifest()["datasets"].items():
        for fname, digest in list(entry["files"].items())[:5]:
            assert hashlib.sha256((data_root / entry["local"] / fname).read_bytes()).hexdigest() == digest


# ---------------------------------------------------------------------------------- safe pickles
class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_restricted_unpickler_refuses_code(tmp_path):
    blob = pickle.dumps({"a": _Evil()})
    with pytest.raises(UnsafePickleError, match="posix.system|os.system"):
        restricted_loads(blob, "evil.pkl")
    # the same payload hidden in a .npy object array
    path = tmp_path / "evil.npy"
    np.save(path, np.array({"stage": _Evil()}, dtype=object), allow_pickle=True)
    with pytest.raises(UnsafePickleError, match="evil.npy"):
        load_legacy_pickle(path)


def test_restricted_unpickler_reads_plain_data(tmp_path, data_root):
    data = {"first_wave": {5: [1.0, 2.0]}, "arr": np.arange(3), "t": (1, "x")}
    assert restricted_loads(pickle.dumps(data))["first_wave"][5] == [1.0, 2.0]
    d = load_legacy_pickle(data_root / "cjs/tpch/2g/task_duration_1.npy")
    assert set(d[0]) == {"first_wave", "rest_wave", "fresh_durations"}


def test_trace_dir_skips_side_files(tmp_path):
    (tmp_path / "a").write_text("0 1\n1 2\n")
    (tmp_path / "mahimahi_ptrs.pkl").write_bytes(b"\x80")
    assert [t.name for t in load_trace_dir(tmp_path)] == ["a"]


def test_clean_splits_unions_and_randomized_links(data_root):
    """fcc-train-clean holds no copy of an fcc-test trace and fcc-valid-clean is disjoint from it; a+b joins
    sets; randomized:N:SEED draws the same playable links for the same seed."""
    import hashlib

    from envs.abr.core import ABRConfig, TraceBank
    from traces import load_abr_traces, load_abr_video

    train, valid = load_abr_traces("fcc-train-clean"), load_abr_traces("fcc-valid-clean")
    assert (len(train), len(valid)) == (155, 38) and not set(train.names) & set(valid.names)
    digest = lambda folder, n: hashlib.sha256((data_root / "abr/traces" / folder / n).read_bytes()).hexdigest()  # noqa: E731
    test = {digest("fcc-test", n) for n in load_abr_traces("fcc-test").names}
    assert not test & {digest("fcc-train", n) for n in train.names + valid.names}
    both = load_abr_traces("fcc-valid-clean+randomized:30:7")
    assert len(both) == 68 and both.synthetic
    again = load_abr_traces("randomized:30:7")
    np.testing.assert_array_equal(both.traces[-1].mbps, again.traces[-1].mbps)
    m = np.asarray([t.mbps.mean() for t in load_abr_traces("randomized:200:0").traces])
    assert 0.15 < m.min() and m.max() < 11 and m.max() / m.min() > 10  # the family spans the 0.2–10 Mbps range
    TraceBank(again.traces).check_playable(load_abr_video("video1"), ABRConfig())
