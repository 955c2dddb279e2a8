"""Where a domain's mail goes: MX records (RFC 5321 §5.1, RFC 7505) and the MX hosts' addresses.

Every lookup returns a value; DNS failures (NXDOMAIN, SERVFAIL, timeouts) are recorded in it,
never raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.name
import dns.resolver

from research.policy.names import is_ip_address
from research.scan.resolver import TemporaryDnsFailure, make_resolver, query
from research.settings import DNS_RETRIES
from research.store.schema import DnsStatus


@dataclass(frozen=True)
class MxRecord:
    preference: int
    host: str
    """Normalised: lower case, no trailing dot."""


@dataclass
class MxResolution:
    """What DNS says about where ``domain`` receives mail."""

    domain: str
    status: DnsStatus
    mx: list[MxRecord] = field(default_factory=list)
    """Sorted by preference, then host name. Empty unless ``status`` is ``mx``/``implicit_mx``."""
    error: str | None = None


@dataclass
class HostAddresses:
    host: str
    addresses: list[str] = field(default_factory=list)
    """IPv4 addresses first, then IPv6, each in DNS order."""
    error: str | None = None
    canonical: str | None = None
    """The name the addresses belong to when ``host`` is an alias (CNAME) of it, else None."""


IP_LITERAL_ERROR = ("MX target is an IP address, not a host name (RFC 5321 §5.1); mail servers "
                    "such as Postfix and Exim do not use it, so neither does the survey")


def resolve_mx(
    domain: str,
    *,
    resolver: dns.resolver.Resolver | None = None,
    retries: int = DNS_RETRIES,
) -> MxResolution:
    """Where mail for ``domain`` (already normalised) goes.

    - MX records → ``mx``, sorted by preference;
    - a lone null MX (``MX 0 .``, RFC 7505) → ``null_mx``; a null MX among other MX records is
      invalid per RFC 7505: the other records are used and the violation is noted in ``error``;
    - no MX but A/AAAA → ``implicit_mx`` with the domain itself at preference 0 (RFC 5321 §5.1);
    - neither → ``no_mail``; NXDOMAIN → ``nxdomain``;
    - SERVFAIL or no answer after ``retries`` extra attempts → ``dns_error``.

    Never raises for DNS failures.
    """
    resolver = resolver or make_resolver()
    try:
        answer = query(resolver, domain, "MX", retries)
        if answer.rrset is None:
            return _implicit_mx(domain, resolver, retries)
    except dns.resolver.NXDOMAIN:
        return MxResolution(domain, DnsStatus.NXDOMAIN, error="NXDOMAIN")
    except TemporaryDnsFailure as exc:
        return MxResolution(domain, DnsStatus.DNS_ERROR, error=str(exc))

    records = sorted(
        {MxRecord(int(r.preference), _normalise_host(r.exchange)) for r in answer.rrset},
        key=lambda r: (r.preference, r.host),
    )
    real = [r for r in records if r.host not in ("", ".")]
    if not real:
        return MxResolution(domain, DnsStatus.NULL_MX)
    error = None
    if len(real) != len(records):
        error = "null MX mixed with other MX records (invalid per RFC 7505)"
    return MxResolution(domain, DnsStatus.MX, real, error)


def _implicit_mx(domain: str, resolver: dns.resolver.Resolver, retries: int) -> MxResolution:
    found = resolve_addresses(domain, resolver=resolver, retries=retries)
    if found.addresses:
        return MxResolution(domain, DnsStatus.IMPLICIT_MX, [MxRecord(0, domain)])
    if found.error and "NXDOMAIN" not in found.error and "no A/AAAA" not in found.error:
        return MxResolution(domain, DnsStatus.DNS_ERROR, error=found.error)
    return MxResolution(domain, DnsStatus.NO_MAIL, error="no MX, A or AAAA records")


def resolve_addresses(
    host: str,
    *,
    resolver: dns.resolver.Resolver | None = None,
    retries: int = DNS_RETRIES,
) -> HostAddresses:
    """The A then AAAA addresses of ``host``; ``error`` says why there are none.

    An MX target that is an IP literal (a misconfiguration, RFC 5321 §5.1 forbids it) is not
    looked up and has no addresses. A target that is an alias (CNAME, against RFC 2181 §10.3)
    is followed, as mail servers do, and ``canonical`` names where it led. Never raises for DNS
    failures.
    """
    if is_ip_address(host):
        return HostAddresses(host, [], IP_LITERAL_ERROR)
    resolver = resolver or make_resolver()
    addresses: list[str] = []
    errors: list[str] = []
    canonical: str | None = None
    nxdomain = False
    for rdtype in ("A", "AAAA"):
        try:
            answer = query(resolver, host, rdtype, retries)
        except dns.resolver.NXDOMAIN:
            nxdomain = True
            break
        except TemporaryDnsFailure as exc:
            errors.append(str(exc))
            continue
        if answer.rrset is not None:
            addresses.extend(r.address for r in answer.rrset)
            if _normalise_host(answer.canonical_name) != host.lower().rstrip("."):
                canonical = _normalise_host(answer.canonical_name)
    if addresses:
        return HostAddresses(host, addresses, canonical=canonical)
    if nxdomain:
        return HostAddresses(host, [], "NXDOMAIN")
    if errors:
        return HostAddresses(host, [], "; ".join(errors))
    return HostAddresses(host, [], "no A/AAAA records")


def _normalise_host(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()
