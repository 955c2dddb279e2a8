"""The raw log's records: one JSON object for each finished piece of work, of one kind each.

The runner (:mod:`research.scan.survey`) appends them as work finishes; the tables
(:mod:`research.store.tables`, :mod:`research.store.results`) are built from them, later records
winning over earlier ones with the same key; ``--resume`` reads them to skip what is done.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from research.store.schema import HostStatus

Record = dict[str, Any]


class RecordKind(StrEnum):
    """What a record holds (its ``kind`` key)."""

    START = "start"
    """A run began: the domain list, its checksum, the settings and the resolver."""
    DOMAIN = "domain"
    """One entry of the domain list and its MX lookup: a ``domains`` row and its ``mx`` rows.
    Keyed by (``rank``, ``input``)."""
    ADDRESSES = "addresses"
    """An MX host name's address lookup. Keyed by ``mx_host``."""
    HOST = "host"
    """One (MX host, IP) probed, or not contacted (``unresolved``, ``opted_out``): a ``hosts``
    row with its ``ciphers`` and ``certificates`` rows. Keyed by (``mx_host``, ``ip``)."""
    ADDRESS_PROBE = "address_probe"
    """One address (IP, port) probed for its MX names: what it cost and what its limits were
    learned to be, an ``addresses`` row; written after the address's ``host`` records, or with
    ``finished`` false by an interrupted survey, whose ``--resume`` starts from it. Keyed by
    (``ip``, ``port``)."""
    POLICY = "policy"
    """A domain's MTA-STS, TLS-RPT and MX DNSSEC lookups: its ``mta_sts`` and ``tlsrpt`` rows,
    and the domain's half of its ``dane`` rows. Keyed by ``domain``."""
    TLSA = "tlsa"
    """An MX host's TLSA lookup: the host's half of its ``dane`` rows. Keyed by ``mx_host``."""
    FINISH = "finish"
    """A run finished every piece of work."""


def domain_key(record: Record) -> tuple[int, str]:
    return record["rank"], record["input"]


def host_key(record: Record) -> tuple[str, str]:
    """(MX host, IP), with "" for a name without an address: a key that sorts in table order and
    is text in every part (:mod:`research.store.diskmap` keeps such keys)."""
    return record["mx_host"], record.get("ip") or ""


def address_key(record: Record) -> tuple[str, int]:
    return record["ip"], record["port"]


def address_order(record: Record) -> tuple[int, str]:
    """(port, IP): the ``addresses`` table's order, as a key :mod:`research.store.diskmap`
    keeps."""
    return record["port"], record["ip"]


def now() -> str:
    """The time a record is stamped with: ISO 8601, UTC."""
    return datetime.now(UTC).isoformat()


def not_contacted(mx_host: str, ip: str | None, port: int, status: HostStatus,
                  error: str) -> Record:
    """The ``host`` record of a target that was never contacted (``unresolved``, ``opted_out``)."""
    return {"kind": RecordKind.HOST.value, "mx_host": mx_host, "ip": ip, "port": port,
            "status": status.value, "error": error, "ehlo_extensions": [], "cert_sans": [],
            "ciphers": [], "scanned_at": now()}
