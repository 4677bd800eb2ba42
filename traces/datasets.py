"""Named datasets: resolution, pinned download with SHA-256 check, and loading.

A name resolves, in this order, to:

1. an explicit path (anything that exists on disk is taken as it is);
2. ``$MAMBA4NET_DATA/<layout path>`` (the layout of ``shared/data``);
3. the user cache, ``$MAMBA4NET_CACHE`` or ``~/.cache/mamba4net``, same layout;
4. a download from NetLLM's public repository pinned to commit ``105bcf0``, every file checked
   against the SHA-256 in ``traces/manifests/abr.json`` — only when asked (``download=True`` or
   ``python -m traces.download NAME``). Nothing downloads silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .atomic import staged_dir, write_text_atomic
from .abr import TraceSet, Video, load_start_offsets, load_trace_dir, load_video
from .errors import ChecksumError, DatasetNotFoundError, TraceFormatError

MANIFEST_PATH = Path(__file__).with_name("manifests") / "abr.json"
NETLLM_COMMIT = "105bcf0"
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/duowuyms/NetLLM/{NETLLM_COMMIT}/"
OFFSETS_LOCAL = "abr/fcc-test-start-offsets.tsv"
# Datasets resolved like the others but with no pinned download (too many files to pin here):
# name -> (layout path, where to get it).
LOCAL_ONLY = {
    "jin2022": ("vp/Jin2022", "NetLLM viewport_prediction/data/viewports/Jin2022"),
    "tpch": ("cjs/tpch", "NetLLM cluster_job_scheduling/data/tpch (= decima-sim spark_env/tpch)"),
    # validation only, never trained on (issue #24): Oboe's video-session throughput traces
    "oboe": ("abr/traces/oboe", "confiwent/Real-world-bandwidth-traces traces_oboe (Akhtar et al., SIGCOMM 2018)"),
    "cjs-reference": ("cjs/reference", "an independent run of NetLLM's spark_sched_sim (seeds 1-10)"),
}


@lru_cache(maxsize=1)
def manifest() -> dict:
    return json.loads(MANIFEST_PATH.read_text())


def dataset_names() -> list[str]:
    """Names that can be downloaded (``python -m traces.download``)."""
    return sorted(manifest()["datasets"])


def data_root() -> Path | None:
    root = os.environ.get("MAMBA4NET_DATA")
    return Path(root).expanduser() if root else None


def cache_root() -> Path:
    return Path(os.environ.get("MAMBA4NET_CACHE", Path.home() / ".cache" / "mamba4net")).expanduser()


@dataclass(frozen=True)
class Resolved:
    path: Path
    name: str | None  # registry name, or None for an explicit path
    root: Path | None  # the data root it was found under (to find side files such as offsets)


def resolve(name_or_path: str | os.PathLike, download: bool = False, base_url: str | None = None) -> Resolved:
    """Find a dataset folder; see the module docstring for the order."""
    text = str(name_or_path)
    registry = manifest()["datasets"]
    if text in LOCAL_ONLY:
        local, source = LOCAL_ONLY[text]
        tried = []
        for root in (data_root(), cache_root()):
            if root is not None and (root / local).is_dir():
                return Resolved(root / local, text, root)
            if root is not None:
                tried.append(str(root / local))
        raise DatasetNotFoundError(
            f"dataset {text!r} not found (looked in: {'; '.join(tried) or '(MAMBA4NET_DATA unset)'}). Set "
            f"MAMBA4NET_DATA to a folder laid out like shared/data, or copy {source} to {cache_root() / local}."
        )
    if text not in registry:
        path = Path(text).expanduser()
        if path.exists():
            return Resolved(path, None, None)
        raise DatasetNotFoundError(
            f"{text!r} is neither an existing path nor a known dataset; known: {', '.join(sorted(registry))}"
        )
    local = registry[text]["local"]
    tried = []
    for root in (data_root(), cache_root()):
        if root is None:
            continue
        candidate = root / local
        tried.append(str(candidate))
        if candidate.is_dir() and _complete(candidate, registry[text]):
            return Resolved(candidate, text, root)
    if download:
        download_dataset(text, base_url=base_url)
        return Resolved(cache_root() / local, text, cache_root())
    where = "; ".join(tried) or "(MAMBA4NET_DATA unset)"
    raise DatasetNotFoundError(
        f"dataset {text!r} not found (looked in: {where}). Set MAMBA4NET_DATA to a folder laid out like "
        f"shared/data, or fetch it once with `python -m traces.download {text}` (pinned to NetLLM "
        f"{NETLLM_COMMIT}, SHA-256 checked, into {cache_root()})."
    )


def _complete(folder: Path, entry: dict) -> bool:
    return all((folder / f).is_file() for f in entry["files"])


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


FETCH_DEADLINE_S = 120.0  # for one file, the whole transfer (a slow server cannot stretch it)
FETCH_MAX_BYTES = 32 * 2**20  # the largest file of a pinned dataset is far below this


def _fetch(url: str, deadline_s: float = FETCH_DEADLINE_S, max_bytes: int = FETCH_MAX_BYTES) -> bytes:
    """The body of ``url``, read in pieces under an overall deadline and a size cap (both errors name the URL)."""
    import time

    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=min(30.0, deadline_s)) as resp:  # noqa: S310 - pinned URLs only
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise ChecksumError(f"{url}: {int(declared):,} bytes announced, over the {max_bytes:,}-byte cap")
            parts, size = [], 0
            while True:
                if time.monotonic() - start > deadline_s:
                    raise TimeoutError(f"{url}: not complete after {deadline_s:.0f} s")
                piece = resp.read1(1 << 16) if hasattr(resp, "read1") else resp.read(1 << 16)  # what has arrived
                if not piece:
                    return b"".join(parts)
                size += len(piece)
                if size > max_bytes:
                    raise ChecksumError(f"{url}: more than the {max_bytes:,}-byte cap")
                parts.append(piece)
    except OSError as exc:  # URLError, timeouts, refused connections
        raise DatasetNotFoundError(f"{url}: download failed ({getattr(exc, 'reason', None) or exc})") from None


def offsets_tsv(names: list[str], offsets: list[int]) -> str:
    """Canonical text of a start-offsets table (the form whose SHA-256 the manifest pins)."""
    lines = ["# trace\tstart_index (index into the trace rows where playback begins; NetLLM fcc-test evaluation offsets)"]
    lines += [f"{n}\t{int(i)}" for n, i in zip(names, offsets)]
    return "\n".join(lines) + "\n"


def download_dataset(name: str, base_url: str | None = None, progress: bool = True) -> Path:
    """Download a named dataset into the cache, verifying every file; atomic (temp dir + rename)."""
    from .safe_pickle import decode_plain_pickle

    entry = manifest()["datasets"].get(name)
    if entry is None:
        raise DatasetNotFoundError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")
    base = (base_url or os.environ.get("MAMBA4NET_DATA_URL") or DEFAULT_BASE_URL).rstrip("/") + "/"
    dest = cache_root() / entry["local"]
    with staged_dir(dest) as tmp:
        files = sorted(entry["files"].items())
        iterator = files
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(files, desc=f"download {name}", unit="file", leave=False)
        for fname, digest in iterator:
            url = base + entry["remote"] + "/" + urllib.request.quote(fname)
            data = _fetch(url)
            got = _sha256(data)
            if got != digest:
                raise ChecksumError(f"{url}: SHA-256 {got} does not match the pinned {digest}")
            (tmp / fname).write_bytes(data)
        offsets_entry = entry.get("offsets")
        if offsets_entry:
            url = base + offsets_entry["remote"]
            # no pin of the raw pickle exists upstream: decode plain values only (no globals, capped), then
            # check the decoded table against its pin before anything uses it
            raw = decode_plain_pickle(_fetch(url), url)
            names = sorted(entry["files"])
            try:
                values = [int(raw[n]) for n in names] if isinstance(raw, dict) else [int(v) for v in list(raw)]
            except (KeyError, TypeError, ValueError) as exc:
                raise ChecksumError(f"{url}: not a table of start offsets ({exc})") from None
            text = offsets_tsv(names, values)
            if _sha256(text.encode()) != offsets_entry["sha256_decoded"]:
                raise ChecksumError(f"{url}: decoded start offsets do not match the pinned table")
    if offsets_entry:
        write_text_atomic(cache_root() / offsets_entry["local"], text)
    return dest


# --------------------------------------------------------------------------------------- loading

# Clean ABR splits (issue #24): fcc-valid copies fcc-train and 42 fcc-test traces are in fcc-train, so a
# model is trained on fcc-train minus every trace byte-identical to an fcc-test one, and validated on a
# disjoint part of the rest: every VALID_EVERY-th trace by name. `oboe` is validation only, never trained on.
CLEAN_SPLITS = ("fcc-train-clean", "fcc-valid-clean")
VALID_EVERY = 5


def clean_abr_split(name: str) -> TraceSet:
    """``fcc-train-clean`` or ``fcc-valid-clean`` (see :data:`CLEAN_SPLITS`), built from fcc-train and fcc-test."""
    train_dir, test_dir = resolve("fcc-train").path, resolve("fcc-test").path
    test_digests = {_sha256(p.read_bytes()) for p in test_dir.iterdir() if p.is_file()}
    traces = load_trace_dir(train_dir)
    clean = [t for t in traces if _sha256((train_dir / t.name).read_bytes()) not in test_digests]
    valid = name == "fcc-valid-clean"
    picked = [t for i, t in enumerate(clean) if (i % VALID_EVERY == VALID_EVERY - 1) == valid]
    return TraceSet(picked, name=name)


def load_abr_traces(name_or_path: str | os.PathLike, download: bool = False, fmt: str = "cooked",
                    on_error: str = "raise") -> TraceSet:
    """Load a trace set. ``fcc-test`` carries NetLLM's per-trace start offsets; others start at row 1.
    ``fcc-train-clean`` / ``fcc-valid-clean`` are the clean splits of fcc-train (:func:`clean_abr_split`);
    ``randomized:COUNT[:SEED]`` draws domain-randomised links; ``a+b`` is the union of two sets.
    ``on_error="skip"`` leaves out unreadable trace files with a warning each."""
    text = str(name_or_path)
    if "+" in text:  # a union of sets, e.g. fcc-train-clean+randomized:200
        parts = [load_abr_traces(p, download, fmt, on_error) for p in text.split("+")]
        return TraceSet([t for s in parts for t in s.traces], np.concatenate([s.start_index for s in parts]),
                        name=text, synthetic=any(s.synthetic for s in parts))
    if text.startswith("randomized:"):  # randomized:COUNT[:SEED], the domain-randomised links of traces.synthetic
        from .synthetic import randomized_trace_set

        try:
            count, seed = (int(x) for x in (text.split(":")[1:] + ["0"])[:2])
        except ValueError:
            raise DatasetNotFoundError(f"{text!r}: write randomized:COUNT or randomized:COUNT:SEED") from None
        out = randomized_trace_set(np.random.default_rng(seed), count)
        out.name = text
        return out
    if text in CLEAN_SPLITS:
        return clean_abr_split(text)
    res = resolve(name_or_path, download=download)
    traces = load_trace_dir(res.path, fmt=fmt, on_error=on_error)
    start = np.ones(len(traces), dtype=np.int64)
    offsets_file = None
    if res.name is not None and manifest()["datasets"].get(res.name, {}).get("offsets"):
        offsets_file = res.root / manifest()["datasets"][res.name]["offsets"]["local"]
    elif res.name is None and (res.path / "start-offsets.tsv").is_file():
        offsets_file = res.path / "start-offsets.tsv"
    if offsets_file is not None:
        if not offsets_file.is_file():
            raise DatasetNotFoundError(f"{offsets_file}: start offsets for {res.name} are missing")
        offsets = load_start_offsets(offsets_file)
        missing = [t.name for t in traces if t.name not in offsets]
        if missing:
            raise TraceFormatError(offsets_file, f"no start offset for {len(missing)} trace(s), e.g. {missing[0]!r}")
        start = np.asarray([offsets[t.name] for t in traces], dtype=np.int64)
        for t, s in zip(traces, start):
            if s >= len(t):
                raise TraceFormatError(offsets_file, f"start {s} beyond the {len(t)} rows of {t.name!r}")
    return TraceSet(traces, start, name=res.name or str(res.path))


def load_abr_video(name_or_path: str | os.PathLike = "video1", download: bool = False) -> Video:
    res = resolve(name_or_path, download=download)
    return load_video(res.path)


def duplicate_mask(test: str | os.PathLike = "fcc-test", train: str | os.PathLike = "fcc-train") -> np.ndarray:
    """``True`` for each trace of ``test`` whose bytes also appear in ``train`` (in-sample traces)."""
    test_dir, train_dir = resolve(test).path, resolve(train).path
    train_digests = {_sha256(p.read_bytes()) for p in train_dir.iterdir() if p.is_file()}
    names = [t.name for t in load_trace_dir(test_dir)]
    return np.asarray([_sha256((test_dir / n).read_bytes()) in train_digests for n in names], dtype=bool)


# ------------------------------------------------------------------------------ manifest writing

_REMOTE = {
    "fcc-train": "adaptive_bitrate_streaming/data/traces/train/fcc-train",
    "fcc-valid": "adaptive_bitrate_streaming/data/traces/valid/fcc-valid",
    "fcc-test": "adaptive_bitrate_streaming/data/traces/test/fcc-test",
    "video1": "adaptive_bitrate_streaming/data/videos/video1_sizes",
    "video2": "adaptive_bitrate_streaming/data/videos/video2_sizes",
}
_LOCAL = {
    "fcc-train": "abr/traces/fcc-train",
    "fcc-valid": "abr/traces/fcc-valid",
    "fcc-test": "abr/traces/fcc-test",
    "video1": "abr/videos/video1",
    "video2": "abr/videos/video2",
}


def build_manifest(root: Path) -> dict:
    """Pin every file of a local copy (maintainers only: ``python -m traces.datasets ROOT``)."""
    datasets = {}
    for name, local in _LOCAL.items():
        folder = root / local
        files = {p.name: _sha256(p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()}
        datasets[name] = {"local": local, "remote": _REMOTE[name], "files": files}
    offsets = load_start_offsets(root / OFFSETS_LOCAL)
    names = sorted(datasets["fcc-test"]["files"])
    text = offsets_tsv(names, [offsets[n] for n in names])
    datasets["fcc-test"]["offsets"] = {
        "local": OFFSETS_LOCAL,
        "remote": _REMOTE["fcc-test"] + "/mahimahi_ptrs.pkl",
        # The upstream file is a pickle; we pin the SHA-256 of the table decoded from it.
        "sha256_decoded": _sha256(text.encode()),
    }
    return {"source": "github.com/duowuyms/NetLLM", "commit": NETLLM_COMMIT, "datasets": datasets}


if __name__ == "__main__":  # pragma: no cover - maintainer tool
    import sys

    out = build_manifest(Path(sys.argv[1]))
    MANIFEST_PATH.parent.mkdir(exist_ok=True)
    write_text_atomic(MANIFEST_PATH, json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {MANIFEST_PATH}")
