"""What a leaf certificate says about the host that presented it. Network-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from research.policy.names import is_ip_address


@dataclass
class CertSummary:
    subject: str
    issuer: str
    sans: list[str] = field(default_factory=list)
    not_before: datetime | None = None
    not_after: datetime | None = None
    self_signed: bool = False
    sha256: str = ""
    matches: bool = False
    """Valid for the name it was checked against (see :func:`name_matches`)."""


def name_matches(host: str, names: list[str]) -> bool:
    """Whether ``host`` is covered by one of ``names`` (RFC 6125 §6.4).

    Comparison is case-insensitive; a wildcard is honoured only as the whole leftmost label and
    covers exactly one label (``*.example.test`` covers ``mx.example.test``, not
    ``a.mx.example.test`` nor ``example.test``).
    """
    host = host.lower().rstrip(".")
    for name in names:
        pattern = name.lower().rstrip(".")
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host:
            _, rest = host.split(".", 1)
            if pattern[2:] == rest and rest.count(".") >= 1:
                return True
    return False


def dns_names(cert: x509.Certificate) -> list[str]:
    """subjectAltName DNS names; the subject CN only when there is no SAN extension (RFC 6125)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return [str(a.value) for a in cns if not is_ip_address(str(a.value))]
    return list(ext.value.get_values_for_type(x509.DNSName))


def summarise(cert: x509.Certificate, host: str) -> CertSummary:
    """Subject, issuer, names, validity, self-signedness, fingerprint; name checked for ``host``."""
    names = dns_names(cert)
    return CertSummary(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        sans=names,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        self_signed=cert.issuer == cert.subject,
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        matches=name_matches(host, names),
    )


def summarise_der(der: bytes, host: str) -> CertSummary | None:
    """Like :func:`summarise` for DER bytes; ``None`` when they do not parse."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    return summarise(cert, host)
