"""The testbed's scenario files: the shipped ones load, their ground truth holds, and every
broken rule is refused with a one-line message.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.testbed_clients import CASES, TINY

import research.testbed
from research.errors import ScenarioError
from research.store.schema import HostStatus
from research.testbed import (
    Testbed,
    list_scenarios,
    load_scenario,
    scenarios_dir,
)
from research.testbed.scenario import Host

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


def test_hosts_share_an_address_only_as_one_server(tmp_path: Path) -> None:
    second = ('[[hosts]]\nname = "mx2.tiny.test"\naddresses = ["::1"]\n'
              'expect = { status = "starttls", versions = ["TLS 1.2", "TLS 1.3"] }\n')
    text = TINY.replace('"127.0.201.1"', '"::1"') + second
    text = text.replace('mx = [[10, "mx.tiny.test"]]',
                        'mx = [[10, "mx.tiny.test"], [20, "mx2.tiny.test"]]')
    path = tmp_path / "v6.toml"
    # Two names of one server, as a provider's pool has: one listener answers for both.
    path.write_text(text)
    shared = load_scenario(path)
    assert [h.name for h in shared.hosts_at("::1")] == ["mx.tiny.test", "mx2.tiny.test"]
    assert shared.addresses() == ["::1"]
    # Two different servers cannot both answer on one address.
    path.write_text(text.replace('addresses = ["::1"]\nexpect',
                                 'addresses = ["::1"]\nsoftware = "Exim"\nexpect'))
    with pytest.raises(ScenarioError, match=re.escape(
            "address ::1 is shared by hosts mx.tiny.test and mx2.tiny.test, which differ in "
            "'software'")):
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
