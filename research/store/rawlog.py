"""The raw JSON-lines log: every finished piece of work, appended durably the moment it is done.

A scan that dies loses nothing it finished: each record is flushed and fsynced before the work
counts as done, and a last line cut short by the crash is dropped when the log is read back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from research.store.records import Record


class RawLogWriter:
    """Appends records (one JSON object a line) to ``path``; safe to share between threads
    as long as each call to :meth:`append` is serialised by the caller."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO = path.open("a", encoding="utf-8")

    def append(self, record: Record) -> None:
        self._file.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RawLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def repair(path: Path) -> int:
    """Cut a torn last line (no newline: the writer died mid-write). Returns bytes removed."""
    if not path.exists():
        return 0
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        f.seek(0)
        data = f.read()
        keep = data.rfind(b"\n") + 1
        f.truncate(keep)
        return size - keep


def parse_line(raw: bytes) -> Record | None:
    """The record on one line of the log; None for a torn (no newline) or corrupt line."""
    if not raw.endswith(b"\n"):
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def read_records(path: Path) -> Iterator[Record]:
    """Every complete record in the log, in order; torn or corrupt lines are skipped."""
    if not path.exists():
        return
    with path.open("rb") as f:
        for raw in f:
            record = parse_line(raw)
            if record is not None:
                yield record
