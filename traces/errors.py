"""Errors raised by the loaders (each names the file, and line, at fault), the policy for bad files
in a folder, and the rule that turns a user's error into one line on the command line."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path


class UserError(Exception):
    """An error in what the user gave us (a file, a flag, a checkpoint), not a bug: the command line
    prints its message alone and exits with code 2 (``--debug`` or ``MAMBA4NET_DEBUG=1``: the traceback)."""


class TraceFormatError(UserError, ValueError):
    """A trace, video or workload file does not have the expected format.

    The message always names the file and, where one is at fault, the 1-based line.
    """

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class DatasetNotFoundError(UserError, FileNotFoundError):
    """A named dataset is not available locally; the message says how to get it."""


class ChecksumError(UserError, ValueError):
    """A downloaded file does not match its pinned SHA-256."""


ON_ERROR = ("raise", "skip")


class BadFiles:
    """The ``on_error`` policy of a folder loader: ``raise`` stops at the first bad file; ``skip`` warns
    once per file with its reason, and once at the end with the count."""

    def __init__(self, on_error: str, folder: str | Path):
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.on_error, self.folder, self.skipped = on_error, str(folder), []

    def load(self, loader, path, *args):
        """``loader(path, *args)``, or ``None`` for a bad file under ``skip``."""
        try:
            return loader(path, *args)
        except (TraceFormatError, OSError) as exc:
            if self.on_error == "raise":
                raise
            self.skipped.append(str(path))
            warnings.warn(f"skipped {exc}", stacklevel=3)
            return None

    def done(self, total: int) -> None:
        if self.skipped:
            warnings.warn(f"{self.folder}: skipped {len(self.skipped)} of {total} files (on_error='skip')",
                          stacklevel=3)


def user_errors() -> tuple[type[BaseException], ...]:
    """What counts as the user's error on a command line: ours, unreadable files and failed downloads."""
    import pickle

    return (UserError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError,
            pickle.UnpicklingError)


def run_cli(main, argv=None) -> None:
    """Run ``main(argv)``; a user error is one line on stderr and exit code 2, unless ``--debug`` is in
    the arguments or ``MAMBA4NET_DEBUG=1`` (then the traceback). Bugs keep their tracebacks."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("MAMBA4NET_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    try:
        main(args)
    except user_errors() as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
