"""The DNS client every lookup goes through: the resolver, queries with retries, TXT records.

The resolver is injectable: the system's by default, or explicit ``IP[:PORT]`` servers for a
testbed or another vantage point. SERVFAIL and timeouts are retried here, once for all lookups.
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


@dataclass
class TxtLookup:
    name: str
    records: list[str] = field(default_factory=list)
    """Every TXT record, each record's strings joined (RFC 7208 §3.3 style), in DNS order."""
    error: str | None = None
    """The DNS error; None for an answer, NXDOMAIN or no records."""


def lookup_txt(name: str, resolver: dns.resolver.Resolver,
               retries: int = DNS_RETRIES) -> TxtLookup:
    """The TXT records at ``name``. Never raises for DNS failures (they are in ``error``)."""
    try:
        answer = query(resolver, name, "TXT", retries)
    except dns.resolver.NXDOMAIN:
        return TxtLookup(name)
    except TemporaryDnsFailure as exc:
        return TxtLookup(name, error=str(exc))
    records = [b"".join(r.strings).decode("utf-8", "replace") for r in answer.rrset or []]
    return TxtLookup(name, records)
