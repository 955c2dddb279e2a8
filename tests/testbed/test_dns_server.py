"""The testbed's DNS server, asked with a real client (dnspython): MX order, addresses, every DNS
status, TCP and IPv6.
"""

from __future__ import annotations

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.resolver
import pytest
from support.testbed_clients import rcode, resolver

from research.testbed import (
    Testbed,
)

# -- DNS -------------------------------------------------------------------------------------

def test_mx_answers_in_preference_order(isc_testbed: Testbed, cases_testbed: Testbed) -> None:
    answer = resolver(isc_testbed).resolve("globemail.test", "MX")
    records = sorted((r.preference, r.exchange.to_text()) for r in answer)
    assert records == [(5, "in1.smtp.globemail.test."), (10, "in2.smtp.globemail.test.")]
    backup = resolver(cases_testbed).resolve("backup-mx.test", "MX")
    assert sorted((r.preference, r.exchange.to_text()) for r in backup) == [
        (10, "mx.refused.test."), (20, "mx.tls10-13.test.")]


def test_shared_mx_host_and_addresses(isc_testbed: Testbed) -> None:
    res = resolver(isc_testbed)
    for domain in ("bluemail.test", "bluemail-uk.test", "sympa.test"):
        assert [r.exchange.to_text() for r in res.resolve(domain, "MX")] == ["mx1.bluemail.test."]
    assert sorted(r.address for r in res.resolve("mx1.bluemail.test", "A")) == [
        "127.0.4.1", "127.0.4.2"]
    with pytest.raises(dns.resolver.NoAnswer):
        res.resolve("mx1.bluemail.test", "AAAA")


def test_every_isc_host_resolves_to_its_addresses(isc_testbed: Testbed) -> None:
    res = resolver(isc_testbed)
    for spec in isc_testbed.scenario.hosts:
        got = sorted(r.address for r in res.resolve(spec.name, "A"))
        assert got == sorted(spec.addresses), spec.name


def test_dns_statuses(cases_testbed: Testbed) -> None:
    res = resolver(cases_testbed)
    null = list(res.resolve("null-mx.test", "MX"))
    assert [(r.preference, r.exchange.to_text()) for r in null] == [(0, ".")]
    with pytest.raises(dns.resolver.NoAnswer):
        res.resolve("no-mail.test", "MX")
    with pytest.raises(dns.resolver.NoAnswer):
        res.resolve("no-mail.test", "A")
    with pytest.raises(dns.resolver.NoAnswer):  # implicit MX: no MX, but an address
        res.resolve("implicit-mx.test", "MX")
    assert [r.address for r in res.resolve("implicit-mx.test", "A")] == ["127.0.200.6"]
    with pytest.raises(dns.resolver.NXDOMAIN):
        res.resolve("nxdomain.test", "MX")
    with pytest.raises(dns.resolver.NXDOMAIN):
        res.resolve("undefined.tls10-only.test", "A")
    assert rcode(cases_testbed, "servfail.test") == dns.rcode.SERVFAIL
    assert rcode(cases_testbed, "servfail.test", tcp=True) == dns.rcode.SERVFAIL
    assert rcode(cases_testbed, "example.com") == dns.rcode.REFUSED
    # The host without addresses exists, with no address records: the scanner's "unresolved".
    for rdtype in ("A", "AAAA"):
        with pytest.raises(dns.resolver.NoAnswer):
            res.resolve("mx.unresolved.test", rdtype)


def test_dns_timeout_domain_gets_no_answer(cases_testbed: Testbed) -> None:
    query = dns.message.make_query("dns-timeout.test", "MX")
    with pytest.raises(dns.exception.Timeout):
        dns.query.udp(query, cases_testbed.dns_host, port=cases_testbed.dns_port, timeout=0.3)


def test_dns_over_tcp_and_ipv6_address(cases_testbed: Testbed) -> None:
    query = dns.message.make_query("mx.tls10-13.test", "AAAA")
    response = dns.query.tcp(query, cases_testbed.dns_host, port=cases_testbed.dns_port,
                             timeout=2.0)
    assert response.rcode() == dns.rcode.NOERROR
    assert [rr.address for rr in response.answer[0]] == ["::1"]
    assert [r.address for r in resolver(cases_testbed).resolve("mx.tls10-13.test", "A")] == [
        "127.0.200.7"]
