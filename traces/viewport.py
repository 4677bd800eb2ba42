"""Viewport traces (360° video head movement): loader, NetLLM's splits, prediction windows.

Format: ``videoK/5Hz/simple_5Hz_userU.csv`` under a dataset folder, one ``time_s,roll,pitch,yaw``
row per sample (degrees, 5 Hz, no header). Jin2022 (Jin et al., ACM MM 2022) as shipped by NetLLM;
Wu2017 has the same layout.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .abr import _parse_float, _read_text
from .errors import BadFiles, TraceFormatError

# NetLLM's Jin2022 split (viewport_prediction/config.py), as given in docs/DESIGN.md.
JIN2022_VIDEOS = {
    "train": (1, 5, 9, 2, 6, 11, 15, 16, 13, 17, 21, 22, 26, 19, 23),
    "valid": (3, 7, 12, 10, 20, 27),
    "test": (4, 8, 14, 18, 24, 25),
}
_TRAIN_USERS = (50, 54, 6, 34, 66, 63, 52, 39, 62, 46, 75, 28, 65, 18, 37, 13, 80, 33, 69, 78, 19, 40, 10, 43,
                61, 72, 56, 41, 79, 82, 27, 71, 57, 67, 8, 2, 12, 81, 1, 64, 32, 42)
_VALID_USERS = (9, 25, 73, 29, 31, 70, 58, 11, 14, 38, 16, 76, 77, 74, 24, 5, 17, 20, 51, 68, 36)
JIN2022_USERS = {
    "train": _TRAIN_USERS,
    "valid": _VALID_USERS,
    "test": tuple(u for u in range(1, 85) if u not in _TRAIN_USERS and u not in _VALID_USERS),
}

# NetLLM's windowing defaults (viewport_prediction/config.py): 2 s history, 4 s future at 5 Hz,
# a window every 3 s, skipping the first 6 s and the last 12 s of each trace.
HISTORY = 10
FUTURE = 20
STRIDE = 15
TRIM_HEAD = 30
TRIM_TAIL = 60

_NAME = re.compile(r"simple_(\d+)Hz_user(\d+)\.csv$")


@dataclass(frozen=True)
class ViewportTrace:
    video: int
    user: int
    times_s: np.ndarray  # (T,)
    angles: np.ndarray  # (T, 3) roll, pitch, yaw in degrees
    source: str = ""

    def __len__(self) -> int:
        return len(self.times_s)


def load_viewport_csv(path: str | os.PathLike, video: int, user: int) -> ViewportTrace:
    path = Path(path)
    rows = []
    for lineno, line in enumerate(_read_text(path), start=1):
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) != 4:
            raise TraceFormatError(path, f"expected 4 fields 'time_s,roll,pitch,yaw', got {len(parts)}", lineno)
        vals = [_parse_float(tok.strip(), path, lineno, name)
                for name, tok in zip(("time_s", "roll", "pitch", "yaw"), parts)]
        if rows and vals[0] < rows[-1][0]:
            raise TraceFormatError(path, f"time goes backwards ({vals[0]} after {rows[-1][0]})", lineno)
        if vals[0] < 0 or vals[0] > 1e8:
            raise TraceFormatError(path, f"time {vals[0]:g} s outside [0, 1e8]", lineno)
        if not -360.0 <= vals[3] <= 360.0 or abs(vals[1]) > 360.0 or abs(vals[2]) > 360.0:
            raise TraceFormatError(path, "angle outside [-360, 360] degrees", lineno)
        rows.append(vals)
    if not rows:
        raise TraceFormatError(path, "empty viewport trace")
    arr = np.asarray(rows, dtype=np.float64)
    return ViewportTrace(video, user, arr[:, 0], arr[:, 1:], str(path))


def load_viewport_dataset(root: str | os.PathLike, videos=None, users=None, hz: int = 5,
                          on_error: str = "raise") -> list[ViewportTrace]:
    """Every ``videoK/{hz}Hz/simple_{hz}Hz_userU.csv`` under ``root`` (filtered by ``videos``/``users``).
    ``on_error="skip"`` leaves out bad files with a warning each (and a count at the end)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a viewport dataset folder")
    out, bad, seen = [], BadFiles(on_error, root), 0
    for vdir in sorted(root.glob("video*"), key=lambda p: int(re.sub(r"\D", "", p.name) or 0)):
        if not vdir.name[5:].isdigit():
            continue
        video = int(vdir.name[5:])
        if videos is not None and video not in videos:
            continue
        for f in sorted((vdir / f"{hz}Hz").glob(f"simple_{hz}Hz_user*.csv"), key=lambda p: int(_NAME.search(p.name).group(2))):
            user = int(_NAME.search(f.name).group(2))
            if users is not None and user not in users:
                continue
            seen += 1
            trace = bad.load(load_viewport_csv, f, video, user)
            if trace is not None:
                out.append(trace)
    bad.done(seen)
    if not out:
        raise TraceFormatError(root, f"no viewport traces found (videoK/{hz}Hz/simple_{hz}Hz_userU.csv)")
    return out


def load_jin2022_split(split: str, root: str | os.PathLike | None = None, on_error: str = "raise") -> list[ViewportTrace]:
    """NetLLM's train/valid/test video × user split of Jin2022."""
    if split not in JIN2022_VIDEOS:
        raise ValueError(f"split must be one of {sorted(JIN2022_VIDEOS)}, got {split!r}")
    if root is None:
        from .datasets import resolve

        root = resolve("jin2022").path
    return load_viewport_dataset(root, set(JIN2022_VIDEOS[split]), set(JIN2022_USERS[split]), on_error=on_error)


def wrap_deg(x):
    """Map angles to [-180, 180)."""
    return (np.asarray(x) + 180.0) % 360.0 - 180.0


def unwrap_yaw(angles: np.ndarray) -> np.ndarray:
    """Make yaw (last axis, column 2) continuous along the time axis (-2) so that it can be extrapolated."""
    out = np.array(angles, dtype=np.float64, copy=True)
    out[..., 2] = np.rad2deg(np.unwrap(np.deg2rad(out[..., 2]), axis=-1))
    return out


@dataclass
class Windows:
    """Prediction windows as plain arrays (the supervised dataset)."""

    history: np.ndarray  # (N, HISTORY, 3) degrees
    future: np.ndarray  # (N, FUTURE, 3) degrees
    history_t: np.ndarray  # (N, HISTORY) seconds
    video: np.ndarray  # (N,)
    user: np.ndarray  # (N,)
    index: np.ndarray  # (N,) first future sample's row

    def __len__(self) -> int:
        return len(self.history)


def window_starts(length: int, history: int = HISTORY, future: int = FUTURE, stride: int = STRIDE,
                  trim_head: int = TRIM_HEAD, trim_tail: int = TRIM_TAIL) -> np.ndarray:
    """Rows ``t`` where a window starts (history ``[t-h, t)``, future ``[t, t+f)``), NetLLM's rule."""
    return np.arange(max(trim_head, history), length - max(trim_tail, future), stride)


def make_windows(traces: list[ViewportTrace], history: int = HISTORY, future: int = FUTURE, stride: int = STRIDE,
                 trim_head: int = TRIM_HEAD, trim_tail: int = TRIM_TAIL) -> Windows:
    hs, fs, ts, vs, us, ix = [], [], [], [], [], []
    for tr in traces:
        for t in window_starts(len(tr), history, future, stride, trim_head, trim_tail):
            hs.append(tr.angles[t - history:t])
            fs.append(tr.angles[t:t + future])
            ts.append(tr.times_s[t - history:t])
            vs.append(tr.video)
            us.append(tr.user)
            ix.append(t)
    if not hs:
        return Windows(np.zeros((0, history, 3)), np.zeros((0, future, 3)), np.zeros((0, history)),
                       np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return Windows(np.stack(hs), np.stack(fs), np.stack(ts), np.asarray(vs), np.asarray(us), np.asarray(ix))
