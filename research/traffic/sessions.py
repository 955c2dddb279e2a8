"""The ``sessions`` table: one row per SMTP session seen in a mail server's logs or captures.

Rows are written in batches with :class:`pyarrow.parquet.ParquetWriter` as they are parsed, so
a multi-gigabyte log never sits in memory; the file is written beside its final name and
renamed into place when complete, like the survey's tables (readers never see half a table).
Columns are documented in :mod:`research.store.schema` (``SESSIONS``) and ``data/README.md``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from research.errors import ResultsError
from research.store.files import META_NAME
from research.store.frames import cast_table, make_table
from research.store.parquet import BatchWriter
from research.store.schema import VERSION_LABELS, Direction, column_names
from research.traffic.names import cipher_bits, iana_cipher, peer_domain

SESSIONS_FILE = "sessions.parquet"
BATCH_ROWS = 10_000
"""Rows buffered before a batch goes to the Parquet file (bounds the writer's memory)."""

Row = dict[str, Any]

MAX_OPEN = 10_000
"""Most processes tracked at once; the oldest is forgotten beyond this, so state stays bounded
however long the log (an MTA runs far fewer processes at a time: Postfix's default process
limit is 100)."""

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


@dataclass(frozen=True, slots=True)
class Tls:
    """What a log line says about a negotiated TLS session."""

    version: str | None
    cipher: str | None
    bits: int | None
    verification: str | None

    @classmethod
    def from_logged(cls, version: str, cipher: str, bits: str | int | None,
                    verification: str | None) -> Tls:
        label = version_label(version)
        name = iana_cipher(cipher, label)
        number = int(bits) if bits not in (None, "") else cipher_bits(name)
        return cls(label, name, number, verification)


@dataclass(frozen=True, slots=True)
class Peer:
    host: str | None
    ip: str | None
    port: int | None = None


def session_row(*, source: str, file: str, line: int, time: dt.datetime | None,
                direction: Direction | None, peer: Peer, tls: Tls | None,
                mail_domain: str | None = None, attempted: bool = False) -> Row:
    """One ``sessions`` row (see :data:`research.store.schema.SESSIONS`); ``attempted``: a STARTTLS
    whose handshake failed was logged."""
    return {
        "time": time, "source": source, "file": file, "line": line,
        "direction": direction.value if direction else None,
        "peer_host": peer.host, "peer_ip": peer.ip, "peer_port": peer.port,
        "peer_domain": peer_domain(peer.host), "mail_domain": mail_domain,
        "tls": tls is not None, "starttls_offered": None,
        "starttls_used": True if tls is not None or attempted else None,
        "tls_version": tls.version if tls else None, "cipher": tls.cipher if tls else None,
        "bits": tls.bits if tls else None, "verification": tls.verification if tls else None,
        "offered_versions": [], "offered_ciphers": [],
    }


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
        self._table = BatchWriter("sessions", self.out_dir / SESSIONS_FILE, batch_rows)
        self.path = self._table.path
        self.counts: dict[str, Counter[str]] = {"direction": Counter(), "tls_version": Counter(),
                                                "source": Counter()}

    @property
    def rows(self) -> int:
        return self._table.count

    def write(self, row: Row) -> None:
        self._table.add(row)
        for key, counter in self.counts.items():
            counter[str(row.get(key) or "none")] += 1

    def write_all(self, rows: Iterable[Row]) -> None:
        for row in rows:
            self.write(row)

    def close(self) -> Path:
        """Write what is buffered, close the file and move it into place."""
        return self._table.close()

    def abort(self) -> None:
        self._table.discard()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def sessions_frame(rows: Iterable[Row]) -> pd.DataFrame:
    """A ``sessions`` DataFrame (schema columns and dtypes) from rows held in memory."""
    return make_table("sessions", rows)


def cast_sessions(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly the ``sessions`` columns, in order, cast to their dtypes."""
    return cast_table("sessions", frame)


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
    missing = set(column_names("sessions")) - set(frame.columns)
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
