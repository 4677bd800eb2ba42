"""Write-then-rename helpers: nothing we write is ever left half-written, and an existing copy is never
lost — the old folder is renamed aside before the new one is renamed in, and deleted only after.

Temporary names carry the writer's process id (``.NAME.tmp-PID-XXXX``, ``.NAME.old-PID-XXXX``), so the
next writer of the same destination removes what a killed run left behind (a leftover ``.old`` folder
is put back when the destination itself is missing: the crash came between the two renames).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _leftovers(dest: Path, kind: str) -> list[Path]:
    """``.NAME.{kind}-PID-*`` siblings of ``dest`` whose writer is no longer running."""
    out = []
    for p in dest.parent.glob(f".{dest.name}.{kind}-*"):
        pid = p.name[len(f".{dest.name}.{kind}-"):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            out.append(p)
    return out


def clean_stale(dest: str | os.PathLike) -> None:
    """Remove the temporary copies of ``dest`` that a killed writer left; restore its old copy if the
    kill came between moving it aside and moving the new one in."""
    dest = Path(dest)
    if not dest.parent.is_dir():
        return
    for old in _leftovers(dest, "old"):
        if not dest.exists():
            os.replace(old, dest)
        elif old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    for tmp in _leftovers(dest, "tmp"):
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)


def replace_keeping_old(tmp: Path, dest: Path) -> None:
    """Move ``tmp`` to ``dest``; an existing ``dest`` is renamed aside first and deleted only once the new
    one is in place, so at every moment one complete copy exists under a known name."""
    if not dest.exists():
        os.replace(tmp, dest)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-{os.getpid()}-", dir=dest.parent))
    os.rmdir(old)  # only the unique name is wanted
    os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except BaseException:
        os.replace(old, dest)  # put the old copy back
        raise
    shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)


@contextmanager
def staged_dir(dest: str | os.PathLike):
    """Yield a temp folder beside ``dest``; on success it replaces ``dest``, on error it is removed."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-{os.getpid()}-", dir=dest.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the result is an ordinary folder
        replace_keeping_old(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """``text`` into ``path`` through a unique temp file beside it, renamed over it when complete."""
    path = Path(path)
    clean_stale(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(name, 0o644)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


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


def check_writable(folder: str | os.PathLike, what: str = "--out") -> Path:
    """Create ``folder`` if needed and prove a file can be written there, before any work is done; the
    error names the flag and the folder."""
    from .errors import UserError

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{what} {folder}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise UserError(f"{what} {folder}: not writable ({exc.strerror or exc})") from None
    return folder
