"""The ground truth a scenario's settings imply: each host's status and certificate verdict, each
domain's DNS status, and the verdict vocabularies its ``expect`` keys may use.

A scenario's stated ``expect`` values are checked against these, so a scenario cannot silently
disagree with its own ground truth.
"""

from __future__ import annotations

from research.policy.certs import name_matches
from research.store.schema import (
    WEBPKI_FAILURES,
    DaneOutcome,
    DaneVerdict,
    DnsStatus,
    HostStatus,
    StsVerdict,
    TlsResult,
)
from research.testbed.scenario.model import (
    DNS_SERVING_RECORDS,
    Behaviour,
    Certificate,
    DnsMode,
    Domain,
    Host,
)

_IMPLIED_STATUS: dict[Behaviour, HostStatus] = {
    Behaviour.REJECT_STARTTLS: HostStatus.STARTTLS_REJECTED,
    Behaviour.TLS_GARBAGE: HostStatus.TLS_FAILED,
    Behaviour.GREETING_ERROR: HostStatus.SMTP_ERROR,
    Behaviour.TARPIT: HostStatus.TIMEOUT,
    Behaviour.DOWN: HostStatus.REFUSED,
    Behaviour.SLOW_BANNER: HostStatus.TIMEOUT,
    Behaviour.HELO_ONLY: HostStatus.NO_STARTTLS,
    Behaviour.TLS_ALERT: HostStatus.TLS_FAILED,
    Behaviour.TLS_RESET: HostStatus.TLS_FAILED,
    Behaviour.HTTP: HostStatus.SMTP_ERROR,
    Behaviour.ENDLESS_LINE: HostStatus.SMTP_ERROR,
    Behaviour.ENDLESS_CONTINUATION: HostStatus.SMTP_ERROR,
    Behaviour.RESET_AFTER_BANNER: HostStatus.REFUSED,
    Behaviour.BLACKHOLE: HostStatus.TIMEOUT,
}

WEBPKI_RESULTS: tuple[str, ...] = tuple(r.value for r in (TlsResult.OK, *WEBPKI_FAILURES))
"""Values of a host's ``expect.webpki``."""
DANE_HOST_OUTCOMES: tuple[str, ...] = tuple(o.value for o in DaneOutcome)
"""Values of a host's ``expect.dane``."""
MTA_STS_VERDICTS: tuple[str, ...] = tuple(v.value for v in StsVerdict)
"""Values of a domain's ``expect.mta_sts``."""
DANE_VERDICTS: tuple[str, ...] = tuple(v.value for v in DaneVerdict)
"""Values of a domain's ``expect.dane``."""

_CERT_RESULTS: dict[Certificate, TlsResult] = {
    Certificate.CA: TlsResult.OK,
    Certificate.EXPIRED: TlsResult.CERTIFICATE_EXPIRED,
    Certificate.WRONG_NAME: TlsResult.CERTIFICATE_HOST_MISMATCH,
    Certificate.SELF_SIGNED: TlsResult.CERTIFICATE_NOT_TRUSTED,
    Certificate.UNTRUSTED: TlsResult.CERTIFICATE_NOT_TRUSTED,
    Certificate.CLIENT_ONLY: TlsResult.VALIDATION_FAILURE,
}


def implied_webpki(host: Host) -> str | None:
    """The ``webpki_result`` a host's settings give (see :mod:`research.policy.pki` for the
    order)."""
    status = host.expect_status
    if status in (HostStatus.NO_STARTTLS, HostStatus.STARTTLS_REJECTED):
        return TlsResult.STARTTLS_NOT_SUPPORTED.value
    if status is HostStatus.TLS_FAILED:
        return TlsResult.VALIDATION_FAILURE.value
    if status is not HostStatus.STARTTLS or host.certificate is None:
        return None
    result = _CERT_RESULTS[host.certificate]
    if result is TlsResult.OK and not name_matches(host.name, list(host.leaf_names)):
        result = TlsResult.CERTIFICATE_HOST_MISMATCH
    return result.value


def implied_status(host: Host) -> HostStatus:
    if not host.addresses:
        return HostStatus.UNRESOLVED
    if host.behaviour is Behaviour.NORMAL:
        return HostStatus.STARTTLS if host.starttls else HostStatus.NO_STARTTLS
    return _IMPLIED_STATUS[host.behaviour]


def implied_dns_status(domain: Domain) -> DnsStatus:
    if domain.dns is DnsMode.NXDOMAIN:
        return DnsStatus.NXDOMAIN
    if domain.dns not in DNS_SERVING_RECORDS:
        return DnsStatus.DNS_ERROR
    if domain.null_mx:
        return DnsStatus.NULL_MX
    if domain.mx:
        return DnsStatus.MX
    return DnsStatus.IMPLICIT_MX if domain.implicit_mx else DnsStatus.NO_MAIL
