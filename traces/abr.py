"""ABR data: bandwidth traces and video chunk sizes.

Formats
-------
* Pensieve "cooked" traces: one ``time_s  Mbps`` pair per line (whitespace separated). Regular
  (FCC, 5 s steps) and irregular (HSDPA bus logs, ~1 s with jitter) time steps are both accepted;
  time must start at >= 0 and never decrease.
* Mahimahi packet-delivery files: one integer millisecond timestamp per line, each a delivery
  opportunity for one 1500-byte packet. Converted to a cooked trace by counting packets per window.
* Video size files: ``video_size_0 .. video_size_{L-1}``, one integer byte count per chunk per line
  (lowest to highest level).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import BadFiles, TraceFormatError

# Pensieve / NetLLM video ladder (kbps) and chunk length (s): Pensieve `sim/env.py`
# VIDEO_BIT_RATE and the 4 s Envivio-Dash3 segments.
DEFAULT_BITRATES_KBPS = (300, 750, 1200, 1850, 2850, 4300)
DEFAULT_CHUNK_S = 4.0
# Pensieve TOTAL_VIDEO_CHUNKS = 48: the size files hold 49 lines, the player uses 48.
DEFAULT_TOTAL_CHUNKS = 48
MAHIMAHI_PACKET_BYTES = 1500
# Input caps: no trace or size file of any public set comes near them; past them the input is refused
# before it is read whole. A bandwidth above 100 Gbps or a timestamp past ~3 years is not a trace.
MAX_FILE_BYTES = 64 * 2**20
MAX_MBPS = 1e5
MIN_MBPS = 1e-6  # a positive bandwidth below 1 bit/s is not a measurement
MAX_TIME_S = 1e8
MAX_CHUNK_BYTES = 2**31
_ECHO = 40  # characters of a bad token echoed into an error


def _echo(text: str) -> str:
    """``text`` as quoted in an error, cut to a readable length."""
    return repr(text) if len(text) <= _ECHO else repr(text[:_ECHO]) + f"… ({len(text):,} characters)"


@dataclass(frozen=True)
class BandwidthTrace:
    """A bandwidth trace: the link delivers ``mbps[i]`` during ``(times_s[i-1], times_s[i]]``."""

    name: str
    times_s: np.ndarray  # (T,) float64, non-decreasing, >= 0
    mbps: np.ndarray  # (T,) float64, >= 0, not all zero
    source: str = ""  # file it came from, for error messages and provenance

    def __post_init__(self) -> None:
        if self.times_s.shape != self.mbps.shape or self.times_s.ndim != 1:
            raise ValueError(f"trace {self.name!r}: times_s and mbps must be 1-D arrays of one length")
        if len(self.times_s) < 2:
            raise ValueError(f"trace {self.name!r}: needs at least 2 samples, has {len(self.times_s)}")

    def __len__(self) -> int:
        return len(self.times_s)

    @property
    def duration_s(self) -> float:
        return float(self.times_s[-1] - self.times_s[0])


@dataclass(frozen=True)
class Video:
    """Chunk sizes of one video at every quality level."""

    bitrates_kbps: tuple[int, ...]
    chunk_bytes: np.ndarray  # (levels, chunks) int64
    chunk_s: float = DEFAULT_CHUNK_S
    name: str = ""

    def __post_init__(self) -> None:
        if self.chunk_bytes.ndim != 2 or self.chunk_bytes.shape[0] != len(self.bitrates_kbps):
            raise ValueError(
                f"video {self.name!r}: chunk_bytes must be (levels={len(self.bitrates_kbps)}, chunks), "
                f"got {self.chunk_bytes.shape}"
            )

    @property
    def levels(self) -> int:
        return len(self.bitrates_kbps)

    @property
    def num_chunks(self) -> int:
        return self.chunk_bytes.shape[1]


# ----------------------------------------------------------------------------------------- parsing

def _read_text(path: Path, max_bytes: int = MAX_FILE_BYTES) -> list[str]:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise TraceFormatError(path, f"{size:,} bytes, over the {max_bytes:,}-byte cap for one file")
        raw = path.read_bytes()
    except OSError as exc:
        raise TraceFormatError(path, f"cannot read: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TraceFormatError(path, "not UTF-8 text", line) from None
    return text.splitlines()


def _parse_float(token: str, path: Path, lineno: int, what: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise TraceFormatError(path, f"{what} {_echo(token)} is not a number", lineno) from None
    if not math.isfinite(value):
        raise TraceFormatError(path, f"{what} {_echo(token)} is not finite", lineno)
    return value


def parse_cooked(lines: Sequence[str], path: str | Path, name: str | None = None) -> BandwidthTrace:
    """Parse Pensieve cooked-trace lines (``time_s  Mbps``); blank lines are ignored."""
    path = Path(path)
    times: list[float] = []
    bws: list[float] = []
    for lineno, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise TraceFormatError(path, f"expected 'time_s Mbps', got {_echo(line.strip())}", lineno)
        t = _parse_float(parts[0], path, lineno, "time")
        bw = _parse_float(parts[1], path, lineno, "bandwidth")
        if t < 0:
            raise TraceFormatError(path, f"negative time {t}", lineno)
        if t > MAX_TIME_S:
            raise TraceFormatError(path, f"time {t:g} s is beyond {MAX_TIME_S:g} s", lineno)
        if times and t < times[-1]:
            raise TraceFormatError(path, f"time goes backwards ({t} after {times[-1]})", lineno)
        if bw < 0:
            raise TraceFormatError(path, f"negative bandwidth {bw}", lineno)
        if 0 < bw < MIN_MBPS:
            raise TraceFormatError(path, f"bandwidth {bw:g} Mbps is below {MIN_MBPS:g} Mbps (1 bit/s)", lineno)
        if bw > MAX_MBPS:
            raise TraceFormatError(path, f"bandwidth {bw:g} Mbps is beyond {MAX_MBPS:g} Mbps", lineno)
        times.append(t)
        bws.append(bw)
    if not times:
        raise TraceFormatError(path, "empty trace (no 'time_s Mbps' lines)")
    if len(times) < 2:
        raise TraceFormatError(path, "a trace needs at least 2 lines", 1)
    mbps = np.asarray(bws, dtype=np.float64)
    t_arr = np.asarray(times, dtype=np.float64)
    _check_delivers(path, t_arr, mbps)
    return BandwidthTrace(name=name or path.name, times_s=t_arr, mbps=mbps, source=str(path))


def _check_delivers(path: Path, times: np.ndarray, mbps: np.ndarray) -> None:
    """A trace must deliver data: some row after the first (row 0 only anchors time) with positive
    bandwidth over a positive duration. Otherwise a download on it would never finish."""
    if not np.any(mbps[1:] > 0):
        raise TraceFormatError(path, "bandwidth is zero for the whole trace")
    if times[-1] <= times[0]:
        raise TraceFormatError(path, "trace has zero duration (all timestamps equal)")
    if not np.any((mbps[1:] > 0) & (np.diff(times) > 0)):
        raise TraceFormatError(path, "no row has both positive bandwidth and positive duration: nothing is delivered")


def load_cooked_trace(path: str | Path, name: str | None = None) -> BandwidthTrace:
    """Load one Pensieve cooked trace file."""
    path = Path(path)
    return parse_cooked(_read_text(path), path, name)


def parse_mahimahi(
    lines: Sequence[str], path: str | Path, name: str | None = None, window_ms: int = 1000
) -> BandwidthTrace:
    """Convert Mahimahi packet-delivery timestamps (ms) to a cooked trace with ``window_ms`` steps.

    Each line is a delivery opportunity for one 1500-byte packet; the bandwidth of window ``k``
    is ``packets_in_window · 1500 · 8 / window_ms / 1000`` Mbps.
    """
    path = Path(path)
    stamps: list[int] = []
    for lineno, line in enumerate(lines, start=1):
        token = line.strip()
        if not token:
            continue
        try:
            ms = int(token) if len(token) <= 20 else None
        except ValueError:
            ms = None
        if ms is None:
            raise TraceFormatError(path, f"timestamp {_echo(token)} is not an integer (ms)", lineno)
        if ms < 0:
            raise TraceFormatError(path, f"negative timestamp {ms}", lineno)
        if ms > MAX_TIME_S * 1000:
            raise TraceFormatError(path, f"timestamp {ms} ms is beyond {MAX_TIME_S:g} s", lineno)
        if stamps and ms < stamps[-1]:
            raise TraceFormatError(path, f"timestamp goes backwards ({ms} after {stamps[-1]})", lineno)
        stamps.append(ms)
    if not stamps:
        raise TraceFormatError(path, "empty Mahimahi trace")
    arr = np.asarray(stamps, dtype=np.int64)
    n_windows = int(arr[-1] // window_ms) + 1
    counts = np.bincount(arr // window_ms, minlength=n_windows).astype(np.float64)
    mbps = counts * MAHIMAHI_PACKET_BYTES * 8 / window_ms / 1000.0
    # Cooked semantics: row i's bandwidth applies to (t[i-1], t[i]] -> prepend a t=0 row.
    times = np.arange(n_windows + 1, dtype=np.float64) * window_ms / 1000.0
    mbps = np.concatenate([mbps[:1], mbps])
    _check_delivers(path, times, mbps)
    return BandwidthTrace(name=name or path.name, times_s=times, mbps=mbps, source=str(path))


def load_mahimahi_trace(path: str | Path, name: str | None = None, window_ms: int = 1000) -> BandwidthTrace:
    path = Path(path)
    return parse_mahimahi(_read_text(path), path, name, window_ms)


def load_trace_dir(directory: str | Path, fmt: str = "cooked", on_error: str = "raise") -> list[BandwidthTrace]:
    """Load every trace file of a folder, sorted by file name (Pensieve's order).

    Hidden files and ``*.pkl`` / ``*.tsv`` / ``*.md`` / ``*.json`` side files are not traces and are not
    read. ``on_error="skip"`` leaves out bad files with a warning each (and a count at the end).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: not a folder of traces")
    loader = {"cooked": load_cooked_trace, "mahimahi": load_mahimahi_trace}.get(fmt)
    if loader is None:
        raise ValueError(f"unknown trace format {fmt!r}; expected 'cooked' or 'mahimahi'")
    files = sorted(
        p for p in directory.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix not in {".pkl", ".tsv", ".md", ".json"}
    )
    if not files:
        raise TraceFormatError(directory, "folder holds no trace files")
    bad = BadFiles(on_error, directory)
    traces = [t for t in (bad.load(loader, p) for p in files) if t is not None]
    bad.done(len(files))
    if not traces:
        raise TraceFormatError(directory, f"none of the {len(files)} files is a readable trace")
    return traces


def load_video(
    directory: str | Path,
    bitrates_kbps: Sequence[int] = DEFAULT_BITRATES_KBPS,
    chunk_s: float = DEFAULT_CHUNK_S,
    total_chunks: int | None = DEFAULT_TOTAL_CHUNKS,
) -> Video:
    """Load ``video_size_0..L-1`` from a folder; keep the first ``total_chunks`` chunks."""
    directory = Path(directory)
    rows = []
    for level in range(len(bitrates_kbps)):
        path = directory / f"video_size_{level}"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing video size file for level {level}")
        sizes: list[int] = []
        for lineno, line in enumerate(_read_text(path), start=1):
            token = line.strip()
            if not token:
                continue
            try:
                size = int(token) if len(token) <= 20 else None
            except ValueError:
                size = None
            if size is None:
                raise TraceFormatError(path, f"chunk size {_echo(token)} is not an integer (bytes)", lineno)
            if not 0 < size <= MAX_CHUNK_BYTES:
                raise TraceFormatError(path, f"chunk size must be positive and at most {MAX_CHUNK_BYTES} bytes, got {size}", lineno)
            sizes.append(size)
        if not sizes:
            raise TraceFormatError(path, "empty video size file")
        rows.append(sizes)
    lengths = {len(r) for r in rows}
    if total_chunks is None and len(lengths) > 1:
        raise TraceFormatError(directory, f"levels have different numbers of chunks: {sorted(lengths)}")
    n = min(lengths)
    if total_chunks is not None:
        if n < total_chunks:
            raise TraceFormatError(directory, f"video has {n} chunks at some level, {total_chunks} needed")
        n = total_chunks
    chunk_bytes = np.asarray([r[:n] for r in rows], dtype=np.int64)
    if np.any(np.diff(chunk_bytes.mean(axis=1)) <= 0):
        raise TraceFormatError(directory, "mean chunk size must grow with the level (video_size_0 is the lowest); "
                                          f"got {[int(m) for m in chunk_bytes.mean(axis=1)]}")
    return Video(tuple(int(b) for b in bitrates_kbps), chunk_bytes, float(chunk_s), name=directory.name)


def load_start_offsets(path: str | Path) -> dict[str, int]:
    """Read ``trace<TAB>start_index`` lines (``#`` comments allowed) into a dict."""
    path = Path(path)
    offsets: dict[str, int] = {}
    for lineno, line in enumerate(_read_text(path), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 2:
            raise TraceFormatError(path, "expected 'trace<TAB>start_index'", lineno)
        try:
            idx = int(parts[1])
        except ValueError:
            raise TraceFormatError(path, f"start index {_echo(parts[1])} is not an integer", lineno) from None
        if idx < 1:
            raise TraceFormatError(path, f"start index must be >= 1 (row 0 only anchors time), got {idx}", lineno)
        offsets[parts[0]] = idx
    return offsets


@dataclass
class TraceSet:
    """Traces plus the per-trace start rows used in test mode (``1`` = Pensieve's default)."""

    traces: list[BandwidthTrace]
    start_index: np.ndarray = field(default=None)  # type: ignore[assignment]  # (N,) int64
    name: str = ""
    synthetic: bool = False

    def __post_init__(self) -> None:
        if not self.traces:
            raise ValueError("a TraceSet needs at least one trace")
        if self.start_index is None:
            self.start_index = np.ones(len(self.traces), dtype=np.int64)
        self.start_index = np.asarray(self.start_index, dtype=np.int64)
        if self.start_index.shape != (len(self.traces),):
            raise ValueError("start_index must have one entry per trace")
        for tr, s in zip(self.traces, self.start_index):
            if not 1 <= s < len(tr):
                raise ValueError(f"start index {s} out of range for trace {tr.name!r} ({len(tr)} rows)")

    def __len__(self) -> int:
        return len(self.traces)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.traces]

    def subset(self, mask_or_idx) -> "TraceSet":
        idx = np.flatnonzero(mask_or_idx) if np.asarray(mask_or_idx).dtype == bool else np.asarray(mask_or_idx)
        return TraceSet([self.traces[i] for i in idx], self.start_index[idx], self.name, self.synthetic)


def file_digests(paths: Sequence[str | os.PathLike]) -> list[str]:
    import hashlib

    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]
