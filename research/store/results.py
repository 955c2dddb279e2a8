"""The result tables: build them from the raw log, cast them to the schema, save and load them.

``domains.parquet``, ``mx.parquet``, ``hosts.parquet``, ``ciphers.parquet``, the enforcement
tables (``certificates``, ``mta_sts``, ``tlsrpt``, ``dane``), ``addresses.parquet`` and
``meta.json`` are derived from ``raw.jsonl`` and can always be rebuilt from it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from research.errors import ResultsError
from research.store.datapackage import write_survey_package
from research.store.files import META_NAME, RAW_LOG_NAME, atomic_write, write_json
from research.store.frames import cast_table, make_table
from research.store.provenance import SURVEY_LIBRARIES, library_versions, tool_version
from research.store.rawlog import read_records
from research.store.records import (
    Record,
    RecordKind,
    address_key,
    address_order,
    domain_key,
    host_key,
)
from research.store.schema import (
    CONNECTION_FAILED,
    LATER_COLUMNS,
    LATER_TABLES,
    TABLES,
    HostStatus,
    column_names,
)

BLOCKED_MIN_HOSTS = 2
"""Hosts with an address needed before ``smtp_port_blocked`` gives a verdict: one dead host is
just a dead host."""


@dataclass
class SurveyResults:
    """One survey's tables (columns documented in :mod:`research.store.schema`) and its ``meta``
    dict."""

    domains: pd.DataFrame
    mx: pd.DataFrame
    hosts: pd.DataFrame
    ciphers: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    # The enforcement tables came later: surveys (and callers) without them get empty ones.
    certificates: pd.DataFrame = field(default_factory=lambda: make_table("certificates", []))
    mta_sts: pd.DataFrame = field(default_factory=lambda: make_table("mta_sts", []))
    tlsrpt: pd.DataFrame = field(default_factory=lambda: make_table("tlsrpt", []))
    dane: pd.DataFrame = field(default_factory=lambda: make_table("dane", []))
    addresses: pd.DataFrame = field(default_factory=lambda: make_table("addresses", []))

    def table(self, name: str) -> pd.DataFrame:
        frame: pd.DataFrame = getattr(self, name)
        return frame


def build_tables(records: Iterable[Record]) -> SurveyResults:
    """Every table and ``meta`` from raw-log records (later records win on repeats)."""
    domains: dict[tuple[int, str], Record] = {}
    hosts: dict[tuple[str, str | None], Record] = {}
    policies: dict[str, Record] = {}
    tlsa: dict[str, Record] = {}
    addresses: dict[tuple[str, int], Record] = {}
    starts: list[Record] = []
    finished_at = None
    for record in records:
        kind = record.get("kind")
        if kind == RecordKind.DOMAIN:
            domains[domain_key(record)] = record
        elif kind == RecordKind.HOST:
            hosts[host_key(record)] = record
        elif kind == RecordKind.POLICY:
            policies[record["domain"]] = record
        elif kind == RecordKind.TLSA:
            tlsa[record["mx_host"]] = record
        elif kind == RecordKind.ADDRESS_PROBE:
            addresses[address_key(record)] = record
        elif kind == RecordKind.START:
            starts.append(record)
        elif kind == RecordKind.FINISH:
            finished_at = record["finished_at"]

    domain_rows = sorted(domains.values(), key=lambda r: (r["rank"], r["input"]))
    for row in domain_rows:
        row["mx_count"] = len(row.get("mx") or [])
    mx_rows = [
        {"domain": r["domain"], "preference": pref, "mx_host": host}
        for r in domain_rows
        for pref, host in r.get("mx") or []
    ]
    host_rows = [hosts[key] for key in sorted(hosts)]
    cipher_rows = [
        {"mx_host": h["mx_host"], "ip": h["ip"], **c}
        for h in host_rows
        for c in h.get("ciphers") or []
    ]
    certificate_rows = [
        {"mx_host": h["mx_host"], "ip": h["ip"], **c}
        for h in host_rows
        for c in h.get("certificates") or []
    ]
    policy_rows = [policies[r["domain"]] for r in domain_rows if r["domain"] in policies]
    results = SurveyResults(
        domains=make_table("domains", domain_rows),
        mx=make_table("mx", mx_rows),
        hosts=make_table("hosts", host_rows),
        ciphers=make_table("ciphers", cipher_rows),
        certificates=make_table("certificates", certificate_rows),
        mta_sts=make_table("mta_sts", [{"domain": p["domain"], **(p.get("mta_sts") or {})}
                                       for p in policy_rows]),
        tlsrpt=make_table("tlsrpt", [{"domain": p["domain"], **(p.get("tlsrpt") or {})}
                                     for p in policy_rows]),
        dane=make_table("dane", _dane_rows(mx_rows, policies, tlsa)),
        addresses=make_table("addresses", sorted_addresses(addresses.values())),
    )
    results.meta = _meta(starts, finished_at, results)
    return results


def _dane_rows(mx_rows: list[Record], policies: dict[str, Record],
               tlsa: dict[str, Record]) -> list[Record]:
    """One row per (domain, MX host) of the domains whose policy lookups ran: the domain's MX
    RRset DNSSEC state beside the host's TLSA lookup (null if that never finished)."""
    rows = []
    for mx in mx_rows:
        policy = policies.get(mx["domain"])
        if policy is None:
            continue
        dnssec = policy.get("mx_dnssec") or {}
        found = tlsa.get(mx["mx_host"]) or {}
        rows.append({
            **{k: v for k, v in found.items() if k != "kind"},
            "domain": mx["domain"], "mx_host": mx["mx_host"],
            "mx_dnssec": dnssec.get("status"),
            "dnssec_method": found.get("dnssec_method") or dnssec.get("method"),
            "dnssec_error": "; ".join(e for e in (dnssec.get("error"), found.get("dnssec_error"))
                                      if e) or None,
        })
    return rows


def sorted_addresses(records: Iterable[Record]) -> list[Record]:
    """``addresses`` rows in table order: by port, then address."""
    return sorted(records, key=address_order)


def _meta(starts: list[Record], finished_at: str | None, results: SurveyResults) -> dict[str, Any]:
    return make_meta(starts, finished_at, {
        **{name: len(results.table(name)) for name in TABLES},
        "host_status": dict(Counter(results.hosts["status"].dropna())),
        "dns_status": dict(Counter(results.domains["dns_status"].dropna())),
        "sessions": int(results.addresses["sessions"].fillna(0).sum()),
    }, smtp_port_blocked(results.hosts))


def make_meta(starts: list[Record], finished_at: str | None, counts: dict[str, Any],
              port_blocked: bool | None) -> dict[str, Any]:
    """``meta`` from the raw log's start records, its finish time, the tables' ``counts`` (rows
    per table, ``host_status`` and ``dns_status`` tallies) and :func:`smtp_port_blocked`."""
    first = starts[0] if starts else {}
    last = starts[-1] if starts else {}
    options = dict(last.get("options") or {})
    return {
        "started_at": first.get("started_at"),
        "finished_at": finished_at,
        "runs": len(starts),
        "tool": tool_version(),
        "versions": library_versions(SURVEY_LIBRARIES, openssl=True),
        "resolver": last.get("resolver"),
        "port": options.get("port"),
        "ehlo_name": options.get("ehlo_name"),
        "domain_list": last.get("domain_list"),
        "domain_list_sha256": last.get("domain_list_sha256"),
        "domain_list_entries": last.get("domain_list_entries"),
        "domain_list_top": last.get("domain_list_top"),
        "domain_list_id": last.get("domain_list_id"),
        "domain_list_format": last.get("domain_list_format"),
        "options": options,
        "counts": counts,
        "smtp_port_blocked": port_blocked,
    }


class PortBlocked:
    """Whether the hosts look like a network that blocks outbound SMTP (see ``meta``), judged
    one host record at a time.

    DNS worked (the hosts have addresses), yet every one of them timed out or refused: a world
    without mail servers is less likely than a firewall between the scanner and all of them.
    """

    def __init__(self) -> None:
        self.tried = 0
        self.all_unreachable = True

    def add(self, row: Mapping[Any, Any]) -> None:
        """Count one ``hosts`` row or ``host`` record."""
        ip, status = row.get("ip"), row.get("status")
        if not isinstance(ip, str) or not isinstance(status, str):
            return  # unresolved, or not a finished probe
        if status == HostStatus.OPTED_OUT.value:
            return
        self.tried += 1
        self.all_unreachable &= status in CONNECTION_FAILED

    @property
    def verdict(self) -> bool | None:
        return None if self.tried < BLOCKED_MIN_HOSTS else self.all_unreachable


def smtp_port_blocked(hosts: pd.DataFrame) -> bool | None:
    """:class:`PortBlocked`'s verdict on a ``hosts`` table."""
    judge = PortBlocked()
    for row in hosts[["ip", "status"]].to_dict("records"):
        judge.add(row)
    return judge.verdict


def save_results(results: SurveyResults, out_dir: str | Path) -> Path:
    """Write every table as Parquet and ``meta.json`` into ``out_dir``, each atomically, and the
    Data Package that publishes them (``datapackage.json`` and the tables as CSV)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        frame = results.table(name)

        def write(path: Path, frame: pd.DataFrame = frame) -> None:
            frame.to_parquet(path, index=False)

        atomic_write(out / f"{name}.parquet", write)
    write_json(out / META_NAME, results.meta)
    write_survey_package(out, results.meta)
    return out


def load_results(path: str | Path) -> SurveyResults:
    """Load a survey from its output directory.

    Reads the Parquet tables and ``meta.json``; when they are missing but the raw log is there
    (the scan was interrupted), rebuilds the tables from the raw log instead. A directory
    written before a table or column was added (:data:`research.store.schema.LATER_TABLES`,
    :data:`research.store.schema.LATER_COLUMNS`) loads with that table empty, that column null.

    Raises:
        ResultsError: ``path`` is not a survey output directory, or a table cannot be read.
    """
    out = Path(path)
    if not out.is_dir():
        raise ResultsError(f"{out}: not a directory of survey results")
    files = [out / f"{name}.parquet" for name in TABLES if name not in LATER_TABLES]
    if all(f.exists() for f in files) and (out / META_NAME).exists():
        frames = {name: _read_table(name, out / f"{name}.parquet") for name in TABLES
                  if (out / f"{name}.parquet").exists() or name not in LATER_TABLES}
        meta = json.loads((out / META_NAME).read_text(encoding="utf-8"))
        return SurveyResults(**frames, meta=meta)
    if (out / RAW_LOG_NAME).exists():
        return build_tables(read_records(out / RAW_LOG_NAME))
    raise ResultsError(f"{out}: no survey tables or {RAW_LOG_NAME} here")


def _read_table(name: str, path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: cannot read table ({exc})") from None
    missing = set(column_names(name)) - set(frame.columns)
    for column in missing & LATER_COLUMNS.get(name, frozenset()):
        frame[column] = None
    missing -= LATER_COLUMNS.get(name, frozenset())
    if missing:
        raise ResultsError(f"{path}: missing columns {sorted(missing)}")
    return cast_table(name, frame)
