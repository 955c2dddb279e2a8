"""The result tables' contract: every status, every table and every column, in one place.

The CLI, the notebooks and users all read the same tables (``domains``, ``mx``, ``hosts``,
``ciphers``, and for certificates and enforcement ``certificates``, ``mta_sts``, ``tlsrpt``,
``dane``) plus a ``meta`` dict. This module is the single source of truth for their columns,
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


MAIL_DNS_STATUSES: frozenset[DnsStatus] = frozenset({DnsStatus.MX, DnsStatus.IMPLICIT_MX})
"""A domain that receives mail at MX hosts, named (``mx``) or implicit (``implicit_mx``)."""

CONNECTION_FAILED: frozenset[HostStatus] = frozenset({HostStatus.TIMEOUT, HostStatus.REFUSED})
"""No TCP connection could be had, or kept: the host's doing or the network's (a whole survey
of them is how ``meta.smtp_port_blocked`` recognises a blocked port)."""
NO_SMTP_SESSION: frozenset[HostStatus] = CONNECTION_FAILED | {HostStatus.UNRESOLVED,
                                                              HostStatus.SMTP_ERROR}
"""No SMTP conversation took place (nothing to connect to, no connection, or no greeting or
EHLO worth the name): a sender moves on to the next MX host, and there is no certificate
verdict (``webpki_result`` null)."""
NOT_REACHED: frozenset[HostStatus] = NO_SMTP_SESSION | {HostStatus.OPTED_OUT}
"""Nothing is known of the host's TLS: no SMTP session, or never contacted (opted out). The
analysis counts these as not reached."""
STARTTLS_UNAVAILABLE: frozenset[HostStatus] = frozenset({HostStatus.NO_STARTTLS,
                                                         HostStatus.STARTTLS_REJECTED})
"""An SMTP session took place but STARTTLS could not be begun (RFC 8460:
``starttls-not-supported``)."""


class TlsResult(StrEnum):
    """How a TLS session to a mail server would end for a sender that authenticates it.

    Except ``ok``, the values are RFC 8460 (SMTP TLS Reporting) §4.3 result types, so results
    read like a TLS-RPT report.
    """

    OK = "ok"
    """Not an RFC 8460 type: the session would succeed."""
    STARTTLS_NOT_SUPPORTED = "starttls-not-supported"
    """The host does not advertise STARTTLS, or refuses the command."""
    CERTIFICATE_HOST_MISMATCH = "certificate-host-mismatch"
    """The certificate is not valid for the MX host name (RFC 6125 rules)."""
    CERTIFICATE_EXPIRED = "certificate-expired"
    """Expired or not yet valid (RFC 8460 uses the one type for both)."""
    CERTIFICATE_NOT_TRUSTED = "certificate-not-trusted"
    """The chain leads to no root of the trust store (self-signed, an unknown CA)."""
    VALIDATION_FAILURE = "validation-failure"
    """Any other failure: a TLS handshake that fails, a chain that breaks WebPKI rules."""
    TLSA_INVALID = "tlsa-invalid"
    """DANE: the presented chain matches none of the usable TLSA records."""
    DNSSEC_INVALID = "dnssec-invalid"
    """DANE: the MX or TLSA records fail DNSSEC validation (a failed TLSA lookup under a
    secure MX RRset counts as such)."""
    DANE_REQUIRED = "dane-required"
    """DANE: the sender requires DANE, but the MX host has no DNSSEC-validated TLSA records
    (not produced by the analysis, which models senders that apply DANE where it is
    published)."""
    STS_POLICY_FETCH_ERROR = "sts-policy-fetch-error"
    """MTA-STS: a valid record, but the policy could not be fetched (RFC 8461 §3.3)."""
    STS_POLICY_INVALID = "sts-policy-invalid"
    """MTA-STS: the fetched policy breaks the RFC 8461 §3.2 syntax."""
    STS_WEBPKI_INVALID = "sts-webpki-invalid"
    """MTA-STS: the policy host's certificate is not valid (untrusted, expired, wrong name)."""


WEBPKI_FAILURES: tuple[TlsResult, ...] = (
    TlsResult.STARTTLS_NOT_SUPPORTED, TlsResult.CERTIFICATE_NOT_TRUSTED,
    TlsResult.CERTIFICATE_EXPIRED, TlsResult.CERTIFICATE_HOST_MISMATCH,
    TlsResult.VALIDATION_FAILURE)
"""How a sender requiring authenticated TLS to the MX host name (RFC 8461 §4.1) can fail: the
values of ``hosts.webpki_result`` besides ``ok``, most basic first (an MX host whose IPs fail
in several ways reports the first)."""


class RecordStatus(StrEnum):
    """What DNS said about a policy TXT record (``_mta-sts`` or ``_smtp._tls``)."""

    NONE = "none"
    """No record of this kind (no TXT record starting with the version tag)."""
    VALID = "valid"
    """Exactly one record of this kind, and it keeps the syntax."""
    INVALID = "invalid"
    """Exactly one record of this kind, but it breaks the syntax; ``*_error`` says how."""
    MULTIPLE = "multiple"
    """More than one record of this kind: the RFCs say to use none of them."""
    DNS_ERROR = "dns_error"
    """SERVFAIL or no answer after retries."""


class FetchStatus(StrEnum):
    """How fetching an MTA-STS policy over HTTPS went (RFC 8461 §3.3)."""

    OK = "ok"
    """HTTP 200 with a ``text/plain`` body over HTTPS with a valid certificate."""
    NOT_FETCHED = "not_fetched"
    """No valid ``_mta-sts`` TXT record, so a sender would not fetch the policy."""
    NO_ADDRESS = "no_address"
    """The policy host name has no address."""
    OPTED_OUT = "opted_out"
    """The policy host's name, or every address it has, is on the survey's opt-out list: it was
    not contacted (the domain's MTA-STS verdict reads ``fetch-failed``)."""
    CONNECT_FAILED = "connect_failed"
    """No TCP connection to any address of the policy host (refused, unreachable)."""
    TIMEOUT = "timeout"
    """No connection, TLS handshake or HTTP answer within the timeout."""
    TLS_FAILED = "tls_failed"
    """The TLS handshake failed for a reason other than the certificate."""
    CERTIFICATE_INVALID = "certificate_invalid"
    """The certificate is not valid for the policy host (untrusted, expired, wrong name)."""
    REDIRECT = "redirect"
    """A 3xx answer: RFC 8461 forbids following redirects."""
    HTTP_ERROR = "http_error"
    """Any other status than 200."""
    CONTENT_TYPE = "content_type"
    """200, but the media type is not ``text/plain``."""
    TOO_LARGE = "too_large"
    """The body exceeds the 64 KiB a sender needs to accept."""
    PROTOCOL_ERROR = "protocol_error"
    """The server does not speak HTTP/1.x."""


class PolicyStatus(StrEnum):
    """Whether a fetched MTA-STS policy body keeps the RFC 8461 §3.2 syntax."""

    VALID = "valid"
    """It keeps the syntax: ``version``, ``mode`` and ``max_age`` once each, and an ``mx``
    pattern unless the mode is ``none``."""
    INVALID = "invalid"
    """It breaks the syntax (a missing or repeated field, an unknown mode, a bad ``max_age`` or
    ``mx`` pattern); ``policy_error`` says how. A sender then has no policy."""


class StsMode(StrEnum):
    """The ``mode`` of a valid MTA-STS policy (RFC 8461 §5)."""

    ENFORCE = "enforce"
    """A sender refuses MX hosts that no ``mx`` pattern covers or that fail WebPKI."""
    TESTING = "testing"
    """A sender delivers anyway and reports the failures (TLS-RPT)."""
    NONE = "none"
    """The domain withdraws its policy: a sender behaves as if there were none."""


ENFORCEABLE_MODES: frozenset[StsMode] = frozenset({StsMode.ENFORCE, StsMode.TESTING})
"""Modes in which a sender checks the MX hosts against the policy: ``enforce`` refuses those
that fail, ``testing`` only reports them."""


class DnssecStatus(StrEnum):
    """DNSSEC state of an answer (RFC 4035 §4.3 terms), however it was established."""

    SECURE = "secure"
    """Signed, and the signatures validate up to the trust anchor; with the AD-bit method: AD
    set."""
    INSECURE = "insecure"
    """Not signed (or not under a trust anchor); with the AD-bit method: AD not set."""
    BOGUS = "bogus"
    """Signed, but the signatures or the chain to the trust anchor do not validate."""


class DnssecMethod(StrEnum):
    """How a DNSSEC state was established (:mod:`research.scan.dnssec`)."""

    TRUST_ANCHOR = "trust-anchor"
    """Validated by this tool from the ``--dnssec-anchor`` trust anchor, signature by signature
    up the chain of DS records."""
    RESOLVER_AD = "resolver-ad"
    """The AD bit of the resolver's answer (RFC 4035 §3.2.3): only as good as that resolver and
    the path to it."""


class TlsaStatus(StrEnum):
    """What DNS said about an MX host's ``_25._tcp`` TLSA records."""

    FOUND = "found"
    """One or more TLSA records at ``_25._tcp.<mx_host>``."""
    NONE = "none"
    """NXDOMAIN or no TLSA records (denial of existence is not validated)."""
    DNS_ERROR = "dns_error"
    """SERVFAIL or no answer after retries."""


class Engine(StrEnum):
    """How TLS is enumerated (``--engine``; ``meta.json`` ``options.engine``)."""

    FULL = "full"
    """Versions and every accepted suite by iterative removal (about accepted + 1 sessions per
    version and client)."""
    VERSIONS = "versions"
    """Versions only: one session per version; the ``ciphers`` table stays empty."""
    SSLYZE = "sslyze"
    """sslyze's own scan: one session per suite it knows (over 500 per host); the cross-check."""


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
    ("undecided", _LIST, "What the TLS scan could not decide because the address stopped "
     "answering (timeouts, after retries with backoff) or its time budget ran out: a version "
     "label (`TLS 1.2`: its column is null), a version with `suites` (`TLS 1.2 suites`: "
     "accepted, but `ciphers` may miss some of its suites) or `certificate` (this MX name's own "
     "certificate could not be fetched: the certificate columns are null); list of strings, "
     "empty when everything was decided."),
    ("scanned_at", _TIME, "When the probe of this host finished (UTC)."),
    ("duration_s", _FLOAT, "Wall time of the address's SMTP probe session, seconds (the TLS "
     "scan runs concurrently with other addresses' and is not included; `addresses.duration_s` "
     "is the whole probe's)."),
    # Added with the enforcement study (issue 6); older result directories lack them.
    ("cert_chain_trusted", _BOOL, "The presented chain leads to a root of the trust store "
     "(sslyze's Mozilla store plus `--trust-ca`) under WebPKI rules, names aside and judged at a "
     "time when its certificates are valid (so an expired but otherwise good chain is trusted); "
     "null if no certificate was seen."),
    ("cert_expired", _BOOL, "A certificate of the chain (of the leaf alone when no chain "
     "validates) is outside its validity period at scan time."),
    ("cert_trust_error", _STRING, "Why the chain is not valid for the MX host name (the "
     "verifier's message); null when it is."),
    ("cert_chain_length", _INT, "Certificates the server presented (leaf included)."),
    ("cert_key_type", _STRING, "Leaf public key type: `RSA`, `EC`, `Ed25519`, `Ed448`, `DSA`."),
    ("cert_key_bits", _INT, "Leaf public key size in bits (the curve size for EC)."),
    ("cert_signature_algorithm", _STRING, "Algorithm the leaf is signed with, e.g. "
     "`sha256WithRSAEncryption`, `ecdsa-with-SHA256`."),
    ("webpki_result", _STRING, "How a sender requiring authenticated TLS to the MX host name "
     "(RFC 8461 §4.1: STARTTLS, a trusted chain, unexpired, a matching name) would end the "
     "session: `ok` or an RFC 8460 result type: " + ", ".join(WEBPKI_FAILURES)
     + ". Null when no SMTP session took place "
     "(timeout, refused, unresolved, SMTP error)."),
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

CERTIFICATES = _cols(
    ("mx_host", _STRING, "MX host name (joins `hosts`)."),
    ("ip", _STRING, "IP address (joins `hosts`)."),
    ("position", _INT, "Place in the chain as presented: 0 is the leaf, 1 what the server sent "
     "next, and so on."),
    ("subject", _STRING, "Subject (RFC 4514 string)."),
    ("issuer", _STRING, "Issuer (RFC 4514 string)."),
    ("sans", _LIST, "DNS names in subjectAltName (the subject CN when there is no SAN "
     "extension); list of strings."),
    ("not_before", _TIME, "Validity start (UTC)."),
    ("not_after", _TIME, "Validity end (UTC)."),
    ("self_signed", _BOOL, "Issuer equals subject."),
    ("is_ca", _BOOL, "basicConstraints says CA."),
    ("key_type", _STRING, "Public key type: `RSA`, `EC`, `Ed25519`, `Ed448`, `DSA`."),
    ("key_bits", _INT, "Public key size in bits (the curve size for EC)."),
    ("signature_algorithm", _STRING, "Algorithm the certificate is signed with."),
    ("sha256", _STRING, "SHA-256 of the certificate (hex): a TLSA selector 0, matching type 1 "
     "value."),
    ("spki_sha256", _STRING, "SHA-256 of the SubjectPublicKeyInfo (hex): a TLSA selector 1, "
     "matching type 1 value."),
    ("der_base64", _STRING, "The certificate itself (DER, base64), for checks made later."),
)

MTA_STS = _cols(
    ("domain", _STRING, "Normalised domain (joins `domains.domain`); one row per domain with "
     "MX hosts."),
    ("txt_status", _STRING, "The `_mta-sts.<domain>` TXT record (RFC 8461 §3.1): one of "
     + ", ".join(s.value for s in RecordStatus) + "."),
    ("txt_records", _LIST, "Every TXT record at `_mta-sts.<domain>`, strings of a record "
     "joined; list of strings."),
    ("txt_id", _STRING, "The record's `id` field when it is valid."),
    ("txt_error", _STRING, "Why the record is invalid, or the DNS error."),
    ("policy_host", _STRING, "`mta-sts.<domain>`, where the policy is fetched from."),
    ("policy_ip", _STRING, "Address the policy was fetched from; null if none was tried."),
    ("fetch_status", _STRING, "How the HTTPS fetch of "
     "`https://mta-sts.<domain>/.well-known/mta-sts.txt` went (RFC 8461 §3.3): one of "
     + ", ".join(s.value for s in FetchStatus) + "."),
    ("http_status", _INT, "HTTP status code; null without an HTTP answer."),
    ("content_type", _STRING, "The answer's Content-Type header."),
    ("fetch_error", _STRING, "Why the fetch failed (connection, TLS or certificate error, "
     "redirect target, ...)."),
    ("policy_status", _STRING, f"`{PolicyStatus.VALID}` or `{PolicyStatus.INVALID}` (RFC 8461 "
     "§3.2 syntax); null when no policy was fetched."),
    ("policy_error", _STRING, "Why the policy is invalid."),
    ("mode", _STRING, f"`{StsMode.ENFORCE}`, `{StsMode.TESTING}` or `{StsMode.NONE}`; null "
     "without a valid policy."),
    ("max_age", _INT, "Seconds a sender may cache the policy."),
    ("mx_patterns", _LIST, "The policy's `mx` patterns (a `*.` wildcard covers exactly one "
     "leftmost label); list of strings."),
    ("mx_not_covered", _LIST, "The domain's MX hosts that no pattern covers (a sender in "
     "enforce mode refuses them); list of strings, empty without a valid policy."),
    ("policy_result", _STRING, "The RFC 8460 policy failure a sender would report: "
     "`sts-policy-fetch-error`, `sts-webpki-invalid` (the policy host's certificate), "
     "`sts-policy-invalid`; null when the policy is valid or none is published."),
    ("policy_text", _STRING, "The policy body as fetched (at most 64 KiB)."),
    ("checked_at", _TIME, "When the lookup finished (UTC)."),
)

TLSRPT = _cols(
    ("domain", _STRING, "Normalised domain (joins `domains.domain`); one row per domain with "
     "MX hosts."),
    ("status", _STRING, "The `_smtp._tls.<domain>` TXT record (RFC 8460 §3): one of "
     + ", ".join(s.value for s in RecordStatus) + "."),
    ("records", _LIST, "Every TXT record at `_smtp._tls.<domain>`; list of strings."),
    ("rua", _LIST, "Report destinations (`mailto:` or `https:` URIs) of a valid record; list "
     "of strings."),
    ("error", _STRING, "Why the record is invalid, or the DNS error."),
)

DANE = _cols(
    ("domain", _STRING, "Normalised domain (joins `mx.domain`); one row per MX host of a "
     "domain with MX hosts."),
    ("mx_host", _STRING, "MX host name (joins `mx.mx_host`, `hosts.mx_host`)."),
    ("mx_dnssec", _STRING, "DNSSEC state of the domain's MX RRset (of its A RRset for an "
     "implicit MX): one of " + ", ".join(s.value for s in DnssecStatus) + "; null on a DNS "
     "error. DANE applies only when it is `secure` (RFC 7672 §2.2)."),
    ("tlsa_name", _STRING, "`_25._tcp.<mx_host>`."),
    ("tlsa_status", _STRING, "One of " + ", ".join(s.value for s in TlsaStatus) + "."),
    ("tlsa_records", _LIST, "TLSA records as `usage selector matching-type hex-data`; list of "
     "strings."),
    ("tlsa_dnssec", _STRING, "DNSSEC state of the TLSA RRset: one of "
     + ", ".join(s.value for s in DnssecStatus) + "; null without records."),
    ("dnssec_method", _STRING, "How DNSSEC states were established: `trust-anchor` (validated "
     "by this tool from the `--dnssec-anchor` trust anchor) or `resolver-ad` (the AD bit of "
     "the resolver's answer: only as good as that resolver and the path to it)."),
    ("dnssec_error", _STRING, "Why an RRset is bogus, or the DNS error."),
    ("usable_records", _INT, "TLSA records usable for SMTP (usage 2 DANE-TA or 3 DANE-EE, "
     "selector 0/1, matching type 0/1/2)."),
    ("pkix_records", _INT, "TLSA records with usage 0 (PKIX-TA) or 1 (PKIX-EE), which RFC 7672 "
     "§3.1.3 makes unusable for SMTP."),
)

ADDRESSES = _cols(
    ("ip", _STRING, "IP address probed (joins `hosts.ip`): the unit of probing, one row per "
     "address however many MX names point at it."),
    ("port", _INT, "TCP port probed."),
    ("provider", _STRING, "The provider its sessions were paced with: the registrable domain "
     "(Public Suffix List) most of its MX names share."),
    ("mx_hosts", _LIST, "The MX names probed on this address, the one enumerated in full first; "
     "list of strings."),
    ("sessions", _INT, "SMTP sessions (TCP connections) the survey opened to it: the probe, "
     "the TLS enumeration, one per further MX name for its certificate, and retries."),
    ("throttled", _INT, "Sessions answered `421`, `450` or `451` before a TLS handshake (a "
     "greeting or a reply): the address's way of saying not now."),
    ("dropped", _INT, "Sessions whose connection was refused, or closed or reset before an "
     "answer."),
    ("timeouts", _INT, "Sessions that got no connection or no answer in time."),
    ("concurrency", _INT, "Connections it was allowed at once in the end: `--per-host`, halved "
     "for each refusal that came while other sessions were open, down to 1."),
    ("spacing_s", _FLOAT, "Least seconds between two session starts in the end: 0, or learned "
     "from a rate limit (the sessions it let through before refusing, spread over the time it "
     "took to let one in again)."),
    ("greeting_s", _FLOAT, "The longest its greeting took to arrive in full, seconds."),
    ("paused_s", _FLOAT, "Seconds it was paused after refusals and timeouts."),
    ("session_s", _FLOAT, "The mean duration of its sessions that got an answer (the probe's "
     "and the TLS enumeration's), seconds."),
    ("parts", _INT, "Parts its TLS enumeration was asked in: one per lane (version and "
     "client), plus one each time a lane's remaining suites were split to use an idle "
     "connection, which costs one session more (0: no TLS enumeration)."),
    ("budget_spent", _BOOL, "Its time budget (`--host-budget`, extended for each further MX "
     "name) ran out before everything was decided; `hosts.undecided` says what is missing."),
    ("duration_s", _FLOAT, "Wall time from its first session to the end of its probe, seconds."),
    ("finished", _BOOL, "The probe ran to its end; false for what an interrupted survey had "
     "learned so far (`--resume` starts from it)."),
    ("probed_at", _TIME, "When the record was made (UTC)."),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "domains": DOMAINS,
    "mx": MX,
    "hosts": HOSTS,
    "ciphers": CIPHERS,
    "certificates": CERTIFICATES,
    "mta_sts": MTA_STS,
    "tlsrpt": TLSRPT,
    "dane": DANE,
    "addresses": ADDRESSES,
}

LATER_TABLES: frozenset[str] = frozenset({"certificates", "mta_sts", "tlsrpt", "dane",
                                          "addresses"})
"""Tables added after the first surveys were written; loading a directory without one gives
an empty table."""
LATER_COLUMNS: dict[str, frozenset[str]] = {
    "hosts": frozenset({"cert_chain_trusted", "cert_expired", "cert_trust_error",
                        "cert_chain_length", "cert_key_type", "cert_key_bits",
                        "cert_signature_algorithm", "webpki_result"}),
}
"""Columns added to existing tables later; a table saved without them loads with them null."""

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
    "domain_list": "Where the domains came from: the file path as given, `<stdin>`, or "
    "`arguments`.",
    "domain_list_sha256": "SHA-256 (hex) of the domain list. Without --top, of the file's bytes "
    "as given (compressed, if they were: what `sha256sum FILE` prints); with --top, of the "
    "entries taken: each entry's `RANK,INPUT` line (the input as read, surrounding whitespace "
    "stripped), joined by newlines, UTF-8, no final newline; for DOMAIN arguments, of the "
    "arguments joined by newlines. --resume compares it, so it needs the same file and --top.",
    "domain_list_entries": "Entries taken from the list (invalid and repeated names included: "
    "each is a row of `domains`).",
    "domain_list_top": "The --top N the list was cut to; null for the whole list.",
    "domain_list_id": "The list's published ID as given with --list-id (Tranco's, for a paper "
    "to cite); null if none was given.",
    "domain_list_format": "How the file was read: its layout (`one domain a line`, `CSV with a "
    "header`, `rank,domain CSV without a header`) and compression (`gzip`, `bzip2`, `xz`, "
    "`zip member NAME`); null for DOMAIN arguments.",
    "options": "Timeout, concurrency, resume and other scan options (including `mta_sts_port` "
    "and `dnssec_anchor`), among them `engine` (`full`, `versions` or `sslyze`: with `versions` "
    "no suites are enumerated and `ciphers` is empty by design), `retries`, `backoff`, "
    "`greeting_timeout`, `host_budget`, `per_provider_connections`, `provider_rate`, "
    "`dispatcher` (where the host probes ran), and `license` (the data's licence, `--license`; "
    "null when none was given).",
    "counts": "Rows per table (`addresses`: addresses probed, against `hosts`: (MX host, IP) "
    "rows), hosts per status, and `sessions`: SMTP sessions the survey opened in all.",
    "smtp_port_blocked": "True when every host with an address (at least two) timed out or "
    "refused: outbound connections to `port` are probably blocked on the scanning network, so "
    "the host statuses describe that network, not the servers. False otherwise; null when "
    "fewer than two hosts had an address to try.",
}


def columns(table: str) -> tuple[Column, ...]:
    """The columns of any table: a survey's (:data:`TABLES`) or ``sessions``
    (:data:`SESSION_TABLES`)."""
    return TABLES[table] if table in TABLES else SESSION_TABLES[table]


def column_names(table: str) -> list[str]:
    return [c.name for c in columns(table)]


def dtypes(table: str) -> dict[str, str]:
    return {c.name: c.dtype for c in columns(table)}


# -- what the analysis derives from the tables (research.analysis) ------------------------------
# None of these is stored in a survey's tables: they are the values of the analysis's outputs
# (its data frames, tidy tables and charts), named here so that the analysis, the charts, the
# report, the notebooks and the testbed's ground truth share one spelling.


class Unit(StrEnum):
    """The unit of analysis: what one count of an output counts. Every tidy table has a
    ``unit`` column of these, and every chart's caption names its unit."""

    MX_HOST = "MX host"
    """A unique MX host name, counted once however many domains use it and however many IPs
    it has; it has a property only if every scanned IP of it has it
    (:mod:`research.analysis.core`)."""
    DOMAIN = "domain"
    """Every domain of the input list, those without MX hosts included."""
    DOMAIN_ALL = "domain (all MX hosts)"
    """A domain with MX hosts, counted when every one of its MX hosts has the property."""
    DOMAIN_ANY = "domain (any MX host)"
    """A domain with MX hosts, counted when at least one of its MX hosts has the property."""
    DOMAIN_PREFERRED = "domain (preferred MX)"
    """A domain with MX hosts, counted when every MX host at its lowest preference value (those
    a sender tries first) has the property."""
    MAIL_DOMAIN = "domain with MX hosts"
    """A domain whose DNS gave MX hosts to scan (:data:`MAIL_DNS_STATUSES`)."""
    DANE_HOST = "MX host with DANE in force (per domain)"
    """A (domain, MX host) pair whose MX RRset is DNSSEC-secure and whose TLSA records are
    secure or bogus: DANE applies to it (RFC 7672 §2.2)."""
    STS_DOMAIN = "domain with an MTA-STS record"
    """A domain with a valid ``_mta-sts`` TXT record (RFC 8461 §3.1)."""
    SESSION = "session"
    """One SMTP connection a mail server logged or a capture holds (Exim: one message)."""
    PEER = "peer"
    """The other side of one's own mail server's sessions: the recipient domain, the provider,
    the host name or the address (:func:`research.traffic.analysis.with_peer`)."""


class View(StrEnum):
    """How a domain's MX set is lifted to the domain: the suffix of ``domain_verdicts``'s
    verdict columns (``starttls_all``, ...)."""

    ALL = "all"
    """Every MX host has the property."""
    ANY = "any"
    """At least one MX host has it."""
    PREFERRED = "preferred"
    """Every MX host at the lowest preference value (tried first, RFC 5321 §5.1) has it."""


UNIT_BY_VIEW: dict[View, Unit] = {View.ALL: Unit.DOMAIN_ALL, View.ANY: Unit.DOMAIN_ANY,
                                  View.PREFERRED: Unit.DOMAIN_PREFERRED}
"""The unit each view counts."""


class DomainCategory(StrEnum):
    """What a domain's MX set supports, or why nothing can be delivered to it: the
    ``category`` of ``domain_verdicts``. Members in order, best first: the first three need a
    working STARTTLS on at least one MX host; the last seven are the domain's DNS outcome when
    it gives no MX hosts."""

    TLS12_ALL = "TLS ≥ 1.2 on all MX hosts"
    """Every MX host accepts TLS 1.2 or newer (on every IP)."""
    TLS12_SOME = "TLS ≥ 1.2 on some MX hosts"
    """STARTTLS, and at least one MX host, not all, accepts TLS 1.2 or newer."""
    NO_TLS12 = "STARTTLS, no TLS ≥ 1.2"
    """STARTTLS on some MX host, but none accepts TLS 1.2 or newer."""
    NO_STARTTLS = "no STARTTLS"
    """An MX host answered SMTP, but none offers a working STARTTLS."""
    UNREACHABLE = "no reachable MX host"
    """MX hosts, but none answered SMTP (:data:`NOT_REACHED`)."""
    NULL_MX = "null MX"
    """``dns_status`` ``null_mx``: the domain accepts no mail (RFC 7505)."""
    NO_MAIL = "no mail records"
    """``dns_status`` ``no_mail``: neither MX nor address records."""
    NXDOMAIN = "NXDOMAIN"
    """``dns_status`` ``nxdomain``: the domain does not exist."""
    DNS_ERROR = "DNS error"
    """``dns_status`` ``dns_error``: no usable answer after retries."""
    INVALID = "invalid name"
    """``dns_status`` ``invalid``: the input is not a domain name."""
    OPTED_OUT = "opted out (not surveyed)"
    """``dns_status`` ``opted_out``: on the survey's opt-out list."""
    UNKNOWN_DNS = "unknown DNS status"
    """A ``dns_status`` the analysis does not know (null or from a newer tool)."""


DNS_CATEGORIES: dict[str, DomainCategory] = {
    DnsStatus.NULL_MX: DomainCategory.NULL_MX,
    DnsStatus.NO_MAIL: DomainCategory.NO_MAIL,
    DnsStatus.NXDOMAIN: DomainCategory.NXDOMAIN,
    DnsStatus.DNS_ERROR: DomainCategory.DNS_ERROR,
    DnsStatus.INVALID: DomainCategory.INVALID,
    DnsStatus.OPTED_OUT: DomainCategory.OPTED_OUT,
}
"""The category of each DNS outcome that leaves a domain without MX hosts (the others,
:data:`MAIL_DNS_STATUSES`, are categorised by what their MX hosts support)."""


class LiftedStatus(StrEnum):
    """The ``status`` of an MX host (``host_summary``) when its IPs do not share one
    :class:`HostStatus` (the status all its IPs share is given as it is)."""

    MIXED = "mixed"
    """Its IPs disagree; ``statuses`` lists them."""
    NOT_SCANNED = "not_scanned"
    """Listed in ``mx`` but absent from ``hosts``: the survey never got to it."""


class SuiteClass(StrEnum):
    """The class of an accepted cipher suite (``host_ciphers``'s ``class``), strongest first."""

    FS_AEAD = "FS + AEAD"
    """Forward-secret key exchange (ECDHE/DHE) and an AEAD cipher (GCM, CCM, ChaCha20)."""
    FS_NO_AEAD = "FS, no AEAD"
    """Forward secret, a cipher that is not AEAD (CBC mode)."""
    AEAD_NO_FS = "no FS, AEAD"
    """Static (RSA) key exchange, AEAD cipher."""
    NO_FS_NO_AEAD = "no FS, no AEAD"
    """Static key exchange, a cipher that is not AEAD."""
    WEAK = "weak"
    """Weak whatever the rest: RC4, 3DES, DES, RC2, EXPORT, NULL or anonymous
    (:func:`research.policy.ciphers.classify_cipher`)."""


class Change(StrEnum):
    """How a domain or MX host differs between two surveys (``compare``'s ``change``)."""

    ADDED = "added"
    """Only in the later survey."""
    REMOVED = "removed"
    """Only in the earlier survey."""
    CHANGED = "changed"
    """In both, with a field or the set of supported versions that differs."""


class PolicyReason(StrEnum):
    """Why a sender's TLS policy skips a target or a domain (``policy_impact``'s ``reason`` and
    ``attempts``). Besides these, a reason may name a version (``max TLS 1.0 < TLS 1.2``, ``no
    accepted version ≥ TLS 1.2``, ``no forward-secret suite at ≥ TLS 1.2``), an enforcing
    mechanism's RFC 8460 result (``MTA-STS: certificate-expired``, ``DANE: tlsa-invalid``), a
    host status that has no reason of its own (``timeout``), or a domain's
    :class:`DomainCategory` when its DNS gave no MX hosts."""

    NO_STARTTLS = "no STARTTLS"
    """Host status ``no_starttls``."""
    STARTTLS_REJECTED = "STARTTLS rejected"
    """Host status ``starttls_rejected``."""
    TLS_FAILED = "TLS handshake failed"
    """Host status ``tls_failed``."""
    SMTP_ERROR = "SMTP error"
    """Host status ``smtp_error``: no SMTP session, the sender moves on."""
    CERT_MISMATCH = "certificate name mismatch"
    """The policy requires a certificate valid for the MX host name; it is not."""
    CERT_NOT_CHECKED = "certificate name not checked"
    """The policy requires a certificate valid for the MX host name; the survey has no verdict."""
    NOT_SCANNED = "not scanned"
    """An attempt at an MX host absent from ``hosts``: skipped."""
    DELIVERED = "delivered"
    """An attempt that delivered (``attempts`` only)."""
    NO_REACHABLE_MX = "no reachable MX"
    """No MX host of the domain answered SMTP."""
    NO_MX_HOST = "no MX host"
    """The domain's DNS named MX hosts, but ``mx`` has none with a name."""


# -- enforcement: MTA-STS, DANE, WebPKI (research.analysis.enforcement) --------------------------


class LiftedOutcome(StrEnum):
    """How an enforcing sender fares with one MX host, over its IPs (it tries them in turn)."""

    ACCEPTED = "accepted"
    """Every IP that answered SMTP passes."""
    REFUSED = "refused"
    """Every IP that answered SMTP is refused."""
    PARTIAL = "partial"
    """Some answering IPs pass and some are refused: the sender still delivers, to the next
    IP, so the host is both refused and accepted."""
    UNREACHABLE = "unreachable"
    """No IP answered SMTP: neither refused nor accepted; the sender moves on."""


REFUSING: frozenset[LiftedOutcome] = frozenset({LiftedOutcome.REFUSED, LiftedOutcome.PARTIAL})
"""The MX host is among those the sender refuses (on at least one IP)."""
ACCEPTING: frozenset[LiftedOutcome] = frozenset({LiftedOutcome.ACCEPTED, LiftedOutcome.PARTIAL})
"""The MX host is among those the sender delivers to (on at least one IP)."""

NOT_COVERED = "not covered by the policy's mx patterns"
"""Why an MTA-STS sender in enforce mode refuses an MX host that no ``mx`` pattern of the
domain's policy covers (RFC 8461 §4.1); its other reasons are :class:`TlsResult` values."""


class StsVerdict(StrEnum):
    """What a sender that honours MTA-STS (RFC 8461) does with a domain with MX hosts: the
    ``verdict`` of ``mta_sts_verdicts``. The first six mean no policy applies (MTA-STS fails
    open: the sender behaves as without it)."""

    NONE = "none"
    """No ``_mta-sts`` TXT record."""
    INVALID_RECORD = "invalid-record"
    """The one record breaks the RFC 8461 §3.1 syntax."""
    MULTIPLE_RECORDS = "multiple-records"
    """More than one record: the RFC says to use none."""
    DNS_ERROR = "dns-error"
    """The record could not be looked up."""
    FETCH_FAILED = "fetch-failed"
    """A valid record, but the policy could not be fetched over HTTPS (RFC 8461 §3.3)."""
    INVALID_POLICY = "invalid-policy"
    """A policy was fetched, but it breaks the RFC 8461 §3.2 syntax."""
    MODE_NONE = "mode-none"
    """A valid policy in mode ``none``: the domain withdraws MTA-STS."""
    TESTING = "testing"
    """A valid policy in mode ``testing``: the sender delivers anyway (the verdict's lists
    still say what enforce mode would refuse)."""
    ENFORCE_OK = "enforce-ok"
    """Enforce mode, and no MX host is refused."""
    ENFORCE_DEGRADED = "enforce-degraded"
    """Enforce mode: some MX hosts refused, others accepted; mail still flows."""
    ENFORCE_BREAKS = "enforce-breaks"
    """Enforce mode, and every MX host that answers is refused: the domain loses mail."""
    ENFORCE_UNREACHABLE = "enforce-unreachable"
    """Enforce mode, and no MX host answered SMTP."""


STS_NO_POLICY: frozenset[StsVerdict] = frozenset({
    StsVerdict.NONE, StsVerdict.INVALID_RECORD, StsVerdict.MULTIPLE_RECORDS,
    StsVerdict.DNS_ERROR, StsVerdict.FETCH_FAILED, StsVerdict.INVALID_POLICY})
"""No valid record with a valid policy behind it: the sender has no MTA-STS policy."""


class DaneState(StrEnum):
    """What DANE (RFC 7672) asks of a sender for one (domain, MX host), from DNS alone."""

    OPPORTUNISTIC = "opportunistic"
    """DANE does not apply (an MX RRset that is not DNSSEC-secure, no TLSA records, or
    unsigned ones): opportunistic TLS, as without DANE."""
    REQUIRED = "required"
    """DANE is in force: secure TLSA with usable records (DANE-TA/EE, RFC 7672 §3.1); the
    sender requires STARTTLS and a chain the records match. ``targets``'s ``dane_state`` says
    ``required`` for the two states below too (DANE in force)."""
    ENCRYPT = "encrypt"
    """Secure TLSA records, none usable: the sender requires TLS without authenticating it."""
    BOGUS = "bogus"
    """The MX or TLSA lookup fails DNSSEC validation: the sender does not even connect
    (``dnssec-invalid``)."""


class DaneOutcome(StrEnum):
    """What a sender that honours DANE does with one (domain, MX host): ``dane_hosts``'s
    ``outcome``. The last three are RFC 8460 result types the host is refused with."""

    AUTHENTICATED = "authenticated"
    """Every answering IP presented a chain its usable TLSA records match."""
    ENCRYPTED = "encrypted"
    """Secure TLSA records, none usable: TLS without authentication."""
    OPPORTUNISTIC = "opportunistic"
    """DANE does not apply (:attr:`DaneState.OPPORTUNISTIC`)."""
    UNREACHABLE = "unreachable"
    """No IP answered SMTP."""
    TLSA_INVALID = TlsResult.TLSA_INVALID.value
    """Refused: the presented chain matches no usable TLSA record."""
    DNSSEC_INVALID = TlsResult.DNSSEC_INVALID.value
    """Refused: the MX or TLSA lookup fails DNSSEC validation."""
    STARTTLS_NOT_SUPPORTED = TlsResult.STARTTLS_NOT_SUPPORTED.value
    """Refused: no STARTTLS, which DANE requires."""


class DaneVerdict(StrEnum):
    """What a sender that honours DANE (RFC 7672) does with a domain with MX hosts: the
    ``verdict`` of ``dane_verdicts``. The first four mean DANE does not apply to the domain
    (except ``mx-bogus``, where a validating sender cannot even find its MX hosts)."""

    NONE = "none"
    """No TLSA records at any MX host."""
    MX_INSECURE = "mx-insecure"
    """TLSA records, but the MX RRset is not DNSSEC-signed: DANE does not apply (RFC 7672
    §2.2)."""
    MX_BOGUS = "mx-bogus"
    """The MX RRset fails DNSSEC validation: the domain loses mail."""
    INSECURE = "insecure"
    """TLSA records, but none DNSSEC-secure: DANE does not apply."""
    OK = "ok"
    """DANE in force, nothing refused, at least one MX host authenticated."""
    UNUSABLE = "unusable"
    """DANE in force, nothing refused, none authenticated: only unusable records (TLS without
    authentication)."""
    DEGRADED = "degraded"
    """DANE in force: some MX hosts refused, others accepted; mail still flows."""
    BREAKS = "breaks"
    """DANE in force, and every MX host that answers is refused: the domain loses mail."""
    UNREACHABLE = "unreachable"
    """DANE in force, and no MX host answered SMTP."""


DANE_IN_FORCE: frozenset[DaneVerdict] = frozenset({
    DaneVerdict.OK, DaneVerdict.UNUSABLE, DaneVerdict.DEGRADED, DaneVerdict.BREAKS,
    DaneVerdict.MX_BOGUS})
"""A validating sender applies DANE to the domain (or, ``mx-bogus``, cannot reach it at all)."""
DANE_LOSES_MAIL: frozenset[DaneVerdict] = frozenset({DaneVerdict.BREAKS, DaneVerdict.MX_BOGUS})
"""A sender that honours DANE cannot deliver to the domain."""


class Readiness(StrEnum):
    """Could a sender enforce TLS to a domain, and what would break: the ``readiness`` of
    ``enforcement_readiness``. Members in order, best first; "enforced" means MTA-STS in
    enforce mode or DANE in force, the worse of the two deciding."""

    ENFORCED_OK = "enforced: every MX host passes"
    """Enforced (``enforce-ok``, DANE ``ok`` or ``unusable``): nothing refused."""
    ENFORCED_DEGRADED = "enforced: some MX hosts refused"
    """Enforced (``enforce-degraded``, DANE ``degraded``): some MX hosts refused, mail flows."""
    ENFORCED_LOSING = "enforced: would lose mail"
    """Enforced (``enforce-breaks``, DANE ``breaks`` or ``mx-bogus``): the domain loses mail."""
    NOT_ENFORCED_OK = "not enforced: every MX host passes WebPKI"
    """Nothing enforced, and every answering MX host passes WebPKI: an MTA-STS policy in
    enforce mode that covers the MX set would lose nothing."""
    NOT_ENFORCED_FAILING = "not enforced: some MX host fails WebPKI"
    """Nothing enforced, and some answering MX host fails WebPKI."""
    NOT_MEASURED = "not measured (no certificate verdicts)"
    """Nothing enforced; MX hosts answered, but the survey predates certificate verdicts."""
    UNREACHABLE = "no reachable MX host"
    """Nothing enforced, and no MX host answered SMTP."""
    NO_MAIL = "no MX hosts"
    """The domain's DNS gave no MX hosts (or ``mx`` has none)."""


# -- traffic observed on one's own mail server (research.traffic) ------------------------------


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


class SessionSource(StrEnum):
    """What a ``sessions`` row was read from."""

    POSTFIX = "postfix"
    """Postfix log lines (``smtpd`` inbound, ``smtp`` outbound)."""
    EXIM = "exim"
    """Exim main log lines (``<=`` inbound, ``=>`` outbound)."""
    SENDMAIL = "sendmail"
    """Sendmail log lines (``STARTTLS=server`` inbound, ``STARTTLS=client`` outbound)."""
    PCAP = "pcap"
    """A packet capture (pcap or pcapng) of SMTP sessions."""


class InputKind(StrEnum):
    """What kind of file ``starttls-survey logs`` read (``meta.json`` ``inputs[].kind``), told
    from its first bytes (after decompression)."""

    LOG = "log"
    """Text: an MTA's log (anything that is not a capture)."""
    PCAP = "pcap"
    """A libpcap capture (either byte order, micro- or nanosecond timestamps)."""
    PCAPNG = "pcapng"
    """A pcapng capture."""

SESSIONS = _cols(
    ("time", _TIME, "When the session's TLS handshake (or, without TLS, the session) was logged "
     "or captured (UTC; syslog and Exim times are read in the zone given by `--timezone`)."),
    ("source", _STRING, f"What the row was read from: `{SessionSource.POSTFIX}`, "
     f"`{SessionSource.EXIM}`, `{SessionSource.SENDMAIL}` (log lines) or `{SessionSource.PCAP}` "
     "(a packet capture)."),
    ("file", _STRING, "The input file."),
    ("line", _INT, "Line number (logs) or packet number (captures) the row was read at."),
    ("direction", _STRING, "One of: " + ", ".join(d.value for d in Direction) + "; null for a "
     "capture when neither end is a `--local-ip`."),
    ("peer_host", _STRING, "The peer's host name as logged; null when only its address is known "
     "(Postfix `unknown`, an address literal)."),
    ("peer_ip", _STRING, "The peer's IP address."),
    ("peer_port", _INT, "The peer's TCP port where known (outbound: the server's port)."),
    ("peer_domain", _STRING, "Registrable domain of `peer_host` (Public Suffix List, "
     "`research.policy.names.provider_of`): the peer's provider; null without a host name."),
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
    "inputs": "One entry per input file: `path`, `kind` ("
    + ", ".join(f"`{k}`" for k in InputKind) + "), `compressed`, "
    "`lines` (log lines or packets read), `sessions`, `unparseable` (log lines that are not "
    "log lines of a known format, or TLS lines whose fields cannot be read) and `sources` "
    "(sessions per MTA).",
    "options": "`timezone`, `year`, `local_ips` and `license` as given.",
    "counts": "Rows of `sessions`, and sessions per direction, TLS version and source.",
}


# -- every table as a whole --------------------------------------------------------------------

TABLE_DOCS: dict[str, str] = {
    "domains": "One row per entry of the domain list: how DNS answered for its mail servers.",
    "mx": "One row per (domain, MX host) mail would be sent to, with its preference.",
    "hosts": "One row per scanned (MX host, IP address): the SMTP probe, STARTTLS, the TLS "
    "versions accepted, the certificate and how a sender that authenticates it would fare.",
    "ciphers": "One row per cipher suite an (MX host, IP) accepted, per TLS version (empty "
    "when the survey ran with `engine` `versions`).",
    "certificates": "One row per certificate of the chain each (MX host, IP) presented.",
    "mta_sts": "MTA-STS (RFC 8461) as a sender finds it: one row per domain with MX hosts.",
    "tlsrpt": "SMTP TLS Reporting (RFC 8460) records: one row per domain with MX hosts.",
    "dane": "DANE for SMTP (RFC 7672): one row per (domain, MX host) of the domains with MX "
    "hosts, the MX RRset's DNSSEC state beside the host's TLSA lookup.",
    "addresses": "One row per (IP address, port) probed: the unit of probing, however many MX "
    "names point at it, with what the survey learned of its limits.",
    "sessions": "One row per SMTP session seen in a mail server's logs or packet captures.",
}
"""What one row of each table (:data:`TABLES` and :data:`SESSION_TABLES`) is."""

COLUMN_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    ("domains", "dns_status"): tuple(DnsStatus),
    ("hosts", "status"): tuple(HostStatus),
    ("hosts", "min_version"): VERSION_LABELS,
    ("hosts", "max_version"): VERSION_LABELS,
    ("hosts", "negotiated_version"): VERSION_LABELS,
    ("hosts", "webpki_result"): tuple(TlsResult),
    ("ciphers", "tls_version"): VERSION_LABELS,
    ("mta_sts", "txt_status"): tuple(RecordStatus),
    ("mta_sts", "fetch_status"): tuple(FetchStatus),
    ("mta_sts", "policy_result"): tuple(TlsResult),
    ("tlsrpt", "status"): tuple(RecordStatus),
    ("dane", "mx_dnssec"): tuple(DnssecStatus),
    ("dane", "tlsa_status"): tuple(TlsaStatus),
    ("dane", "tlsa_dnssec"): tuple(DnssecStatus),
    ("sessions", "direction"): tuple(Direction),
    ("sessions", "verification"): tuple(Verification),
}
"""(table, column) → the closed vocabulary its non-null values come from (a Data Package's
``enum`` constraint)."""
