"""Write-then-rename helpers: nothing we write is ever left half-written."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_dir(dest: str | os.PathLike):
    """Yield a temp folder beside ``dest``; on success it replaces ``dest``, on error it is removed."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the result is an ordinary folder
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_csv_atomic(path: str | os.PathLike, rows: list[dict], cols=None) -> None:
    """``rows`` (dicts) as a CSV with header ``cols`` (default: the first row's keys), written atomically."""
    import csv
    import io

    cols = list(cols if cols is not None else (rows[0] if rows else []))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")  # quotes fields that hold commas or quotes (trace names may)
    w.writerow(cols)
    w.writerows([r[c] for c in cols] for r in rows)
    write_text_atomic(path, buf.getvalue())
