"""The survey against the testbed's ``enforcement`` scenario: every certificate, MTA-STS, TLS-RPT
and DANE case, checked against the ground truth written in data/testbed/enforcement.toml."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import pandas as pd
import pytest
from support.groundtruth import assert_domains_match, assert_hosts_match

from research.analysis import Policy, policy_sweep
from research.analysis.enforcement import (
    certificate_names,
    dane_hosts,
    dane_verdicts,
    enforcement_readiness,
    failure_types,
    mta_sts_verdicts,
    readiness_summary,
)
from research.scan.dnssec import (
    DnssecResolver,
    load_anchors,
    parse_anchors,
)
from research.scan.policy_fetch import fetch_policy, tls_context
from research.scan.resolver import make_resolver
from research.scan.survey import run_survey
from research.store.files import RAW_LOG_NAME
from research.store.rawlog import read_records
from research.store.results import SurveyResults, load_results
from research.store.schema import DnssecMethod, DnssecStatus, FetchStatus, Readiness, Unit
from research.testbed import Testbed
from research.testbed.scenario import Certificate, CertificateKey

TIMEOUT = 3.0


@pytest.fixture(scope="module")
def survey(enforcement_survey: Path) -> SurveyResults:
    # Read back from disk: the tests check the saved contract, not objects in memory.
    return load_results(enforcement_survey)


def expected(tb: Testbed, key: str) -> dict[str, object]:
    """Domain name → the scenario's ground truth for ``key`` (only domains that state it)."""
    truths = {d.name: getattr(d.expect, key) for d in tb.scenario.domains}
    return {name: value for name, value in truths.items() if value is not None}


# -- the survey itself ---------------------------------------------------------------------

def test_dns_statuses_and_hosts_as_ever(enforcement_testbed: Testbed, survey: SurveyResults
                                        ) -> None:
    assert_domains_match(enforcement_testbed.scenario, survey)
    assert_hosts_match(enforcement_testbed.scenario, survey)


def test_every_host_gets_its_webpki_result(enforcement_testbed: Testbed,
                                           survey: SurveyResults) -> None:
    got = dict(zip(survey.hosts["mx_host"], survey.hosts["webpki_result"], strict=True))
    want = {h.name: h.expect_webpki for h in enforcement_testbed.scenario.hosts}
    assert got == want
    # Every RFC 8460 certificate result type appears, and success too.
    assert set(got.values()) == {"ok", "starttls-not-supported", "certificate-host-mismatch",
                                 "certificate-expired", "certificate-not-trusted",
                                 "validation-failure"}


def test_certificate_columns_follow_the_certificate_kind(enforcement_testbed: Testbed,
                                                         survey: SurveyResults) -> None:
    hosts = survey.hosts.set_index("mx_host")
    for spec in enforcement_testbed.scenario.hosts:
        row = hosts.loc[spec.name]
        if spec.certificate is None:
            assert pd.isna(row["cert_chain_trusted"]) and pd.isna(row["cert_key_type"])
            continue
        trusted = spec.certificate in (Certificate.CA, Certificate.EXPIRED,
                                       Certificate.WRONG_NAME)
        assert bool(row["cert_chain_trusted"]) is trusted, spec.name
        assert bool(row["cert_expired"]) is (spec.certificate is Certificate.EXPIRED), spec.name
        assert row["cert_chain_length"] == (2 if spec.send_ca else 1), spec.name
        ec = spec.certificate_key is CertificateKey.ECDSA_P256
        assert (row["cert_key_type"], row["cert_key_bits"]) == (("EC", 256) if ec else
                                                                 ("RSA", 2048)), spec.name
        signer = "sha256WithRSAEncryption" if spec.certificate is Certificate.SELF_SIGNED \
            else "ecdsa-with-SHA256"  # self-signed: the RSA leaf key; else the testbed CA
        assert row["cert_signature_algorithm"] == signer, spec.name
        assert (row["cert_trust_error"] is pd.NA) is (spec.expect_webpki == "ok"), spec.name
    certs = survey.certificates
    assert len(certs) == sum(2 if h.send_ca else 1 for h in enforcement_testbed.scenario.hosts
                             if h.certificate is not None)
    ca_rows = certs[certs["position"] == 1]
    assert ca_rows["is_ca"].all() and (ca_rows["subject"].str.contains("testbed CA")).all()


def test_certificate_names_against_mx_host_and_recipient_domain(
        enforcement_testbed: Testbed, survey: SurveyResults) -> None:
    names = certificate_names(survey).set_index(["domain", "mx_host"])
    assert bool(names.loc[("cert-domain.test", "mx.cert-domain.test"), "matches_domain"])
    assert not bool(names.loc[("sts-ok.test", "mx.sts-ok.test"), "matches_domain"])
    assert not bool(names.loc[("sts-degraded.test", "mx2.sts-degraded.test"), "matches_mx"])
    ready = enforcement_readiness(survey).set_index("domain")["cert_matches_domain"]
    want = expected(enforcement_testbed, "cert_matches_domain")
    assert {d: bool(ready[d]) for d in want} == want
    # No certificate seen (no STARTTLS): not measured, so null rather than false.
    assert set(ready.index) - set(want) == {"sts-nostarttls.test"}
    assert pd.isna(ready["sts-nostarttls.test"])


# -- MTA-STS -----------------------------------------------------------------------------------

def test_every_mta_sts_verdict(enforcement_testbed: Testbed, survey: SurveyResults) -> None:
    verdicts = mta_sts_verdicts(survey).set_index("domain")
    assert dict(verdicts["verdict"]) == expected(enforcement_testbed, "mta_sts")
    fetched = survey.mta_sts.set_index("domain")["fetch_status"]
    assert dict(fetched) == expected(enforcement_testbed, "mta_sts_fetch")
    refused = {d: tuple(verdicts.loc[d, "refused"])
               for d in expected(enforcement_testbed, "mta_sts_refused")}
    assert refused == expected(enforcement_testbed, "mta_sts_refused")


def test_mta_sts_details(survey: SurveyResults) -> None:
    sts = survey.mta_sts.set_index("domain")
    ok = sts.loc["sts-ok.test"]
    assert (ok["txt_id"], ok["mode"], ok["max_age"], list(ok["mx_patterns"])) == (
        "20240601T000000", "enforce", 86400, ["*.sts-ok.test"])
    assert (ok["http_status"], ok["content_type"]) == (200, "text/plain; charset=utf-8")
    assert ok["policy_ip"] == "127.0.211.1" and pd.isna(ok["policy_result"])
    assert list(sts.loc["sts-notcovered.test", "mx_not_covered"]) == [
        "mail.in.sts-notcovered.test"]
    redirect = sts.loc["sts-redirect.test"]
    assert redirect["http_status"] == 301 and "policies.elsewhere.test" in redirect["fetch_error"]
    assert sts.loc["sts-not-found.test", "http_status"] == 404
    assert "certificate has expired" in sts.loc["sts-policy-expired.test", "fetch_error"]
    assert "Hostname mismatch" in sts.loc["sts-policy-wrong-name.test", "fetch_error"]
    assert sts.loc["sts-policy-invalid.test", "policy_error"] == "no max_age field"
    assert sts.loc["sts-txt-invalid.test", "txt_error"] == "no id field"
    results = dict(sts["policy_result"].dropna())
    assert results == {
        "sts-redirect.test": "sts-policy-fetch-error", "sts-not-found.test":
        "sts-policy-fetch-error", "sts-content-type.test": "sts-policy-fetch-error",
        "sts-policy-expired.test": "sts-webpki-invalid",
        "sts-policy-wrong-name.test": "sts-webpki-invalid",
        "sts-policy-down.test": "sts-policy-fetch-error",
        "sts-no-address.test": "sts-policy-fetch-error",
        "sts-policy-invalid.test": "sts-policy-invalid"}
    # Policies are fetched only behind a valid record: never for the multiple/invalid ones.
    assert sts.loc[["sts-txt-multiple.test", "sts-txt-invalid.test"], "policy_ip"].isna().all()


def test_enforcing_sender_loses_exactly_the_breaking_domains(enforcement_testbed: Testbed,
                                                            survey: SurveyResults) -> None:
    sweep = policy_sweep(survey, [Policy(honour_mta_sts=True), Policy(honour_dane=True)])
    sts_breaks = {d for d, v in expected(enforcement_testbed, "mta_sts").items()
                  if v == "enforce-breaks"}
    dane_breaks = {d for d, v in expected(enforcement_testbed, "dane").items()
                   if v in ("breaks", "mx-bogus")}
    assert set(sweep.iloc[0]["lost_domains"]) == sts_breaks
    assert set(sweep.iloc[1]["lost_domains"]) == dane_breaks
    assert sweep["policy"].tolist() == ["opportunistic (no requirement); honours MTA-STS",
                                        "opportunistic (no requirement); honours DANE"]


# -- TLS-RPT -----------------------------------------------------------------------------------

def test_every_tlsrpt_record(enforcement_testbed: Testbed, survey: SurveyResults) -> None:
    tlsrpt = survey.tlsrpt.set_index("domain")
    assert dict(tlsrpt["status"]) == expected(enforcement_testbed, "tlsrpt")
    rua = {d: tuple(tlsrpt.loc[d, "rua"]) for d in expected(enforcement_testbed, "tlsrpt_rua")}
    assert rua == expected(enforcement_testbed, "tlsrpt_rua")


# -- DANE --------------------------------------------------------------------------------------

def test_every_dane_verdict(enforcement_testbed: Testbed, survey: SurveyResults) -> None:
    verdicts = dane_verdicts(survey).set_index("domain")
    assert dict(verdicts["verdict"]) == expected(enforcement_testbed, "dane")
    refused = {d: tuple(verdicts.loc[d, "refused"])
               for d in expected(enforcement_testbed, "dane_refused")}
    assert refused == expected(enforcement_testbed, "dane_refused")
    assert verdicts.loc["dane-partial.test", "coverage"] == 0.5
    assert verdicts.loc["dane-degraded.test", "coverage"] == 1.0
    assert pd.isna(verdicts.loc["dane-mx-unsigned.test", "coverage"])
    assert set(verdicts["dnssec_method"]) == {DnssecMethod.TRUST_ANCHOR}


def test_every_dane_host_outcome(enforcement_testbed: Testbed, survey: SurveyResults) -> None:
    outcomes = dane_hosts(survey)
    # The hosts' ground truth assumes a secure MX RRset: take the domains that have one.
    secure = survey.dane[survey.dane["mx_dnssec"] == "secure"][["domain", "mx_host"]]
    got = outcomes.merge(secure, on=["domain", "mx_host"])
    by_host = {h: set(g["outcome"]) for h, g in got.groupby("mx_host")}
    assert by_host == {h.name: {h.expect_dane} for h in enforcement_testbed.scenario.hosts}
    insecure_mx = outcomes[outcomes["domain"].isin(["dane-mx-unsigned.test"])]
    assert insecure_mx["outcome"].tolist() == ["opportunistic"]


def test_dane_table_records_and_dnssec(survey: SurveyResults) -> None:
    dane = survey.dane.drop_duplicates("mx_host").set_index("mx_host")
    assert dict(dane["tlsa_dnssec"].dropna()) == {
        "mx.sts-expired.test": "secure", "mx.sts-nostarttls.test": "secure",
        "mx.dane-ee.test": "secure", "mx.dane-ta.test": "secure",
        "mx.dane-ta-wrong-name.test": "secure", "mx.dane-mismatch.test": "secure",
        "mx.dane-pkix-only.test": "secure", "mx.dane-unsigned.test": "insecure",
        "mx.dane-bogus.test": "bogus"}
    pkix = dane.loc["mx.dane-pkix-only.test"]
    assert (pkix["usable_records"], pkix["pkix_records"]) == (0, 2)
    assert [r.split()[:3] for r in dane.loc["mx.dane-ta.test", "tlsa_records"]] == [
        ["2", "0", "1"]]
    # A TLSA record matching the leaf is the SHA-256 of its SubjectPublicKeyInfo.
    leaf = survey.certificates.query("mx_host == 'mx.dane-ee.test' and position == 0")
    assert dane.loc["mx.dane-ee.test", "tlsa_records"][0] == (
        f"3 1 1 {leaf['spki_sha256'].iloc[0]}")
    by_domain = survey.dane.set_index("domain")["mx_dnssec"]
    assert by_domain["dane-mx-unsigned.test"] == "insecure"
    assert by_domain["dane-mx-bogus.test"] == "bogus"
    assert by_domain["sts-ok.test"] == "secure"


def test_trust_anchor_validation_against_the_ad_bit(enforcement_testbed: Testbed) -> None:
    """Own validation finds the bad signature; the AD bit the testbed sets does not."""
    resolver = make_resolver([enforcement_testbed.resolver], timeout=TIMEOUT)
    anchored = DnssecResolver(resolver, load_anchors(enforcement_testbed.dnssec_anchor_path))
    on_trust = DnssecResolver(resolver)
    assert (anchored.method, on_trust.method) == (DnssecMethod.TRUST_ANCHOR,
                                                  DnssecMethod.RESOLVER_AD)
    cases = {"_25._tcp.mx.dane-ee.test": (DnssecStatus.SECURE, DnssecStatus.SECURE),
             "_25._tcp.mx.dane-bogus.test": (DnssecStatus.BOGUS, DnssecStatus.SECURE),
             "_25._tcp.mx.dane-unsigned.test": (DnssecStatus.INSECURE, DnssecStatus.INSECURE)}
    for name, (own, ad) in cases.items():
        assert (anchored.lookup(name, "TLSA").dnssec, on_trust.lookup(name, "TLSA").dnssec) == (
            own, ad), name
    assert "no RRSIGs validated" in (anchored.lookup("_25._tcp.mx.dane-bogus.test",
                                                     "TLSA").error or "")
    # An anchor for another key makes the whole zone bogus; one for another zone leaves it
    # insecure (nothing anchors it).
    wrong = parse_anchors("test. IN DS 12345 13 2 " + "00" * 32)
    assert DnssecResolver(resolver, wrong).lookup("dane-ee.test", "MX").dnssec is (
        DnssecStatus.BOGUS)
    elsewhere = parse_anchors("example. IN DS 12345 13 2 " + "00" * 32)
    assert DnssecResolver(resolver, elsewhere).lookup("dane-ee.test", "MX").dnssec is (
        DnssecStatus.INSECURE)
    nothing = anchored.lookup("_25._tcp.mx.shared.test", "TLSA")
    assert (nothing.rrset, nothing.dnssec, nothing.nxdomain) == (None, None, True)


def test_dns_server_signs_only_for_do_queries(enforcement_testbed: Testbed) -> None:
    tb = enforcement_testbed
    name = dns.name.from_text("_mta-sts.sts-ok.test.")
    plain = dns.query.udp(dns.message.make_query(name, "TXT", flags=dns.flags.RD | dns.flags.AD),
                          tb.dns_host, port=tb.dns_port, timeout=TIMEOUT)
    assert [r.rdtype for r in plain.answer] == [dns.rdatatype.TXT]
    assert not plain.flags & dns.flags.AD  # the query's AD bit is not echoed
    signed = dns.query.udp(dns.message.make_query(name, "TXT", want_dnssec=True), tb.dns_host,
                           port=tb.dns_port, timeout=TIMEOUT)
    assert {r.rdtype for r in signed.answer} == {dns.rdatatype.TXT, dns.rdatatype.RRSIG}
    assert signed.flags & dns.flags.AD and signed.ednsflags & dns.flags.DO
    keys = dns.query.udp(dns.message.make_query("test.", "DNSKEY", want_dnssec=True),
                         tb.dns_host, port=tb.dns_port, timeout=TIMEOUT)
    dnskey = keys.find_rrset(keys.answer, dns.name.from_text("test."), 1, dns.rdatatype.DNSKEY)
    txt = signed.find_rrset(signed.answer, name, 1, dns.rdatatype.TXT)
    sigs = signed.find_rrset(signed.answer, name, 1, dns.rdatatype.RRSIG, dns.rdatatype.TXT)
    dns.dnssec.validate(txt, sigs, {dns.name.from_text("test."): dnskey})  # raises if wrong
    anchor = load_anchors(tb.dnssec_anchor_path).ds[dns.name.from_text("test.")][0]
    assert dns.dnssec.make_ds("test.", dnskey[0], "SHA256") == anchor


def test_policy_fetch_directly(enforcement_testbed: Testbed) -> None:
    tb = enforcement_testbed
    assert tb.mta_sts_port is not None
    resolver = make_resolver([tb.resolver], timeout=TIMEOUT)
    context = tls_context(tb.ca_cert_path)
    ok = fetch_policy("sts-ok.test", resolver=resolver, port=tb.mta_sts_port, context=context,
                      timeout=TIMEOUT)
    assert ok.status is FetchStatus.OK and (ok.body or "").startswith("version: STSv1\n")
    # Without the testbed CA the same policy host is not trusted: the Mozilla store is used.
    mozilla = fetch_policy("sts-ok.test", resolver=resolver, port=tb.mta_sts_port,
                           timeout=TIMEOUT)
    assert mozilla.status is FetchStatus.CERTIFICATE_INVALID
    assert mozilla.error is not None and "unable to get local issuer" in mozilla.error


# -- analysis over the whole scenario -----------------------------------------------------------

def test_failure_breakdown_counts(enforcement_testbed: Testbed, survey: SurveyResults) -> None:
    table = failure_types(survey)
    hosts = table[table["unit"] == Unit.MX_HOST]
    want = Counter(h.expect_webpki for h in enforcement_testbed.scenario.hosts)
    assert dict(zip(hosts["result"], hosts["count"], strict=True)) == dict(want)
    assert (hosts["total"] == len(enforcement_testbed.scenario.hosts)).all()
    assert hosts["share"].sum() == pytest.approx(1.0)


def test_readiness(enforcement_testbed: Testbed, survey: SurveyResults) -> None:
    ready = enforcement_readiness(survey).set_index("domain")["readiness"]
    assert ready["sts-ok.test"] == Readiness.ENFORCED_OK
    assert ready["sts-degraded.test"] == Readiness.ENFORCED_DEGRADED
    assert ready["sts-expired.test"] == Readiness.ENFORCED_LOSING  # MTA-STS breaks, DANE works
    assert ready["dane-degraded.test"] == Readiness.ENFORCED_DEGRADED
    assert ready["sts-selfsigned.test"] == Readiness.NOT_ENFORCED_FAILING  # testing mode
    assert ready["no-policy.test"] == Readiness.NOT_ENFORCED_OK
    summary = readiness_summary(survey).set_index(["metric", "unit"])
    n = len(enforcement_testbed.scenario.domains)
    sts = expected(enforcement_testbed, "mta_sts")
    cell = summary.loc[("MTA-STS enforce loses mail", "domain with MX hosts")]
    assert (cell["count"], cell["total"]) == (sum(v == "enforce-breaks" for v in sts.values()), n)
    valid = summary.loc[("TLS-RPT record valid", "domain with MX hosts"), "count"]
    assert valid == sum(v == "valid" for v in expected(enforcement_testbed, "tlsrpt").values())
    assert summary.loc[("passes WebPKI", "MX host"), "count"] == sum(
        h.expect_webpki == "ok" for h in enforcement_testbed.scenario.hosts)


# -- the pipeline: resume and the command line ---------------------------------------------------

NAMES = ["sts-ok.test", "sts-degraded.test", "dane-ee.test"]


def _kinds(out: Path) -> Counter[str]:
    return Counter(str(r["kind"]) for r in read_records(out / RAW_LOG_NAME))


def test_resume_skips_finished_enforcement_lookups(enforcement_testbed: Testbed,
                                                   tmp_path: Path) -> None:
    tb = enforcement_testbed
    assert tb.mta_sts_port is not None
    settings = tb.settings(timeout=TIMEOUT, greeting_timeout=TIMEOUT)
    full = run_survey(NAMES, tmp_path / "full", settings, progress=False)
    assert _kinds(tmp_path / "full")["policy"] == 3 and _kinds(tmp_path / "full")["tlsa"] == 4
    # A run that died after its first policy record.
    lines = (tmp_path / "full" / RAW_LOG_NAME).read_text().splitlines(keepends=True)
    first = next(i for i, ln in enumerate(lines) if json.loads(ln)["kind"] == "policy")
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / RAW_LOG_NAME).write_text("".join(lines[: first + 1]))
    resumed = run_survey(NAMES, tmp_path / "partial", settings, resume=True, progress=False)
    kinds = _kinds(tmp_path / "partial")
    assert (kinds["policy"], kinds["tlsa"], kinds["host"]) == (3, 4, 4)
    for name in ("mta_sts", "tlsrpt", "dane"):
        stable = resumed.table(name).drop(columns=["checked_at"], errors="ignore")
        pd.testing.assert_frame_equal(stable, full.table(name).drop(columns=["checked_at"],
                                                                   errors="ignore"))


def test_cli_scan_takes_the_enforcement_options(enforcement_testbed: Testbed,
                                                tmp_path: Path) -> None:
    tb = enforcement_testbed
    proc = subprocess.run(
        [sys.executable, "-m", "research", "scan", "sts-ok.test", "dane-bogus.test", "--out",
         str(tmp_path / "o"), "--resolver", tb.resolver, "--port", str(tb.smtp_port),
         "--timeout", "3", "--trust-ca", str(tb.ca_cert_path), "--mta-sts-port",
         str(tb.mta_sts_port), "--dnssec-anchor", str(tb.dnssec_anchor_path), "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    results = load_results(tmp_path / "o")
    assert results.mta_sts.set_index("domain").loc["sts-ok.test", "mode"] == "enforce"
    assert results.dane.set_index("domain").loc["dane-bogus.test", "tlsa_dnssec"] == "bogus"
    assert results.meta["options"]["mta_sts_port"] == tb.mta_sts_port
    missing = subprocess.run(
        [sys.executable, "-m", "research", "scan", "x.test", "--out", str(tmp_path / "m"),
         "--dnssec-anchor", str(tmp_path / "nope.txt")], capture_output=True, text=True,
        timeout=60)
    assert missing.returncode == 2 and "--dnssec-anchor file not found" in missing.stderr
