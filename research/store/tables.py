"""The result tables written straight from the raw log, in batches, without holding them.

:func:`research.store.results.build_tables` builds every table in memory, which grows with the
survey: the per-host tables (``hosts``, ``ciphers``, ``certificates``), whose records carry
every accepted suite and certificate, and the per-domain tables, one row or more per domain of
the list. A survey instead streams them: one pass over ``raw.jsonl`` notes where the latest
record of each domain, host, address probe, policy and TLSA lookup starts, in an index on disk
(:mod:`research.store.diskmap`); a second pass reads them back in table order and writes each
table to Parquet a bounded row group at a time. The files are the same tables (same columns,
order and dtypes once loaded) as :func:`research.store.results.save_results` writes from
:func:`build_tables`. :class:`StoredResults` then hands them out, read from disk on first use,
so the survey's peak memory does not grow with the list or with how many hosts it scanned.
"""

from __future__ import annotations

import json
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd

from research.store.datapackage import write_survey_package
from research.store.diskmap import DiskMap
from research.store.files import META_NAME, write_json
from research.store.parquet import BatchWriter, system_memory
from research.store.rawlog import parse_line
from research.store.records import Record, RecordKind, address_order, domain_key, host_key
from research.store.results import (
    PortBlocked,
    SurveyResults,
    _dane_rows,
    _read_table,
    make_meta,
)
from research.store.schema import TABLES

DOMAIN_TABLES = ("domains", "mx", "mta_sts", "tlsrpt", "dane")
"""The tables written from domain records, with each domain's policy and its MX names' TLSA
records (:func:`_add_domain`)."""
HOST_TABLES = ("hosts", "ciphers", "certificates")
"""The tables streamed from host records; ``addresses`` comes from the address probes."""
assert set(TABLES) == {*DOMAIN_TABLES, *HOST_TABLES, "addresses"}, "every table has its part"
_HOST_LISTS = {"ciphers": "ciphers", "certificates": "certificates"}
"""Table → the list in each host record that holds its rows."""

BATCH_ROWS = 500
"""Rows turned into Arrow data at a time, per table (gathered into row groups by size,
:data:`research.store.parquet.ROW_GROUP_BYTES`)."""

class _Index:
    """Where in the raw log the latest record of each domain, host, address probe, policy and
    TLSA lookup starts (on disk, :class:`DiskMap`: they grow with the list), and the start
    records themselves."""

    def __init__(self, log_path: Path) -> None:
        self.domains: DiskMap[int] = DiskMap(int, str)
        self.hosts: DiskMap[int] = DiskMap(str, str)
        self.addresses: DiskMap[int] = DiskMap(int, str)
        """:func:`address_order` → offset."""
        self.policies: DiskMap[int] = DiskMap(str)
        self.tlsa: DiskMap[int] = DiskMap(str)
        self.starts: list[Record] = []
        self.finished_at: str | None = None
        with (log_path.open("rb") as f, self.domains.bulk(), self.hosts.bulk(),
              self.addresses.bulk(), self.policies.bulk(), self.tlsa.bulk()):
            offset = 0
            for raw in f:
                at, offset = offset, offset + len(raw)
                record = parse_line(raw)
                if record is None:
                    continue
                kind = record.get("kind")
                if kind == RecordKind.HOST:
                    self.hosts[host_key(record)] = at
                elif kind == RecordKind.DOMAIN:
                    self.domains[domain_key(record)] = at
                elif kind == RecordKind.POLICY:
                    self.policies[record["domain"]] = at
                elif kind == RecordKind.TLSA:
                    self.tlsa[record["mx_host"]] = at
                elif kind == RecordKind.ADDRESS_PROBE:
                    self.addresses[address_order(record)] = at
                elif kind == RecordKind.START:
                    self.starts.append(record)
                elif kind == RecordKind.FINISH:
                    self.finished_at = record["finished_at"]

    def close(self) -> None:
        for index in (self.domains, self.hosts, self.addresses, self.policies, self.tlsa):
            index.close()


class _Reader:
    """Records read back from the raw log by where they start."""

    def __init__(self, log_path: Path) -> None:
        self._file = log_path.open("rb")

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def at(self, offset: int) -> Record:
        self._file.seek(offset)
        record = parse_line(self._file.readline())
        assert record is not None, "the index only points at records that parsed"
        return record


def write_tables(log_path: Path, out_dir: Path) -> StoredResults:
    """Write every table and ``meta.json`` from the raw log at ``log_path`` into ``out_dir``, and
    the Data Package (``datapackage.json`` and the tables as CSV) that publishes them.

    Each file is replaced atomically; memory stays flat however long the log: one pass over the
    log notes where the latest record of each domain, host, address probe, policy and TLSA
    lookup starts (on disk), a second reads them back in table order, a batch of rows at a
    time. The tables are those :func:`build_tables` builds in memory. Returns the results,
    whose tables are read from the files on first use. Raises OSError if the log cannot be
    read or the directory written.
    """
    with system_memory():
        return _write_tables(log_path, out_dir)


def _write_tables(log_path: Path, out_dir: Path) -> StoredResults:
    with closing(_Index(log_path)) as index:
        return _write_indexed(log_path, out_dir, index)


def _write_indexed(log_path: Path, out_dir: Path, index: _Index) -> StoredResults:
    writers = {name: BatchWriter(name, out_dir / f"{name}.parquet", BATCH_ROWS)
               for name in TABLES}
    host_status: Counter[str] = Counter()
    dns_status: Counter[str] = Counter()
    blocked = PortBlocked()
    sessions = 0
    try:
        with _Reader(log_path) as reader:
            for _, at in index.domains.items():
                _add_domain(reader.at(at), index, reader, writers, dns_status)
            # Each part's tables are written out as it ends, not held while the next is read.
            _flush(writers, DOMAIN_TABLES)
            for _, at in index.hosts.items():
                record = reader.at(at)
                # Without its suites and certificates a host row is small, so a batch of them is.
                lists = {name: record.pop(key, None) or [] for name, key in _HOST_LISTS.items()}
                writers["hosts"].add(record)
                if record.get("status") is not None:
                    host_status[record["status"]] += 1
                blocked.add(record)
                for name, rows in lists.items():
                    for row in rows:
                        writers[name].add({"mx_host": record["mx_host"], "ip": record["ip"],
                                           **row})
            _flush(writers, HOST_TABLES)
            for _, at in index.addresses.items():
                record = reader.at(at)
                writers["addresses"].add(record)
                sessions += record.get("sessions") or 0
        for writer in writers.values():
            writer.close()
    except BaseException:
        for writer in writers.values():
            writer.discard()
        raise
    counts: dict[str, Any] = {name: writers[name].count for name in TABLES}
    counts.update(host_status=dict(host_status), dns_status=dict(dns_status),
                  sessions=sessions)
    meta = make_meta(index.starts, index.finished_at, counts, blocked.verdict)
    path = write_json(out_dir / META_NAME, meta)
    write_survey_package(out_dir, meta)
    return StoredResults(out_dir, json.loads(path.read_text(encoding="utf-8")))


def _flush(writers: dict[str, BatchWriter], names: tuple[str, ...]) -> None:
    for name in names:
        writers[name].flush()


def _add_domain(record: Record, index: _Index, reader: _Reader,
                writers: dict[str, BatchWriter], dns_status: Counter[str]) -> None:
    """A domain's rows: its own, its MX rows, and its policy and DANE rows if its lookups
    ran (the rows :func:`build_tables` makes of it)."""
    record["mx_count"] = len(record.get("mx") or [])
    writers["domains"].add(record)
    if record.get("dns_status") is not None:
        dns_status[record["dns_status"]] += 1
    mx_rows = [{"domain": record["domain"], "preference": pref, "mx_host": host}
               for pref, host in record.get("mx") or []]
    for row in mx_rows:
        writers["mx"].add(row)
    at = index.policies.get(record["domain"])
    if at is None:
        return
    policy = reader.at(at)
    writers["mta_sts"].add({"domain": policy["domain"], **(policy.get("mta_sts") or {})})
    writers["tlsrpt"].add({"domain": policy["domain"], **(policy.get("tlsrpt") or {})})
    tlsa = {row["mx_host"]: reader.at(at) for row in mx_rows
            if (at := index.tlsa.get(row["mx_host"])) is not None}
    for row in _dane_rows(mx_rows, {policy["domain"]: policy}, tlsa):
        writers["dane"].add(row)


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
