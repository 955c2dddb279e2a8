"""Where a domain's mail goes: MX records (RFC 5321 §5.1, RFC 7505) and the MX hosts' addresses.

Every lookup returns a value; DNS failures (NXDOMAIN, SERVFAIL, timeouts) are recorded in it,
never raised. The resolver is injectable: the system's by default, or explicit ``IP[:PORT]``
servers for a testbed or another vantage point.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from research.errors import InputError
from research.settings import DEFAULT_TIMEOUT, DNS_RETRIES
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


def parse_server(text: str) -> tuple[str, int]:
    """Parse ``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address into ``(ip, port)``.

    Raises:
        InputError: not an IP address, or a port outside 1..65535.
    """
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InputError(f"resolver {text!r} is not IP[:PORT]") from None
    port = 53
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InputError(f"resolver {text!r} has an invalid port")
        port = int(port_text)
    return host, port


def make_resolver(
    servers: Sequence[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT
) -> dns.resolver.Resolver:
    """A dnspython resolver: the system's (``/etc/resolv.conf``) or the given ``IP[:PORT]`` servers.

    ``timeout`` bounds each query to one server and, doubled, the whole lookup (retries after
    SERVFAIL or a timeout are ours, see :func:`resolve_mx`).

    Raises:
        InputError: a server is not ``IP[:PORT]``, or there are no servers and the system has no
            resolver configuration.
    """
    if servers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*parse_server(s)) for s in servers]
    else:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise InputError(
                "no system DNS resolver configured; pass --resolver IP[:PORT]"
            ) from None
    resolver.timeout = timeout
    resolver.lifetime = timeout * 2
    return resolver


def describe_resolver(resolver: dns.resolver.Resolver) -> list[str]:
    """The resolver's servers as ``IP:PORT`` strings (for ``meta``)."""
    out = []
    for ns in resolver.nameservers:
        if isinstance(ns, dns.nameserver.AddressAndPortNameserver):
            out.append(f"{ns.address}:{ns.port}")
        else:
            out.append(str(ns))
    return out


class TemporaryDnsFailure(Exception):
    """SERVFAIL or a timeout, still so after the retries; ``str()`` says which query and why."""


def query(
    resolver: dns.resolver.Resolver, name: str | dns.name.Name, rdtype: str, retries: int
) -> dns.resolver.Answer:
    """Answer for ``name``/``rdtype``, asking again after SERVFAIL or a timeout.

    NOERROR with no data is an answer whose ``rrset`` is None.

    Raises:
        dns.resolver.NXDOMAIN: the name does not exist (not retried).
        TemporaryDnsFailure: still failing after ``retries`` extra attempts.
    """
    last = ""
    for _attempt in range(retries + 1):
        try:
            return resolver.resolve(name, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            raise
        except dns.resolver.NoNameservers as exc:
            last = f"{rdtype} query: {_no_nameservers_reason(exc)}"
        except dns.exception.Timeout:
            last = f"{rdtype} query timed out"
        except dns.exception.DNSException as exc:
            last = f"{rdtype} query failed: {exc}"
    raise TemporaryDnsFailure(last)


def _no_nameservers_reason(exc: dns.resolver.NoNameservers) -> str:
    # Each error is (server, tcp, port, exception or rcode text, response); keep the reasons.
    errors = exc.kwargs.get("errors") or []
    reasons = sorted({str(e[3]) for e in errors if len(e) > 3})
    return "; ".join(reasons) if reasons else str(exc)


def _normalise_host(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


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
    if _is_ip_literal(host):
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


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True
