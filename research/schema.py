"""The result tables' contract: every status, every table and every column, in one place.

The CLI, the notebooks and users all read the same four tables (``domains``, ``mx``, ``hosts``,
``ciphers``) plus a ``meta`` dict. This module is the single source of truth for their columns,
their pandas dtypes and what each means; ``data/README.md`` documents the same columns and a test
keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DnsStatus(StrEnum):
    """What DNS said about a domain's mail servers."""

    MX = "mx"
    """The domain has one or more MX records."""
    IMPLICIT_MX = "implicit_mx"
    """No MX, but the domain has A/AAAA records: RFC 5321 §5.1 says mail goes there."""
    NULL_MX = "null_mx"
    """The domain publishes RFC 7505 null MX (``MX 0 .``): it accepts no mail."""
    NO_MAIL = "no_mail"
    """The domain exists but has neither MX nor address records."""
    NXDOMAIN = "nxdomain"
    """The domain does not exist."""
    DNS_ERROR = "dns_error"
    """SERVFAIL, REFUSED or no answer after retries; the reason is in ``error``."""
    INVALID = "invalid"
    """The input is not a valid domain name; nothing was looked up."""
    OPTED_OUT = "opted_out"
    """The domain is on the survey's opt-out list; nothing was looked up or contacted."""


class HostStatus(StrEnum):
    """The outcome of probing one (MX host, IP address) target."""

    STARTTLS = "starttls"
    """STARTTLS offered and at least one TLS handshake succeeded."""
    NO_STARTTLS = "no_starttls"
    """SMTP fine, but STARTTLS not advertised in the EHLO reply."""
    STARTTLS_REJECTED = "starttls_rejected"
    """STARTTLS advertised, but the command was refused (e.g. 454)."""
    TLS_FAILED = "tls_failed"
    """STARTTLS accepted (220), but no TLS handshake succeeded."""
    SMTP_ERROR = "smtp_error"
    """A 4xx/5xx greeting or reply, or the server does not speak SMTP."""
    TIMEOUT = "timeout"
    """No connection or no answer within the timeout."""
    REFUSED = "refused"
    """TCP connection refused or reset."""
    UNRESOLVED = "unresolved"
    """The MX host name has no address (or is an IP literal), so there was nothing to connect
    to."""
    OPTED_OUT = "opted_out"
    """The MX host name or its address is on the survey's opt-out list; never contacted."""


@dataclass(frozen=True)
class TlsVersion:
    """A protocol version as it appears across the tables."""

    column: str
    """Boolean column in ``hosts``: accepted by the host?"""
    label: str
    """Human label, and the value of ``ciphers.tls_version``/``hosts.negotiated_version``."""
    rank: int
    """Order, oldest first; compare versions by this."""


TLS_VERSIONS: tuple[TlsVersion, ...] = (
    TlsVersion("ssl_2_0", "SSL 2.0", 0),
    TlsVersion("ssl_3_0", "SSL 3.0", 1),
    TlsVersion("tls_1_0", "TLS 1.0", 2),
    TlsVersion("tls_1_1", "TLS 1.1", 3),
    TlsVersion("tls_1_2", "TLS 1.2", 4),
    TlsVersion("tls_1_3", "TLS 1.3", 5),
)
VERSION_COLUMNS: tuple[str, ...] = tuple(v.column for v in TLS_VERSIONS)
VERSION_LABELS: tuple[str, ...] = tuple(v.label for v in TLS_VERSIONS)
VERSION_BY_LABEL: dict[str, TlsVersion] = {v.label: v for v in TLS_VERSIONS}
VERSION_BY_COLUMN: dict[str, TlsVersion] = {v.column: v for v in TLS_VERSIONS}


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    """pandas dtype the table is cast to (``object`` holds lists of strings)."""
    doc: str


def _cols(*specs: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


_STRING = "string"
_BOOL = "boolean"
_INT = "Int64"
_FLOAT = "Float64"
_TIME = "datetime64[us, UTC]"
_LIST = "object"

DOMAINS = _cols(
    ("domain", _STRING, "Normalised domain: lower case, no trailing dot, IDNA (punycode) "
     "A-labels. For invalid input, the input stripped of whitespace."),
    ("rank", _INT, "Position in the input list (the list's own `rank` column if it has one, "
     "else the 1-based line order)."),
    ("input", _STRING, "The domain exactly as given in the input."),
    ("dns_status", _STRING, "One of: " + ", ".join(s.value for s in DnsStatus) + "."),
    ("mx_count", _INT, "Number of MX hosts that mail would be sent to (implicit MX counts as 1; "
     "0 for null MX and failures)."),
    ("error", _STRING, "Why the lookup failed, the input is invalid or the domain was opted "
     "out; or what is wrong with records that were still used (a null MX among other MX, an MX "
     "target that is an alias); null when fine."),
)

MX = _cols(
    ("domain", _STRING, "Normalised domain (joins `domains.domain`)."),
    ("preference", _INT, "MX preference; lower is tried first. 0 for an implicit MX."),
    ("mx_host", _STRING, "MX host name, normalised (joins `hosts.mx_host`). For an implicit MX, "
     "the domain itself."),
)

HOSTS = _cols(
    ("mx_host", _STRING, "MX host name (joins `mx.mx_host`)."),
    ("ip", _STRING, "IP address scanned; null when the host is `unresolved`."),
    ("port", _INT, "TCP port scanned (25 in a live survey)."),
    ("status", _STRING, "One of: " + ", ".join(s.value for s in HostStatus) + "."),
    ("banner", _STRING, "The server's greeting (all lines, joined by newlines)."),
    ("ehlo_extensions", _LIST, "Extension keywords from the EHLO reply (upper case, e.g. "
     "`STARTTLS`, `SIZE`); list of strings, empty when EHLO failed."),
    ("starttls_offered", _BOOL, "Whether EHLO advertised STARTTLS; null if EHLO never answered."),
    ("ssl_2_0", _BOOL, "SSL 2.0 accepted; null where not measured."),
    ("ssl_3_0", _BOOL, "SSL 3.0 accepted; null where not measured."),
    ("tls_1_0", _BOOL, "TLS 1.0 accepted; null where not measured."),
    ("tls_1_1", _BOOL, "TLS 1.1 accepted; null where not measured."),
    ("tls_1_2", _BOOL, "TLS 1.2 accepted; null where not measured."),
    ("tls_1_3", _BOOL, "TLS 1.3 accepted; null where not measured."),
    ("min_version", _STRING, "Oldest accepted version label (e.g. `TLS 1.0`); null if none."),
    ("max_version", _STRING, "Newest accepted version label; null if none."),
    ("negotiated_version", _STRING, "Version a modern default client (Python's "
     "`ssl.create_default_context()`, OpenSSL defaults) negotiated after STARTTLS; null if that "
     "client could not complete a handshake."),
    ("negotiated_cipher", _STRING, "IANA name of the suite that client negotiated."),
    ("cert_subject", _STRING, "Leaf certificate subject (RFC 4514 string)."),
    ("cert_issuer", _STRING, "Leaf certificate issuer (RFC 4514 string)."),
    ("cert_sans", _LIST, "DNS names in the leaf's subjectAltName; list of strings."),
    ("cert_not_before", _TIME, "Leaf validity start (UTC)."),
    ("cert_not_after", _TIME, "Leaf validity end (UTC)."),
    ("cert_self_signed", _BOOL, "Leaf's issuer equals its subject."),
    ("cert_matches_mx", _BOOL, "Leaf is valid for the MX host name (RFC 6125 rules)."),
    ("cert_trusted_mozilla", _BOOL, "Chain validates for the MX host name against the Mozilla "
     "root store bundled with sslyze (a wrong name fails it too)."),
    ("cert_sha256", _STRING, "SHA-256 fingerprint of the leaf (hex)."),
    ("error", _STRING, "Why the probe or a TLS check failed, why the host was not contacted "
     "(`unresolved`, `opted_out`), or what was odd on the way (e.g. EHLO refused, HELO "
     "accepted); the server's reply is quoted where there was one. Null when fine."),
    ("scanned_at", _TIME, "When the probe of this host finished (UTC)."),
    ("duration_s", _FLOAT, "Wall time of the SMTP probe session, seconds (the TLS scan runs "
     "concurrently with other hosts' and is not included)."),
)

CIPHERS = _cols(
    ("mx_host", _STRING, "MX host name (joins `hosts`)."),
    ("ip", _STRING, "IP address (joins `hosts`)."),
    ("tls_version", _STRING, "Version label, e.g. `TLS 1.2`."),
    ("cipher", _STRING, "IANA cipher-suite name, e.g. `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`."),
    ("key_exchange", _STRING, "Key exchange: `ECDHE`, `DHE`, `RSA`, `ECDH`, `DH`, `PSK`, or for "
     "TLS 1.3 the negotiated group family (`ECDHE`/`DHE`)."),
    ("forward_secrecy", _BOOL, "Ephemeral key exchange (DHE/ECDHE; always true in TLS 1.3)."),
    ("aead", _BOOL, "AEAD bulk cipher (GCM, CCM, ChaCha20-Poly1305)."),
    ("anonymous", _BOOL, "No server authentication (`anon` suites)."),
    ("key_bits", _INT, "Symmetric key size in bits."),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "domains": DOMAINS,
    "mx": MX,
    "hosts": HOSTS,
    "ciphers": CIPHERS,
}

META_KEYS: dict[str, str] = {
    "started_at": "Scan start, ISO 8601 UTC.",
    "finished_at": "Scan end, ISO 8601 UTC; null if the last run did not finish.",
    "runs": "Number of runs that wrote the raw log (more than 1 after --resume).",
    "tool": "`starttls-survey` and its version.",
    "versions": "Versions of Python, sslyze, nassl, the OpenSSL builds nassl carries, "
    "dnspython, pandas, pyarrow.",
    "resolver": "DNS servers asked, as `IP:PORT` (the system's from /etc/resolv.conf when no "
    "--resolver was given).",
    "port": "SMTP port scanned.",
    "ehlo_name": "Name sent in EHLO.",
    "domain_list": "Where the domains came from (file path or `arguments`).",
    "domain_list_sha256": "SHA-256 of the domain list as read (file bytes, or the arguments "
    "joined by newlines).",
    "options": "Timeout, concurrency, resume and other scan options.",
    "counts": "Rows per table and hosts per status.",
    "smtp_port_blocked": "True when every host with an address (at least two) timed out or "
    "refused: outbound connections to `port` are probably blocked on the scanning network, so "
    "the host statuses describe that network, not the servers. False otherwise; null when "
    "fewer than two hosts had an address to try.",
}


def column_names(table: str) -> list[str]:
    return [c.name for c in TABLES[table]]


def dtypes(table: str) -> dict[str, str]:
    return {c.name: c.dtype for c in TABLES[table]}
