"""The files of a survey directory, and how each is written so that no reader sees half of one.

Every file is written beside its final name, flushed to disk (fsync) and renamed over it: a
crash leaves the old file or the new, never a torn one. The raw log is the exception, being
appended to (:mod:`research.store.rawlog`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

RAW_LOG_NAME = "raw.jsonl"
META_NAME = "meta.json"


def temporary_beside(path: Path) -> Path:
    """A new empty file in ``path``'s directory, hidden and named after it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def publish(tmp: Path, path: Path) -> None:
    """Move the finished file ``tmp`` over ``path``, on disk first."""
    with open(tmp, "rb") as written:
        os.fsync(written.fileno())
    os.replace(tmp, path)


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to fill a file beside ``path``, then :func:`publish` it as ``path``.
    On an exception nothing is left behind and ``path`` is as it was."""
    tmp = temporary_beside(path)
    try:
        write(tmp)
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: Path, data: Any) -> Path:
    """``data`` as indented JSON (anything else as its ``str``), atomically."""
    text = json.dumps(data, indent=2, default=str) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
