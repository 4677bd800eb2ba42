"""Errors raised by the trace loaders: each names the file (and line) at fault."""

from __future__ import annotations

from pathlib import Path


class TraceFormatError(ValueError):
    """A trace, video or workload file does not have the expected format.

    The message always names the file and, where one is at fault, the 1-based line.
    """

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class DatasetNotFoundError(FileNotFoundError):
    """A named dataset is not available locally; the message says how to get it."""


class ChecksumError(ValueError):
    """A downloaded file does not match its pinned SHA-256."""
