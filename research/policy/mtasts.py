"""MTA-STS (RFC 8461): the ``_mta-sts`` TXT record, the HTTPS policy, and which MX hosts it covers.

A domain publishes a TXT record ``v=STSv1; id=...`` at ``_mta-sts.<domain>`` and a policy at
``https://mta-sts.<domain>/.well-known/mta-sts.txt``. A sender that honours it fetches the
policy (HTTP 200 only, redirects not followed, ``text/plain``, a certificate valid for
``mta-sts.<domain>``); in ``enforce`` mode it then delivers only to MX hosts that a policy ``mx``
pattern covers and that present a valid certificate for their name over STARTTLS. Any failure to
get a policy means "no policy", never "refuse": MTA-STS fails open until a policy was seen.

The parsers are network-free; :func:`fetch_policy` talks HTTPS (standard library only) to the
address the injected resolver gives for the policy host, on an injectable port, trusting the
Mozilla roots plus an injectable CA file.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dns.resolver

from research.policy.pki import mozilla_roots_path
from research.policy.txtrecord import lookup_txt, select_record
from research.scan import resolver as mxdns
from research.settings import DEFAULT_TIMEOUT
from research.store.schema import FetchStatus, RecordStatus, TlsResult

VERSION = "v=STSv1"
PREFIX = "_mta-sts"
POLICY_PATH = "/.well-known/mta-sts.txt"
HTTPS_PORT = 443
MAX_POLICY_BYTES = 64 * 1024
"""RFC 8461 §3.3: senders may refuse larger policies; this is the size they must accept."""
MAX_AGE_LIMIT = 31_557_600
"""RFC 8461 §3.2: ``max_age`` is at most about one year."""
MODES = ("enforce", "testing", "none")
USER_AGENT = "starttls-survey (MTA-STS policy check)"

_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_MX_PATTERN = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})+\.?")
_SINGLE = ("version", "mode", "max_age")


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
    mode: str | None = None
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
    mode = seen["mode"]
    if mode not in MODES:
        return StsPolicy(False, f"mode {mode!r} is not enforce, testing or none")
    if not re.fullmatch(r"\d{1,10}", seen["max_age"]) or int(seen["max_age"]) > MAX_AGE_LIMIT:
        return StsPolicy(False, f"max_age {seen['max_age']!r} is not 0-{MAX_AGE_LIMIT}")
    if not mx and mode != "none":
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


# --- fetching --------------------------------------------------------------------------------

@dataclass
class PolicyFetch:
    host: str
    status: FetchStatus
    ip: str | None = None
    http_status: int | None = None
    content_type: str | None = None
    body: str | None = None
    error: str | None = None


def tls_context(trust_ca: str | Path | None = None) -> ssl.SSLContext:
    """What a sender fetching a policy trusts: the Mozilla roots, plus ``trust_ca`` if given.

    Certificate and host name checks are on (Python's defaults). Raises OSError or
    ssl.SSLError if ``trust_ca`` cannot be loaded.
    """
    context = ssl.create_default_context(cafile=str(mozilla_roots_path()))
    if trust_ca is not None:
        context.load_verify_locations(cafile=str(trust_ca))
    return context


def fetch_policy(
    domain: str,
    *,
    resolver: dns.resolver.Resolver | None = None,
    port: int = HTTPS_PORT,
    context: ssl.SSLContext | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> PolicyFetch:
    """GET ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` as RFC 8461 §3.3 says.

    The policy host is resolved with ``resolver`` and its addresses tried in order until one
    accepts the connection. ``context`` defaults to :func:`tls_context` (Mozilla roots).
    Never raises for network or server failures: ``status`` and ``error`` say what happened.
    """
    host = policy_host(domain)
    context = context or tls_context()
    found = mxdns.resolve_addresses(host, resolver=resolver)
    if not found.addresses:
        return PolicyFetch(host, FetchStatus.NO_ADDRESS, error=found.error or "no address")
    sock: socket.socket | None = None
    ip = None
    errors = []
    for ip in found.addresses:
        try:
            sock = socket.create_connection((ip, port), timeout=timeout)
            break
        except TimeoutError:
            errors.append(f"{ip}: timed out")
        except OSError as exc:
            errors.append(f"{ip}: {exc.strerror or exc}")
    if sock is None:
        status = (FetchStatus.TIMEOUT if all(e.endswith("timed out") for e in errors)
                  else FetchStatus.CONNECT_FAILED)
        return PolicyFetch(host, status, ip, error="; ".join(errors))
    try:
        return _get(host, ip, sock, context, timeout)
    finally:
        sock.close()


def _get(host: str, ip: str | None, sock: socket.socket, context: ssl.SSLContext,
         timeout: float) -> PolicyFetch:
    try:
        tls = context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        return PolicyFetch(host, FetchStatus.CERTIFICATE_INVALID, ip,
                           error=exc.verify_message or str(exc))
    except TimeoutError:
        return PolicyFetch(host, FetchStatus.TIMEOUT, ip, error="TLS handshake timed out")
    except (ssl.SSLError, OSError) as exc:
        return PolicyFetch(host, FetchStatus.TLS_FAILED, ip, error=str(exc))
    connection = http.client.HTTPConnection(host, timeout=timeout)
    connection.sock = tls  # already connected and verified; http.client only speaks HTTP on it
    try:
        connection.request("GET", POLICY_PATH, headers={
            "Host": host, "User-Agent": USER_AGENT, "Accept": "text/plain",
            "Connection": "close"})
        response = connection.getresponse()
        body = response.read(MAX_POLICY_BYTES + 1)
    except TimeoutError:
        return PolicyFetch(host, FetchStatus.TIMEOUT, ip, error="HTTP answer timed out")
    except (http.client.HTTPException, OSError) as exc:
        return PolicyFetch(host, FetchStatus.PROTOCOL_ERROR, ip,
                           error=f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()
    content_type = response.getheader("Content-Type")
    fetched = PolicyFetch(host, FetchStatus.OK, ip, response.status, content_type)
    if 300 <= response.status < 400:
        fetched.status = FetchStatus.REDIRECT
        fetched.error = f"HTTP {response.status} to {response.getheader('Location') or '?'}"
    elif response.status != 200:
        fetched.status = FetchStatus.HTTP_ERROR
        fetched.error = f"HTTP {response.status} {response.reason}"
    elif _media_type(content_type) != "text/plain":
        fetched.status = FetchStatus.CONTENT_TYPE
        fetched.error = f"Content-Type {content_type or 'missing'}, not text/plain"
    elif len(body) > MAX_POLICY_BYTES:
        fetched.status = FetchStatus.TOO_LARGE
        fetched.error = f"policy larger than {MAX_POLICY_BYTES} bytes"
    fetched.body = body[:MAX_POLICY_BYTES].decode("utf-8", "replace")
    return fetched


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


# --- the whole check -------------------------------------------------------------------------

def check_mta_sts(
    domain: str,
    mx_hosts: Iterable[str],
    *,
    resolver: dns.resolver.Resolver,
    port: int = HTTPS_PORT,
    context: ssl.SSLContext | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """The ``mta_sts`` table's columns (except ``domain``) for ``domain`` with ``mx_hosts``.

    The policy is fetched only when the TXT record is valid, as a sender would. Never raises
    for DNS, network or server failures.
    """
    found = lookup_txt(f"{PREFIX}.{domain}", resolver)
    row: dict[str, Any] = {"policy_host": policy_host(domain), "mx_not_covered": [],
                           "mx_patterns": [], "fetch_status": FetchStatus.NOT_FETCHED.value}
    if found.error:
        record = StsRecord(RecordStatus.DNS_ERROR, error=found.error)
    else:
        record = parse_sts_record(found.records)
    row.update(txt_status=record.status.value, txt_records=found.records, txt_id=record.id,
               txt_error=record.error)
    if record.status is RecordStatus.VALID:
        fetched = fetch_policy(domain, resolver=resolver, port=port, context=context,
                               timeout=timeout)
        row.update(policy_ip=fetched.ip, fetch_status=fetched.status.value,
                   http_status=fetched.http_status, content_type=fetched.content_type,
                   fetch_error=fetched.error, policy_text=fetched.body)
        if fetched.status is FetchStatus.CERTIFICATE_INVALID:
            row["policy_result"] = TlsResult.STS_WEBPKI_INVALID.value
        elif fetched.status is not FetchStatus.OK:
            row["policy_result"] = TlsResult.STS_POLICY_FETCH_ERROR.value
        else:
            policy = parse_policy(fetched.body or "")
            row.update(policy_status="valid" if policy.valid else "invalid",
                       policy_error=policy.error, mode=policy.mode, max_age=policy.max_age,
                       mx_patterns=policy.mx)
            if policy.valid and policy.mode != "none":
                # Mode none withdraws the policy: it covers nothing and refuses nothing.
                row["mx_not_covered"] = not_covered(policy.mx, mx_hosts)
            elif not policy.valid:
                row["policy_result"] = TlsResult.STS_POLICY_INVALID.value
    row["checked_at"] = datetime.now(UTC).isoformat()
    return row
