"""The result tables written straight from the raw log, in batches, without holding them.

:func:`research.store.results.build_tables` builds every table in memory, which grows with the
survey: above all the per-host tables (``hosts``, ``ciphers``, ``certificates``), whose records
carry every accepted suite and certificate. A survey instead streams them: one pass over
``raw.jsonl`` remembers where the latest record of each host starts (a few dozen bytes per
host), a second pass reads them back in table order and writes each table to Parquet a batch of
rows at a time. The per-domain tables, whose records are small, are built by
:func:`build_tables` itself from every record but the hosts'. The files are the same tables
(same columns, order and dtypes once loaded) as :func:`research.store.results.save_results` writes
from :func:`build_tables`. :class:`StoredResults` then hands them out, read from disk on first
use, so the survey's peak memory does not depend on how many hosts it scanned.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from research.store.datapackage import write_survey_package
from research.store.files import META_NAME, write_json
from research.store.parquet import BatchWriter
from research.store.rawlog import parse_line, read_records
from research.store.records import Record, RecordKind, host_key, kind_marker
from research.store.results import (
    PortBlocked,
    SurveyResults,
    _read_table,
    build_tables,
    make_meta,
)
from research.store.schema import TABLES

_HOST_MARKER = kind_marker(RecordKind.HOST)
HOST_TABLES = ("hosts", "ciphers", "certificates")
"""The tables streamed from host records; the others come from :func:`build_tables`."""
_HOST_LISTS = {"ciphers": "ciphers", "certificates": "certificates"}
"""Table → the list in each host record that holds its rows."""

BATCH_ROWS = 500
"""Rows per written batch (a Parquet row group): what the writer holds at most, per table."""


class _Index:
    """Where in the raw log the latest record of each host starts."""

    def __init__(self, log_path: Path) -> None:
        self.hosts: dict[tuple[str, str | None], int] = {}
        with log_path.open("rb") as f:
            offset = 0
            for raw in f:
                at, offset = offset, offset + len(raw)
                # Cheap test first: only host records need parsing here.
                if _HOST_MARKER not in raw:
                    continue
                record = parse_line(raw)
                if record is not None and record.get("kind") == RecordKind.HOST:
                    self.hosts[host_key(record)] = at


def _records(log_path: Path, offsets: list[int]) -> Iterator[Record]:
    with log_path.open("rb") as f:
        for offset in offsets:
            f.seek(offset)
            record = parse_line(f.readline())
            assert record is not None, "the index only points at records that parsed"
            yield record


def write_tables(log_path: Path, out_dir: Path) -> StoredResults:
    """Write every table and ``meta.json`` from the raw log at ``log_path`` into ``out_dir``, and
    the Data Package (``datapackage.json`` and the tables as CSV) that publishes them.

    Each file is replaced atomically; memory stays flat however long the log. Returns the
    results, whose tables are read from the files on first use. Raises OSError if the log
    cannot be read or the directory written.
    """
    index = _Index(log_path)
    small = build_tables(r for r in read_records(log_path) if r.get("kind") != RecordKind.HOST)
    writers = {name: BatchWriter(name, out_dir / f"{name}.parquet", BATCH_ROWS)
               for name in TABLES}
    host_status: Counter[str] = Counter()
    blocked = PortBlocked()
    try:
        for name in TABLES:
            if name not in HOST_TABLES:
                writers[name].add_frame(small.table(name))
        host_keys = sorted(index.hosts, key=lambda k: (k[0], k[1] or ""))
        for record in _records(log_path, [index.hosts[k] for k in host_keys]):
            # Without its suites and certificates a host row is small, so a batch of them is.
            lists = {name: record.pop(key, None) or [] for name, key in _HOST_LISTS.items()}
            writers["hosts"].add(record)
            if record.get("status") is not None:
                host_status[record["status"]] += 1
            blocked.add(record)
            for name, rows in lists.items():
                for row in rows:
                    writers[name].add({"mx_host": record["mx_host"], "ip": record["ip"], **row})
        for writer in writers.values():
            writer.close()
    except BaseException:
        for writer in writers.values():
            writer.discard()
        raise
    counts: dict[str, Any] = {name: writers[name].count for name in TABLES}
    counts.update(host_status=dict(host_status),
                  dns_status=dict(Counter(small.domains["dns_status"].dropna())),
                  sessions=int(small.addresses["sessions"].fillna(0).sum()))
    starts = [r for r in read_records(log_path) if r.get("kind") == RecordKind.START]
    meta = make_meta(starts, small.meta["finished_at"], counts, blocked.verdict)
    path = write_json(out_dir / META_NAME, meta)
    write_survey_package(out_dir, meta)
    return StoredResults(out_dir, json.loads(path.read_text(encoding="utf-8")))


class StoredResults(SurveyResults):
    """:class:`SurveyResults` whose tables stay in their Parquet files until first used."""

    def __init__(self, out_dir: Path, meta: dict[str, Any]) -> None:
        # The table attributes are left unset on purpose: __getattr__ loads each on first use.
        self._out_dir = out_dir
        self.meta = meta

    def __getattr__(self, name: str) -> pd.DataFrame:
        if name in TABLES:
            frame = _read_table(name, self._out_dir / f"{name}.parquet")
            setattr(self, name, frame)
            return frame
        raise AttributeError(name)
