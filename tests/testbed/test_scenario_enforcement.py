"""The scenario format's enforcement keys: what the parser accepts, what it refuses, and what
the policy hosts answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from research.errors import ScenarioError
from research.testbed import load_scenario
from research.testbed.https_server import REDIRECT_TARGET, respond
from research.testbed.scenario import Certificate, DnssecMode, PolicyServe

BASE = """\
[[hosts]]
name = "mx.a.test"
addresses = ["127.0.202.1"]
{host}
expect = {{ status = "starttls", versions = ["TLS 1.2", "TLS 1.3"]{host_expect} }}

[[hosts]]
name = "mx.plain.test"
addresses = ["127.0.202.2"]
starttls = false
{plain}
expect = {{ status = "no_starttls" }}

[[domains]]
name = "a.test"
mx = [[10, "mx.a.test"], [20, "mx.plain.test"]]
{domain}
expect = {{ dns_status = "mx"{domain_expect} }}
{mta_sts}
"""


def scenario(tmp_path: Path, **parts: str) -> Path:
    text = BASE.format(**{"host": "", "host_expect": "", "plain": "", "domain": "",
                          "domain_expect": "", "mta_sts": "", **parts})
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def test_enforcement_keys_parse(tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        host='certificate = "untrusted"\nsend_ca = true\ncertificate_names = ["mx.a.test", '
             '"a.test"]\ncertificate_key = "ecdsa-p256"\ntlsa = ["3 1 1 match", "2 0 1 ABCD"]\n'
             'tlsa_dnssec = "bogus"',
        host_expect=', webpki = "certificate-not-trusted", dane = "dnssec-invalid"',
        plain='tlsa = ["3 1 1 mismatch"]',
        domain='dnssec = "unsigned"\ntlsrpt = ["v=TLSRPTv1; rua=mailto:r@a.test"]',
        domain_expect=', mta_sts = "enforce-breaks", mta_sts_refused = ["mx.a.test"], '
                      'tlsrpt = "valid", dane = "mx-insecure", cert_matches_domain = true',
        mta_sts='[domains.mta_sts]\ntxt = ["v=STSv1; id=1"]\naddress = "127.0.203.1"\n'
                'policy = "version: STSv1"\nserve = "redirect"\ncertificate = "expired"')
    got = load_scenario(path)
    host = got.host("mx.a.test")
    assert host.certificate is Certificate.UNTRUSTED and host.send_ca
    assert host.leaf_names == ("mx.a.test", "a.test")
    assert host.tlsa == ("3 1 1 match", "2 0 1 abcd") and host.tlsa_dnssec is DnssecMode.BOGUS
    assert (host.expect_webpki, host.expect_dane) == ("certificate-not-trusted", "dnssec-invalid")
    domain = got.domain("a.test")
    assert domain.dnssec is DnssecMode.UNSIGNED and domain.tlsrpt == (
        "v=TLSRPTv1; rua=mailto:r@a.test",)
    assert domain.mta_sts is not None and domain.mta_sts.host == "mta-sts.a.test"
    assert (domain.mta_sts.serve, domain.mta_sts.certificate) == (PolicyServe.REDIRECT,
                                                                  Certificate.EXPIRED)
    assert domain.expect.mta_sts_refused == ("mx.a.test",)
    assert domain.expect.cert_matches_domain is True
    assert got.policy_hosts() == [domain.mta_sts]


@pytest.mark.parametrize(("parts", "message"), [
    ({"host": 'certificate = "expired"', "host_expect": ', webpki = "ok"'},
     "expect.webpki is 'ok' but the host's settings give 'certificate-expired'"),
    ({"host": 'certificate_names = ["other.test"]', "host_expect": ', webpki = "ok"'},
     "settings give 'certificate-host-mismatch'"),
    ({"plain": 'tlsa = ["3 1 1 match"]'}, "'match' needs a host that serves TLS"),
    ({"host": 'tlsa = ["3 1 1 zz"]'}, "is not 'usage selector matching-type data'"),
    ({"host": 'tlsa = ["3 2 1 match"]'}, "'match' needs selector 0/1"),
    ({"host": 'tlsa_dnssec = "bogus"'}, "tlsa_dnssec without tlsa records"),
    ({"plain": 'send_ca = true'}, "'send_ca' needs behaviour 'normal' with starttls = true"),
    ({"domain_expect": ', mta_sts = "great"'}, "expect.mta_sts is 'great'"),
    ({"mta_sts": '[domains.mta_sts]\naddress = "127.0.202.1"'}, "duplicate address"),
    ({"mta_sts": '[domains.mta_sts]\naddress = "::1"'}, "needs an address in 127.0.0.0/8"),
    ({"mta_sts": '[domains.mta_sts]\ncertificate = "client_only"'}, "is for SMTP hosts"),
    ({"mta_sts": '[domains.mta_sts]\nserve = "teapot"'}, "serve is 'teapot'"),
])
def test_bad_enforcement_keys_are_refused(tmp_path: Path, parts: dict[str, str],
                                          message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario(tmp_path, **parts))
    assert message in str(caught.value)


def test_policy_host_answers(tmp_path: Path) -> None:
    path = scenario(tmp_path, mta_sts='[domains.mta_sts]\naddress = "127.0.203.1"\n'
                                      'policy = "version: STSv1\\n"\ncontent_type = "text/x"')
    policy = load_scenario(path).policy_hosts()[0]
    ok = respond(policy, b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    assert ok == (b"HTTP/1.1 200 OK\r\nContent-Type: text/x\r\nContent-Length: 15\r\n"
                  b"Connection: close\r\n\r\nversion: STSv1\n")
    assert respond(policy, b"GET /other HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404 ")
    assert respond(policy, b"garbage\r\n\r\n").startswith(b"HTTP/1.1 404 ")
    from dataclasses import replace
    moved = respond(replace(policy, serve=PolicyServe.REDIRECT),
                    b"GET /.well-known/mta-sts.txt HTTP/1.1\r\n\r\n")
    assert moved.startswith(b"HTTP/1.1 301 ") and f"Location: {REDIRECT_TARGET}".encode() in moved


def test_shipped_scenarios_still_load() -> None:
    for name in ("cases", "isc-2019", "enforcement"):
        load_scenario(name)
    enforcement = load_scenario("enforcement")
    # Every RFC 8460 certificate result type has a host.
    assert {h.expect_webpki for h in enforcement.hosts} == {
        "ok", "starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
        "certificate-not-trusted", "validation-failure"}
