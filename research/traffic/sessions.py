"""The ``sessions`` table: one row per SMTP session seen in a mail server's logs or captures.

Rows are written in batches with :class:`pyarrow.parquet.ParquetWriter` as they are parsed, so
a multi-gigabyte log never sits in memory; the file is written beside its final name and
renamed into place when complete, like the survey's tables (readers never see half a table).
Columns are documented in :mod:`research.store.schema` (``SESSIONS``) and ``data/README.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from research.errors import ResultsError
from research.settings import META_NAME
from research.store.schema import SESSIONS, VERSION_LABELS, session_dtypes

SESSIONS_FILE = "sessions.parquet"
BATCH_ROWS = 10_000
"""Rows buffered before a batch goes to the Parquet file (bounds the writer's memory)."""

Row = dict[str, Any]

_ARROW_TYPES = {
    "string": pa.string(),
    "Int64": pa.int64(),
    "boolean": pa.bool_(),
    "Float64": pa.float64(),
    "datetime64[us, UTC]": pa.timestamp("us", tz="UTC"),
    "object": pa.list_(pa.string()),
}
ARROW_SCHEMA = pa.schema([pa.field(c.name, _ARROW_TYPES[c.dtype]) for c in SESSIONS])
COLUMNS: tuple[str, ...] = tuple(c.name for c in SESSIONS)


def version_label(text: str | None) -> str | None:
    """``TLSv1.2``/``TLS1.2``/``TLSv1``/``SSLv3`` (as OpenSSL, GnuTLS and MTAs log them) →
    ``TLS 1.2``/``TLS 1.2``/``TLS 1.0``/``SSL 3.0``; None for anything else."""
    if not text:
        return None
    t = text.strip().upper().replace("V", "").replace("_", ".")
    for proto in ("TLS", "SSL"):
        if t.startswith(proto):
            number = t[len(proto):].strip()
            if number.isdigit():
                number += ".0"
            label = f"{proto} {number}"
            return label if label in VERSION_LABELS else None
    return None


@dataclass
class InputStats:
    """What reading one input file produced (an entry of ``meta["inputs"]``)."""

    path: str
    kind: str
    compressed: bool = False
    lines: int = 0
    sessions: int = 0
    unparseable: int = 0
    sources: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "compressed": self.compressed,
                "lines": self.lines, "sessions": self.sessions,
                "unparseable": self.unparseable, "sources": dict(self.sources)}


class SessionWriter:
    """Writes session rows to ``DIR/sessions.parquet`` in batches; :meth:`close` publishes it.

    Use as a context manager; on an exception the partial file is removed and an earlier
    table in ``DIR`` stays as it was. Raises OSError if ``DIR`` cannot be written.
    """

    def __init__(self, out_dir: str | Path, batch_rows: int = BATCH_ROWS) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / SESSIONS_FILE
        fd, tmp = tempfile.mkstemp(dir=self.out_dir, prefix=f".{SESSIONS_FILE}.", suffix=".tmp")
        os.close(fd)
        self._tmp = Path(tmp)
        self._writer = pq.ParquetWriter(self._tmp, ARROW_SCHEMA)
        self._batch: list[Row] = []
        self._batch_rows = batch_rows
        self.rows = 0
        self.counts: dict[str, Counter[str]] = {"direction": Counter(), "tls_version": Counter(),
                                                "source": Counter()}

    def write(self, row: Row) -> None:
        self._batch.append(row)
        self.rows += 1
        for key, counter in self.counts.items():
            counter[str(row.get(key) or "none")] += 1
        if len(self._batch) >= self._batch_rows:
            self._flush()

    def write_all(self, rows: Iterable[Row]) -> None:
        for row in rows:
            self.write(row)

    def _flush(self) -> None:
        if self._batch:
            columns = {name: [r.get(name) for r in self._batch] for name in COLUMNS}
            for name in ("offered_versions", "offered_ciphers"):
                columns[name] = [list(v or []) for v in columns[name]]
            self._writer.write_table(pa.table(columns, schema=ARROW_SCHEMA))
            self._batch.clear()

    def close(self) -> Path:
        """Write what is buffered, close the file and move it into place."""
        self._flush()
        self._writer.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._writer.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_meta(out_dir: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``meta.json`` into ``out_dir`` atomically."""
    path = Path(out_dir) / META_NAME
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{META_NAME}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(meta, indent=2, default=str) + "\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def library_versions() -> dict[str, str | None]:
    import platform

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("pandas", "pyarrow", "dpkt"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def tool_version() -> dict[str, str | None]:
    try:
        version: str | None = metadata.version("starttls-survey")
    except metadata.PackageNotFoundError:
        version = None
    return {"name": "starttls-survey", "version": version}


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def sessions_frame(rows: Iterable[Row]) -> pd.DataFrame:
    """A ``sessions`` DataFrame (schema columns and dtypes) from rows held in memory."""
    table = pa.Table.from_pylist([{c: r.get(c) for c in COLUMNS} for r in rows],
                                 schema=ARROW_SCHEMA)
    return cast_sessions(table.to_pandas())


def cast_sessions(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly the ``sessions`` columns, in order, cast to their dtypes."""
    out = pd.DataFrame(index=frame.index)
    for name, dtype in session_dtypes().items():
        values = frame[name] if name in frame.columns else pd.Series(None, index=frame.index,
                                                                      dtype="object")
        if dtype == "object":
            out[name] = values.map(lambda v: [] if v is None or v is pd.NA else list(v))
        elif dtype.startswith("datetime"):
            out[name] = pd.to_datetime(values, utc=True).astype(
                pd.api.types.pandas_dtype(dtype))
        else:
            out[name] = values.astype(pd.api.types.pandas_dtype(dtype))
    return out.reset_index(drop=True)


def load_sessions(path: str | Path) -> pd.DataFrame:
    """The ``sessions`` table from a directory written by ``starttls-survey logs`` (or the
    Parquet file itself).

    Raises:
        ResultsError: no sessions table there, or it cannot be read.
    """
    p = Path(path)
    file = p / SESSIONS_FILE if p.is_dir() else p
    if not file.is_file():
        raise ResultsError(f"{p}: no {SESSIONS_FILE} here (run starttls-survey logs)")
    try:
        frame = pd.read_parquet(file)
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{file}: cannot read table ({exc})") from None
    missing = set(COLUMNS) - set(frame.columns)
    if missing:
        raise ResultsError(f"{file}: missing columns {sorted(missing)}")
    return cast_sessions(frame)


def load_sessions_meta(path: str | Path) -> dict[str, Any]:
    """``meta.json`` beside a sessions table; empty when there is none."""
    p = Path(path)
    meta = (p if p.is_dir() else p.parent) / META_NAME
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
