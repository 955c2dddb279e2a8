"""The testbed: real DNS and SMTP servers on loopback, checked with real clients (dnspython,
smtplib, ssl), plus the scenario files' ground truth and validation, and the process life cycle.

Nothing here sends MAIL/RCPT/DATA to the shared ``cases_testbed``: other tests read its log and
check that no client ever did.
"""

from __future__ import annotations

import csv
import errno
import ipaddress
import os
import smtplib
import socket
import ssl
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.resolver
import pytest
from cryptography import x509
from support.foreground import foreground, interrupt

import research.testbed
from research.errors import ScenarioError
from research.store.schema import HostStatus
from research.testbed import (
    DEFAULT_SMTP_PORT,
    Testbed,
    TestbedError,
    list_scenarios,
    load_scenario,
    scenarios_dir,
)
from research.testbed.scenario import Host

CASES = load_scenario("cases")
VERSIONS = {
    "TLS 1.0": ssl.TLSVersion.TLSv1,
    "TLS 1.1": ssl.TLSVersion.TLSv1_1,
    "TLS 1.2": ssl.TLSVersion.TLSv1_2,
    "TLS 1.3": ssl.TLSVersion.TLSv1_3,
}
_OPENSSL_NAMES = {"TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2",
                  "TLSv1.3": "TLS 1.3"}

TINY = """\
[scenario]
name = "tiny"
description = "one host, one domain"

[[hosts]]
name = "mx.tiny.test"
addresses = ["127.0.201.1"]
tls_min = "1.2"
tls_max = "1.3"
expect = { status = "starttls", versions = ["TLS 1.2", "TLS 1.3"] }

[[domains]]
name = "tiny.test"
mx = [[10, "mx.tiny.test"]]
expect = { dns_status = "mx" }
"""


# -- helpers ---------------------------------------------------------------------------------

def resolver(tb: Testbed) -> dns.resolver.Resolver:
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [tb.dns_host]
    res.port = tb.dns_port
    res.lifetime = 2.0
    return res


def rcode(tb: Testbed, name: str, rdtype: str = "MX", *, tcp: bool = False) -> int:
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, tb.dns_host, port=tb.dns_port, timeout=2.0).rcode()


def client_context(version: str | None = None, *, cafile: Path | None = None,
                   check_hostname: bool = False) -> ssl.SSLContext:
    """A client context; pinned to one version if given, accepting anything TLS 1.0 needs."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = check_hostname
    if cafile is None:
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cafile=str(cafile))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        if version is not None:
            ctx.minimum_version = ctx.maximum_version = VERSIONS[version]
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


def smtp(tb: Testbed, ip: str) -> smtplib.SMTP:
    return smtplib.SMTP(ip, tb.smtp_port, local_hostname="client.test", timeout=5)


def starttls(tb: Testbed, host: Host, ip: str | None = None, *,
             context: ssl.SSLContext | None = None) -> tuple[str, bytes]:
    """STARTTLS handshake with ``host``; returns (version label, leaf certificate DER)."""
    with smtp(tb, ip or host.addresses[0]) as client:
        client.ehlo()
        code, _ = client.docmd("STARTTLS")
        assert code == 220
        assert client.sock is not None
        tls = (context or client_context()).wrap_socket(client.sock, server_hostname=host.name)
        try:
            cert = tls.getpeercert(binary_form=True)
            version = tls.version()
            assert cert is not None and version is not None
            tls.sendall(b"QUIT\r\n")
            return _OPENSSL_NAMES[version], cert
        finally:
            tls.close()


def host(name: str) -> Host:
    return CASES.host(name)


def free_to_bind(ip: str, port: int, kind: int = socket.SOCK_STREAM) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, kind) as sock:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError as err:
            assert err.errno == errno.EADDRINUSE
            return False
    return True


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture
def tiny_testbed(tiny_path: Path) -> Iterator[Testbed]:
    with Testbed.start(tiny_path) as tb:
        yield tb


# -- scenario files --------------------------------------------------------------------------

def test_shipped_scenarios_are_listed_and_load() -> None:
    assert {"isc-2019", "cases", "hostile", "blocked"} <= set(list_scenarios())
    for name in list_scenarios():
        assert load_scenario(name).name == name


def test_shipped_scenarios_are_the_files_in_the_package() -> None:
    """Discovery is a listing of the package's scenarios directory: a file added there is a
    scenario, with no list to keep in step."""
    folder = scenarios_dir()
    assert folder == Path(research.testbed.__file__).parent / "scenarios"
    assert list_scenarios() == sorted(p.stem for p in folder.glob("*.toml"))
    with pytest.raises(ScenarioError) as err:
        load_scenario("no-such-scenario")
    assert str(err.value) == ("unknown scenario 'no-such-scenario' (available: "
                              f"{', '.join(list_scenarios())})")


def test_isc_2019_ground_truth() -> None:
    isc = load_scenario("isc-2019")
    assert [rank for rank, _ in isc.domain_list()] == list(range(1, 101))
    counts = isc.counts()
    assert (counts.domains, counts.no_starttls, counts.no_tls_1_2) == (100, 9, 1)
    assert all(d.expect_dns_status.value == "mx" for d in isc.domains)

    def first_host(domain_name: str) -> Host:
        return isc.host(isc.domain(domain_name).mail_hosts[0])

    no_tls = [d for d in isc.domains if not first_host(d.name).serves_tls]
    tls10_only = [d for d in isc.domains if first_host(d.name).versions == ("TLS 1.0",)]
    with_12 = [d for d in isc.domains if "TLS 1.2" in first_host(d.name).versions]
    assert (len(no_tls), len(tls10_only), len(with_12)) == (9, 1, 90)
    # Every domain's hosts agree, so "first host" above stands for the domain.
    for domain in isc.domains:
        assert len({isc.host(h).versions for h in domain.mail_hosts}) == 1
    # Clean scenario: every TLS host has a CA-signed certificate for its name.
    assert all(h.certificate.value == "ca" for h in isc.hosts if h.serves_tls)
    # A realistic, smaller set of servers, shared by many domains.
    addresses = [ip for h in isc.hosts for ip in h.addresses]
    assert 25 <= len(addresses) <= 35
    assert any(len(h.addresses) == 2 for h in isc.hosts)
    mx = [h for d in isc.domains for h in d.mail_hosts]
    assert max(mx.count(h.name) for h in isc.hosts) >= 15
    names = [d.name for d in isc.domains] + [h.name for h in isc.hosts]
    assert all(n.endswith(".test") for n in names)


def test_cases_cover_every_status() -> None:
    statuses = {d.expect_dns_status.value for d in CASES.domains}
    assert statuses == {"mx", "implicit_mx", "null_mx", "no_mail", "nxdomain", "dns_error"}
    # Every status a server can cause; opted_out is the scanner's own choice.
    assert {h.expect_status for h in CASES.hosts} == set(HostStatus) - {HostStatus.OPTED_OUT}
    ranges = {h.versions for h in CASES.hosts if h.serves_tls}
    for want in [("TLS 1.0",), ("TLS 1.1",), ("TLS 1.0", "TLS 1.1"), ("TLS 1.2",), ("TLS 1.3",),
                 ("TLS 1.2", "TLS 1.3"), ("TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")]:
        assert want in ranges
    kinds = {h.certificate.value for h in CASES.hosts if h.certificate}
    assert kinds == {"ca", "self_signed", "wrong_name", "expired"}
    assert len(CASES.hosts) <= 15
    assert any("::1" in h.addresses for h in CASES.hosts)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('tls_max = "1.3"', 'tls_max = "1.3"\ntls_mn = "1.0"', "unknown key 'tls_mn'"),
        ('tls_min = "1.2"', 'tls_min = "1.4"', "tls_min is '1.4'"),
        ('tls_min = "1.2"', "tls_min = 1.2", "tls_min is 1.2"),
        ('tls_max = "1.3"', 'tls_max = "1.1"', "newer than tls_max"),
        ('versions = ["TLS 1.2", "TLS 1.3"]', 'versions = ["TLS 1.2"]', "expect.versions"),
        ('versions = ["TLS 1.2", "TLS 1.3"]', 'versions = ["1.2", "1.3"]', "labels like"),
        ('status = "starttls"', 'status = "no_starttls"', "expect.status is 'no_starttls'"),
        ('[[domains]]', '[[hosts]]\nname = "MX.tiny.test"\naddresses = []\n'
         'expect = { status = "unresolved" }\n[[domains]]', "duplicate host name"),
        ('expect = { dns_status = "mx" }\n', 'expect = { dns_status = "mx" }\n[[domains]]\n'
         'name = "tiny.test"\nexpect = { dns_status = "no_mail" }\n', "duplicate domain name"),
        ('mx = [[10, "mx.tiny.test"]]', 'mx = [[10, "mx.other.test"]]', "not defined"),
        ('name = "tiny.test"', 'name = "tiny.example.com"', "not a host name under .test"),
        ('"127.0.201.1"', '"10.0.0.1"', "must be in 127.0.0.0/8"),
        ('"127.0.201.1"', '"127.0.0.1"', "not 127.0.0.1"),
        ('"127.0.201.1"', '"2001:db8::1"', "the only IPv6 address is ::1"),
        ('"127.0.201.1"', '"127.0.201.1", "127.0.201.1"', "duplicate host mx.tiny.test: address"),
        ('[[domains]]', '[[hosts]]\nname = "mx2.tiny.test"\naddresses = ["127.0.201.2"]\n'
         'starttls = false\nexpect = { status = "no_starttls" }\n[[domains]]',
         "not used by any domain"),
        ('[[domains]]', 'oops = [\n[[domains]]', "not valid TOML"),
        ('dns_status = "mx"', 'dns_status = "null_mx"', "expect.dns_status is 'null_mx'"),
        ('description = "one host, one domain"',
         'description = "x"\n[scenario.expect]\ndomains = 2', "[scenario.expect] domains = 2"),
        ('mx = [[10, "mx.tiny.test"]]\nexpect = { dns_status = "mx" }',
         'implicit_mx = true\nexpect = { dns_status = "implicit_mx" }', "implicit_mx needs"),
        ('mx = [[10, "mx.tiny.test"]]', 'mx = [[10, "mx.tiny.test"]]\nnull_mx = true',
         "exclude each other"),
        ('expect = { dns_status = "mx" }', "", "missing key 'expect'"),
        ('tls_min = "1.2"', 'tls_min = "1.2"\nbehaviour = "sleepy"', "behaviour is 'sleepy'"),
        ('tls_min = "1.2"\ntls_max = "1.3"', 'behaviour = "greeting_error"', "needs a 'greeting'"),
        ('tls_min = "1.2"', 'tls_min = "1.2"\nciphers = "NO-SUCH-CIPHER"', "accepts no cipher"),
        ('tls_min = "1.2"', 'tls_min = "1.2"\nstarttls = false', "needs behaviour 'normal'"),
        ('mx = [[10, "mx.tiny.test"]]', 'mx = [[10, "mx.tiny.test", 3]]', "each mx entry"),
        ('tls_min = "1.2"\ntls_max = "1.3"', 'behaviour = "tarpit"\nflood_bytes = 10',
         "'flood_bytes' applies to behaviours"),
        ('tls_min = "1.2"\ntls_max = "1.3"', 'behaviour = "endless_line"\nflood_bytes = 0',
         "flood_bytes must be a positive integer"),
        ('mx = [[10, "mx.tiny.test"]]', 'mx = [[10, "mx.tiny.test"]]\nmixed_null_mx = "yes"',
         "mixed_null_mx must be true or false"),
        ('[[domains]]', '[[hosts]]\nname = "127.0.201.9"\naddresses = ["127.0.201.9"]\n'
         'expect = { status = "unresolved" }\n[[domains]]', "has no addresses of its own"),
        ('tls_max = "1.3"', 'tls_max = "1.3"\naliases = ["tiny.test"]', "cannot share its name"),
        ('dns_status = "mx" }', 'dns_status = "mx", error = 3 }', "expect.error must be a string"),
        ('dns_status = "mx" }', 'dns_status = "mx" }\ndns = "servfail"', "serves no records"),
    ],
)
def test_bad_scenarios_are_rejected(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in TINY
    path = tmp_path / "bad.toml"
    path.write_text(TINY.replace(old, new, 1))
    with pytest.raises(ScenarioError, match=r"^bad\.toml: ") as info:
        load_scenario(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_ipv6_loopback_on_one_host_only(tmp_path: Path) -> None:
    second = ('[[hosts]]\nname = "mx2.tiny.test"\naddresses = ["::1"]\n'
              'expect = { status = "starttls", versions = ["TLS 1.2", "TLS 1.3"] }\n')
    text = TINY.replace('"127.0.201.1"', '"::1"') + second
    text = text.replace('mx = [[10, "mx.tiny.test"]]',
                        'mx = [[10, "mx.tiny.test"], [20, "mx2.tiny.test"]]')
    path = tmp_path / "v6.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match="duplicate address '::1'"):
        load_scenario(path)
    path.write_text(text.replace('addresses = ["::1"]\nexpect',
                                 'addresses = ["127.0.201.2"]\nexpect'))
    assert load_scenario(path).host("mx.tiny.test").addresses == ("::1",)


@pytest.mark.testbed
def test_unknown_scenario_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"unknown scenario 'nope'.*isc-2019"):
        load_scenario("nope")
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "missing.toml")
    with pytest.raises(ScenarioError):
        Testbed.start("nope")


def test_tiny_scenario_is_valid(tiny_path: Path) -> None:
    tiny = load_scenario(tiny_path)
    assert tiny.name == "tiny" and tiny.domain_list() == [(1, "tiny.test")]


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


# -- SMTP behaviours -------------------------------------------------------------------------

def test_normal_host_session(cases_testbed: Testbed) -> None:
    spec = host("mx.tls10-13.test")
    with smtp(cases_testbed, spec.addresses[0]) as client:
        code, reply = client.ehlo()
        assert code == 250
        keywords = reply.decode().splitlines()
        assert keywords[0] == "mx.tls10-13.test"
        assert {"PIPELINING", "STARTTLS", "8BITMIME"} <= set(keywords)
        assert not any(k.startswith("AUTH") for k in keywords)
        client.starttls(context=client_context())
        code, reply = client.ehlo()  # a fresh EHLO after TLS
        assert code == 250 and "STARTTLS" not in reply.decode()
        assert client.noop()[0] == 250
        assert client.docmd("STARTTLS")[0] == 503
        assert client.quit()[0] == 221


def test_banner_names_host_and_software(cases_testbed: Testbed) -> None:
    with socket.create_connection(("127.0.200.7", cases_testbed.smtp_port), timeout=5) as sock:
        assert sock.recv(512) == b"220 mx.tls10-13.test ESMTP Exim 4.92\r\n"
        sock.sendall(b"QUIT\r\n")


def test_ipv6_host(cases_testbed: Testbed) -> None:
    with smtp(cases_testbed, "::1") as client:
        assert "STARTTLS" in client.ehlo()[1].decode()
        client.quit()
    assert starttls(cases_testbed, host("mx.tls10-13.test"), "::1")[0] == "TLS 1.3"


@pytest.mark.testbed
def test_server_accepts_no_mail(tiny_testbed: Testbed) -> None:
    with smtp(tiny_testbed, "127.0.201.1") as client:
        client.ehlo()
        assert client.mail("someone@client.test")[0] == 502
        assert client.rcpt("user@tiny.test")[0] == 503
        assert client.docmd("DATA")[0] == 503
        assert client.docmd("AUTH", "PLAIN")[0] == 502
        client.quit()


def test_no_starttls(cases_testbed: Testbed) -> None:
    with smtp(cases_testbed, "127.0.200.8") as client:
        code, reply = client.ehlo()
        assert code == 250 and "STARTTLS" not in reply.decode()
        assert client.docmd("STARTTLS")[0] == 502
        client.quit()


def test_starttls_rejected(cases_testbed: Testbed) -> None:
    with smtp(cases_testbed, "127.0.200.9") as client:
        assert "STARTTLS" in client.ehlo()[1].decode()
        code, reply = client.docmd("STARTTLS")
        assert (code, reply) == (454, b"4.7.0 TLS not available due to temporary reason")
        client.quit()


def test_tls_garbage(cases_testbed: Testbed) -> None:
    with pytest.raises(ssl.SSLError):
        starttls(cases_testbed, host("mx.tls-garbage.test"))


def test_greeting_error(cases_testbed: Testbed) -> None:
    with pytest.raises(smtplib.SMTPConnectError) as info:
        smtp(cases_testbed, "127.0.200.11")
    assert info.value.smtp_code == 554
    with socket.create_connection(("127.0.200.11", cases_testbed.smtp_port), timeout=5) as sock:
        assert sock.recv(512).startswith(b"554 5.7.1 ")
        sock.sendall(b"EHLO client.test\r\n")
        assert sock.recv(512).startswith(b"503 ")
        assert sock.recv(512) == b""  # closed


def test_tarpit_never_speaks(cases_testbed: Testbed) -> None:
    with socket.create_connection(("127.0.200.12", cases_testbed.smtp_port), timeout=5) as sock:
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(512)


def test_down_host_refuses(cases_testbed: Testbed) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.200.13", cases_testbed.smtp_port), timeout=5)


def test_every_isc_address_greets(isc_testbed: Testbed) -> None:
    for spec, ip in isc_testbed.scenario.targets():
        assert ip is not None
        with smtp(isc_testbed, ip) as client:
            assert ("STARTTLS" in client.ehlo()[1].decode()) is spec.serves_tls, spec.name
            client.quit()


# -- TLS versions and certificates -----------------------------------------------------------

TLS_HOSTS = [h for h in CASES.hosts if h.serves_tls and h.addresses]


@pytest.mark.parametrize("spec", TLS_HOSTS, ids=lambda h: h.name)
def test_tls_version_range_is_enforced(cases_testbed: Testbed, spec: Host) -> None:
    accepted = []
    for version in VERSIONS:
        try:
            got, _ = starttls(cases_testbed, spec, context=client_context(version))
        except (ssl.SSLError, ConnectionError):
            continue
        assert got == version
        accepted.append(version)
    assert tuple(accepted) == spec.versions == spec.expect_versions


def test_isc_tls_1_0_only_provider(isc_testbed: Testbed) -> None:
    spec = isc_testbed.scenario.host("mx1.libertel.test")
    assert starttls(isc_testbed, spec, context=client_context("TLS 1.0"))[0] == "TLS 1.0"
    with pytest.raises(ssl.SSLError):
        starttls(isc_testbed, spec, context=client_context("TLS 1.2"))
    with pytest.raises(ssl.SSLError):  # what a sender requiring TLS 1.2 would see
        starttls(isc_testbed, spec, context=ssl.create_default_context())


def test_ca_signed_certificate_verifies(cases_testbed: Testbed) -> None:
    spec = host("mx.tls10-13.test")
    ctx = client_context(cafile=cases_testbed.ca_cert_path, check_hostname=True)
    _, der = starttls(cases_testbed, spec, context=ctx)
    cert = x509.load_der_x509_certificate(der)
    ca = x509.load_pem_x509_certificate(cases_testbed.ca_cert_pem)
    assert cert.issuer == ca.subject
    assert "starttls-survey testbed CA" in ca.subject.rfc4514_string()
    assert _sans(cert) == ["mx.tls10-13.test"]


def test_self_signed_certificate(cases_testbed: Testbed) -> None:
    spec = host("mx.tls12-only.test")
    ctx = client_context(cafile=cases_testbed.ca_cert_path)
    with pytest.raises(ssl.SSLCertVerificationError, match="self-signed"):
        starttls(cases_testbed, spec, context=ctx)
    cert = x509.load_der_x509_certificate(starttls(cases_testbed, spec)[1])
    assert cert.issuer == cert.subject and _sans(cert) == ["mx.tls12-only.test"]


def test_wrong_name_certificate(cases_testbed: Testbed) -> None:
    spec = host("mx.tls13-only.test")
    chain_only = client_context(cafile=cases_testbed.ca_cert_path)
    cert = x509.load_der_x509_certificate(starttls(cases_testbed, spec, context=chain_only)[1])
    assert _sans(cert) == ["wrong.mx.tls13-only.test"]
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        starttls(cases_testbed, spec,
                 context=client_context(cafile=cases_testbed.ca_cert_path, check_hostname=True))


def test_expired_certificate(cases_testbed: Testbed) -> None:
    spec = host("mx.tls10-11.test")
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        starttls(cases_testbed, spec, context=client_context(cafile=cases_testbed.ca_cert_path))
    cert = x509.load_der_x509_certificate(starttls(cases_testbed, spec)[1])
    assert cert.not_valid_after_utc.timestamp() < time.time()


def test_isc_certificates_are_clean(isc_testbed: Testbed) -> None:
    for name in ("in1.smtp.globemail.test", "mx.eurohost.test", "mx1.libertel.test"):
        spec = isc_testbed.scenario.host(name)
        ctx = client_context(cafile=isc_testbed.ca_cert_path, check_hostname=True)
        starttls(isc_testbed, spec, context=ctx)


def _sans(cert: x509.Certificate) -> list[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return ext.value.get_values_for_type(x509.DNSName)


# -- the Testbed handle and the process life cycle -------------------------------------------

def test_testbed_attributes(cases_testbed: Testbed, tmp_path: Path) -> None:
    tb = cases_testbed
    assert tb.running and tb.scenario.name == "cases"
    assert tb.resolver == f"{tb.dns_host}:{tb.dns_port}"
    assert ipaddress.ip_address(tb.dns_host).is_loopback
    assert tb.ca_cert_path.read_bytes() == tb.ca_cert_pem
    assert tb.domains() == CASES.domain_list()
    path = tb.write_domain_list(tmp_path / "sub" / "domains.csv")
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["rank", "domain"]
    assert rows[1:] == [[str(r), d] for r, d in CASES.domain_list()]


@pytest.mark.testbed
def test_stop_frees_everything(tiny_path: Path) -> None:
    tb = Testbed.start(tiny_path)
    pid, dns_port, smtp_port, workdir = tb.pid, tb.dns_port, tb.smtp_port, tb.ca_cert_path.parent
    with smtp(tb, "127.0.201.1") as client:
        client.ehlo()
        client.starttls(context=client_context())
        client.quit()
    assert tb.stats()[("mx.tiny.test", "127.0.201.1")].sessions == 1
    tb.stop()
    tb.stop()  # idempotent
    assert not tb.running and process_gone(pid)
    assert not workdir.exists()
    assert tb.ca_cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    final = tb.stats()[("mx.tiny.test", "127.0.201.1")]
    assert (final.sessions, final.tls_handshakes) == (1, 1)
    assert free_to_bind("127.0.201.1", smtp_port)
    assert free_to_bind(tb.dns_host, dns_port)
    assert free_to_bind(tb.dns_host, dns_port, socket.SOCK_DGRAM)


@pytest.mark.testbed
def test_context_exit_on_error_stops_the_server(tiny_path: Path) -> None:
    with pytest.raises(RuntimeError), Testbed.start(tiny_path) as tb:
        pid = tb.pid
        raise RuntimeError("boom")
    assert process_gone(pid)


@pytest.mark.testbed
def test_busy_smtp_port_falls_back_unless_explicit(tiny_path: Path) -> None:
    with Testbed.start(tiny_path) as first, Testbed.start(tiny_path) as second:
        assert first.smtp_port != second.smtp_port
        for tb in (first, second):
            with smtp(tb, "127.0.201.1") as client:
                assert client.ehlo()[0] == 250
                client.quit()
        with pytest.raises(TestbedError, match=f"port {first.smtp_port} is busy"):
            Testbed.start(tiny_path, smtp_port=first.smtp_port)
        with pytest.raises(TestbedError, match=f"DNS port {first.dns_port}"):
            Testbed.start(tiny_path, dns_port=first.dns_port)
    assert DEFAULT_SMTP_PORT == 2525


@pytest.mark.testbed
def test_dns_must_listen_on_loopback(tiny_path: Path) -> None:
    with pytest.raises(TestbedError, match="loopback"):
        Testbed.start(tiny_path, dns_host="192.0.2.1")


@pytest.mark.testbed
def test_server_process_runs_in_its_own_directory(tiny_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The child neither runs in nor imports from a clone: its working directory is the
    testbed's temporary one and its PYTHONPATH is the caller's; a scenario path relative to the
    caller's directory still reaches it."""
    monkeypatch.chdir(tiny_path.parent)
    with Testbed.start(tiny_path.name) as tb:
        workdir = tb.log_path.parent
        assert Path(os.readlink(f"/proc/{tb.pid}/cwd")) == workdir
        environ = Path(f"/proc/{tb.pid}/environ").read_bytes().split(b"\0")
        child_path = next((e for e in environ if e.startswith(b"PYTHONPATH=")), None)
        mine = os.environ.get("PYTHONPATH")
        assert child_path == (None if mine is None else f"PYTHONPATH={mine}".encode())
        assert tb.domains() == [(1, "tiny.test")]
        with smtp(tb, "127.0.201.1") as client:
            assert client.ehlo()[0] == 250


def test_foreground_mode_prints_how_to_scan_and_stops_on_ctrl_c(
    tiny_path: Path, tmp_path: Path
) -> None:
    domains = tmp_path / "domains.csv"
    with foreground([sys.executable, "-m", "research.testbed", "up", "--scenario", tiny_path,
                     "--dns-port", "0", "--smtp-port", "0", "--domain-list", domains],
                    cwd=tmp_path) as (proc, text):
        assert f"starttls-survey scan --domains {domains} --resolver 127.0.0.1:" in text
        assert domains.read_text().splitlines() == ["rank,domain", "1,tiny.test"]
        assert "stopped" in interrupt(proc)
