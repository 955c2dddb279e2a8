"""MTA-STS (RFC 8461): the ``_mta-sts`` TXT record, the HTTPS policy, and which MX hosts it covers.

A domain publishes a TXT record ``v=STSv1; id=...`` at ``_mta-sts.<domain>`` and a policy at
``https://mta-sts.<domain>/.well-known/mta-sts.txt``. A sender that honours it fetches the
policy (HTTP 200 only, redirects not followed, ``text/plain``, a certificate valid for
``mta-sts.<domain>``); in ``enforce`` mode it then delivers only to MX hosts that a policy ``mx``
pattern covers and that present a valid certificate for their name over STARTTLS. Any failure to
get a policy means "no policy", never "refuse": MTA-STS fails open until a policy was seen.

Network-free: :mod:`research.scan.policy_fetch` fetches the policy, :mod:`research.scan.lookups`
looks up the record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from research.policy.txtrecord import select_record
from research.store.schema import RecordStatus, StsMode

VERSION = "v=STSv1"
PREFIX = "_mta-sts"
POLICY_PATH = "/.well-known/mta-sts.txt"
HTTPS_PORT = 443
MAX_POLICY_BYTES = 64 * 1024
"""RFC 8461 §3.3: senders may refuse larger policies; this is the size they must accept."""
MAX_AGE_LIMIT = 31_557_600
"""RFC 8461 §3.2: ``max_age`` is at most about one year."""

_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_MX_PATTERN = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})+\.?")
_SINGLE = ("version", "mode", "max_age")
_MODES = frozenset(StsMode)


def policy_host(domain: str) -> str:
    return f"mta-sts.{domain}"


# --- the TXT record ------------------------------------------------------------------------

@dataclass(frozen=True)
class StsRecord:
    status: RecordStatus
    records: list[str] = field(default_factory=list)
    id: str | None = None
    error: str | None = None


def parse_sts_record(records: list[str]) -> StsRecord:
    """Judge the TXT records at ``_mta-sts.<domain>`` (RFC 8461 §3.1).

    Records whose first field is not ``v=STSv1`` are ignored; ``none`` if no record is left,
    ``multiple`` if several are (the RFC: then there is no policy), ``invalid`` if the one record
    breaks the grammar or has no ``id`` (1–32 letters and digits) or two of them.
    """
    chosen = select_record(records, VERSION)
    if chosen.status is not RecordStatus.VALID:
        return StsRecord(chosen.status, records, error=chosen.error)
    ids = [value for key, value in chosen.fields if key == "id"]
    if not ids:
        return StsRecord(RecordStatus.INVALID, records, error="no id field")
    if len(ids) > 1:
        return StsRecord(RecordStatus.INVALID, records, error="more than one id field")
    if not _ID.fullmatch(ids[0]):
        return StsRecord(RecordStatus.INVALID, records,
                         error=f"id {ids[0]!r} is not 1-32 letters and digits")
    return StsRecord(RecordStatus.VALID, records, ids[0])


# --- the policy ------------------------------------------------------------------------------

@dataclass(frozen=True)
class StsPolicy:
    valid: bool
    error: str | None = None
    mode: StsMode | None = None
    max_age: int | None = None
    mx: list[str] = field(default_factory=list)


def parse_policy(text: str) -> StsPolicy:
    """Parse a policy body (RFC 8461 §3.2): ``key: value`` lines ended by LF or CRLF.

    Valid when ``version: STSv1``, ``mode`` (enforce, testing, none) and ``max_age`` (up to 10
    digits, at most 31557600) each appear exactly once and, unless the mode is ``none``, at
    least one ``mx`` pattern (a host name, optionally ``*.`` then a name) does. Unknown keys are
    ignored, as the RFC requires; empty lines are skipped.
    """
    seen: dict[str, str] = {}
    mx: list[str] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        if not colon or not _KEY.fullmatch(key):
            return StsPolicy(False, f"line {number} is not 'key: value': {line[:60]!r}")
        value = value.strip(" \t")
        if key == "mx":
            if not _MX_PATTERN.fullmatch(value):
                return StsPolicy(False, f"mx {value!r} is not a host name pattern")
            mx.append(value.lower().rstrip("."))
        elif key in _SINGLE:
            if key in seen:
                return StsPolicy(False, f"{key} appears more than once")
            seen[key] = value
    missing = [k for k in _SINGLE if k not in seen]
    if missing:
        return StsPolicy(False, f"no {missing[0]} field")
    if seen["version"] != "STSv1":
        return StsPolicy(False, f"version {seen['version']!r} is not STSv1")
    if seen["mode"] not in _MODES:
        return StsPolicy(False, f"mode {seen['mode']!r} is not enforce, testing or none")
    mode = StsMode(seen["mode"])
    if not re.fullmatch(r"\d{1,10}", seen["max_age"]) or int(seen["max_age"]) > MAX_AGE_LIMIT:
        return StsPolicy(False, f"max_age {seen['max_age']!r} is not 0-{MAX_AGE_LIMIT}")
    if not mx and mode != StsMode.NONE:
        return StsPolicy(False, f"mode {mode} without an mx field")
    return StsPolicy(True, None, mode, int(seen["max_age"]), mx)


def mx_matches(pattern: str, host: str) -> bool:
    """Whether an ``mx`` pattern covers an MX host name (RFC 8461 §4.1).

    Case-insensitive; ``*.example.test`` covers exactly one more leftmost label
    (``mx.example.test``), not ``example.test`` nor ``a.mx.example.test``.
    """
    pattern = pattern.lower().rstrip(".")
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        suffix = pattern[1:]  # ".example.test"
        label = host[: -len(suffix)] if host.endswith(suffix) else ""
        return bool(label) and "." not in label
    return pattern == host


def not_covered(patterns: Iterable[str], mx_hosts: Iterable[str]) -> list[str]:
    """The MX hosts (in the order given) that no pattern covers."""
    patterns = list(patterns)
    return [h for h in mx_hosts if not any(mx_matches(p, h) for p in patterns)]
