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
    """The MX host name has no address, so there was nothing to connect to."""


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
    ("error", _STRING, "Why the lookup failed or the input is invalid; null when fine."),
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
    ("error", _STRING, "Why the probe or a TLS check failed; null when fine."),
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
    "resolver": "Resolvers used (`system` or a list of `IP:PORT`).",
    "port": "SMTP port scanned.",
    "ehlo_name": "Name sent in EHLO.",
    "domain_list": "Where the domains came from (file path or `arguments`).",
    "domain_list_sha256": "SHA-256 of the domain list as read (file bytes, or the arguments "
    "joined by newlines).",
    "options": "Timeout, concurrency, resume and other scan options.",
    "counts": "Rows per table and hosts per status.",
}


def column_names(table: str) -> list[str]:
    return [c.name for c in TABLES[table]]


def dtypes(table: str) -> dict[str, str]:
    return {c.name: c.dtype for c in TABLES[table]}


# -- traffic observed on one's own mail server (research.logs, research.pcap) -------------------


class Direction(StrEnum):
    """Which side of a session the mail server whose log or capture was read is."""

    INBOUND = "inbound"
    """A peer connected to this server (Postfix ``smtpd``, Exim ``<=``, ``STARTTLS=server``)."""
    OUTBOUND = "outbound"
    """This server delivered to a peer (Postfix ``smtp``, Exim ``=>``, ``STARTTLS=client``)."""


class Verification(StrEnum):
    """How the peer's certificate fared, as the MTA logged it (normalised across MTAs)."""

    VERIFIED = "verified"
    """Chain and name verified (Postfix ``Verified``, Exim ``CV=yes``/``CV=dane``, Sendmail
    ``verify=OK``/``TRUSTED``)."""
    TRUSTED = "trusted"
    """Chain verified, name not checked (Postfix ``Trusted``)."""
    UNTRUSTED = "untrusted"
    """A certificate that did not verify (Postfix ``Untrusted``, Sendmail ``verify=FAIL`` and
    its other error values)."""
    UNVERIFIED = "unverified"
    """No certificate, or one that did not verify: the log does not tell which (Exim
    ``CV=no``)."""
    ANONYMOUS = "anonymous"
    """The peer presented no certificate (Postfix ``Anonymous``, Sendmail ``verify=NO``/``NOT``)."""


SESSIONS = _cols(
    ("time", _TIME, "When the session's TLS handshake (or, without TLS, the session) was logged "
     "or captured (UTC; syslog and Exim times are read in the zone given by `--timezone`)."),
    ("source", _STRING, "What the row was read from: `postfix`, `exim`, `sendmail` (log lines) "
     "or `pcap` (a packet capture)."),
    ("file", _STRING, "The input file."),
    ("line", _INT, "Line number (logs) or packet number (captures) the row was read at."),
    ("direction", _STRING, "One of: " + ", ".join(d.value for d in Direction) + "; null for a "
     "capture when neither end is a `--local-ip`."),
    ("peer_host", _STRING, "The peer's host name as logged; null when only its address is known "
     "(Postfix `unknown`, an address literal)."),
    ("peer_ip", _STRING, "The peer's IP address."),
    ("peer_port", _INT, "The peer's TCP port where known (outbound: the server's port)."),
    ("peer_domain", _STRING, "Registrable part of `peer_host` (`research.analysis.provider_of`): "
     "the peer's provider; null without a host name."),
    ("mail_domain", _STRING, "Outbound: the domain of the recipient whose delivery used this "
     "connection; null for inbound sessions and when no delivery line names it."),
    ("tls", _BOOL, "TLS was negotiated; false for a session seen in clear text."),
    ("starttls_offered", _BOOL, "Captures: the server's EHLO reply advertised STARTTLS; null "
     "from logs, and when the capture missed the EHLO reply."),
    ("starttls_used", _BOOL, "The client issued STARTTLS. Captures: as seen (true with a failed "
     "handshake too); logs: true for TLS sessions, null otherwise (a failed attempt is not told "
     "apart)."),
    ("tls_version", _STRING, "Negotiated protocol version label, e.g. `TLS 1.2`; null without "
     "TLS."),
    ("cipher", _STRING, "Negotiated cipher suite: its IANA name where the logged name maps to "
     "one (OpenSSL and GnuTLS names are translated), else as logged."),
    ("bits", _INT, "Symmetric key bits of the negotiated suite."),
    ("verification", _STRING, "Peer certificate check, one of: "
     + ", ".join(v.value for v in Verification) + "; null when not logged (captures)."),
    ("offered_versions", _LIST, "Captures: the versions the ClientHello offered (its "
     "supported_versions extension, else its legacy version), as labels; empty from logs."),
    ("offered_ciphers", _LIST, "Captures: the cipher suites the ClientHello offered (IANA "
     "names, GREASE values left out); empty from logs."),
)

SESSION_TABLES: dict[str, tuple[Column, ...]] = {"sessions": SESSIONS}
"""Tables written by ``starttls-survey logs`` (kept apart from :data:`TABLES`, the survey's)."""

SESSIONS_META_KEYS: dict[str, str] = {
    "created_at": "When the table was written, ISO 8601 UTC.",
    "tool": "`starttls-survey` and its version.",
    "versions": "Versions of Python and the libraries that read the inputs (pandas, pyarrow, "
    "dpkt).",
    "inputs": "One entry per input file: `path`, `kind` (`log`, `pcap`, `pcapng`), `compressed`, "
    "`lines` (log lines or packets read), `sessions`, `unparseable` (log lines that are not "
    "log lines of a known format, or TLS lines whose fields cannot be read) and `sources` "
    "(sessions per MTA).",
    "options": "`timezone`, `year` and `local_ips` as given.",
    "counts": "Rows of `sessions`, and sessions per direction, TLS version and source.",
}


def session_dtypes(table: str = "sessions") -> dict[str, str]:
    """pandas dtypes of a table of :data:`SESSION_TABLES`."""
    return {c.name: c.dtype for c in SESSION_TABLES[table]}
