"""SMTP TLS Reporting (RFC 8460 §3): the ``_smtp._tls.<domain>`` TXT record and its ``rua``.

A domain publishing it asks senders for daily reports of their TLS successes and failures (with the
result types in :class:`research.store.schema.TlsResult`), the feedback loop that makes switching
MTA-STS from ``testing`` to ``enforce`` safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from research.policy.txtrecord import select_record
from research.store.schema import RecordStatus

VERSION = "v=TLSRPTv1"
PREFIX = "_smtp._tls"
# rua = URI *(*WSP "," *WSP URI); a URI's own commas and semicolons must be %-encoded.
_RUA = re.compile(r"[\x21-\x2b\x2d-\x3a\x3c-\x7e]+(?:[ \t]*,[ \t]*[\x21-\x2b\x2d-\x3a\x3c-\x7e]+)*")


@dataclass(frozen=True)
class TlsRpt:
    status: RecordStatus
    records: list[str] = field(default_factory=list)
    rua: list[str] = field(default_factory=list)
    error: str | None = None

    def record(self) -> dict[str, Any]:
        """The ``tlsrpt`` table's columns (except ``domain``)."""
        return {"status": self.status.value, "records": self.records, "rua": self.rua,
                "error": self.error}


def valid_rua_uri(uri: str) -> bool:
    """A ``mailto:`` URI with an address, or an ``https:`` URI with a host (RFC 8460 §3)."""
    parts = urlsplit(uri)
    if parts.scheme.lower() == "mailto":
        local, at, domain = parts.path.partition("@")
        return bool(local and at and "." in domain)
    if parts.scheme.lower() == "https":
        return bool(parts.hostname)
    return False


def parse_tlsrpt(records: list[str]) -> TlsRpt:
    """Judge the TXT records found at ``_smtp._tls.<domain>``.

    ``none`` if no record starts with ``v=TLSRPTv1``, ``multiple`` if several do (RFC 8460:
    then the domain has no TLS-RPT), ``invalid`` if the one record breaks the grammar, lacks
    ``rua``, has it twice, or names a destination that is neither ``mailto:`` nor ``https:``.
    """
    chosen = select_record(records, VERSION, {"rua": _RUA})
    if chosen.status is not RecordStatus.VALID:
        return TlsRpt(chosen.status, records, error=chosen.error)
    ruas = [value for key, value in chosen.fields if key == "rua"]
    if not ruas:
        return TlsRpt(RecordStatus.INVALID, records, error="no rua field")
    if len(ruas) > 1:
        return TlsRpt(RecordStatus.INVALID, records, error="more than one rua field")
    uris = [u.strip() for u in ruas[0].split(",")]
    bad = [u for u in uris if not valid_rua_uri(u)]
    if bad:
        return TlsRpt(RecordStatus.INVALID, records,
                      error=f"rua {bad[0]!r} is not a mailto: or https: URI")
    return TlsRpt(RecordStatus.VALID, records, uris)
