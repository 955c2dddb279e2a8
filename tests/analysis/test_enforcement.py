"""research.analysis.enforcement and its charts on a hand-built survey whose verdicts follow
from the module's rules: an MX host with one good and one expired IP, an unreachable MX host
outside the policy, a testing-mode policy, DANE records that match nothing."""

from __future__ import annotations

import pandas as pd
from support.figures import bar_widths, caption, has_no_data_text, main_axes
from support.survey_builder import build, domain, empty, frame, host, mx

from research.analysis import (
    Policy,
    dane_verdicts,
    enforcement_readiness,
    failure_types,
    host_webpki,
    mta_sts_verdicts,
    policy_impact,
)
from research.analysis.enforcement import READINESS, dane_hosts
from research.plots import plot_enforcement_readiness, plot_failure_types
from research.store.results import SurveyResults
from research.store.schema import Readiness, Unit


def survey() -> SurveyResults:
    results = build(
        [domain("a.example", 1), domain("b.example", 2), domain("c.example", 3, "nxdomain")],
        [mx("a.example", 10, "mx1.p.example"), mx("a.example", 20, "mx2.p.example"),
         mx("b.example", 10, "mx3.q.example")],
        [host("mx1.p.example", "192.0.2.1", webpki_result="ok"),
         host("mx1.p.example", "192.0.2.2", webpki_result="certificate-expired"),
         host("mx2.p.example", "192.0.2.3", status="timeout"),
         host("mx3.q.example", "192.0.2.4", status="no_starttls",
              webpki_result="starttls-not-supported")])
    valid = {"txt_status": "valid", "fetch_status": "ok", "policy_status": "valid"}
    results.mta_sts = frame("mta_sts", [
        {"domain": "a.example", **valid, "mode": "enforce", "mx_patterns": ["mx1.p.example"],
         "mx_not_covered": ["mx2.p.example"]},
        {"domain": "b.example", **valid, "mode": "testing", "mx_patterns": ["*.q.example"]}])
    results.tlsrpt = frame("tlsrpt", [
        {"domain": "a.example", "status": "valid", "rua": ["mailto:r@a.example"]},
        {"domain": "b.example", "status": "none"}])
    results.dane = frame("dane", [
        {"domain": "a.example", "mx_host": "mx1.p.example", "mx_dnssec": "secure",
         "tlsa_status": "found", "tlsa_records": ["3 1 1 " + "00" * 32],
         "tlsa_dnssec": "secure", "dnssec_method": "trust-anchor", "usable_records": 1,
         "pkix_records": 0},
        {"domain": "a.example", "mx_host": "mx2.p.example", "mx_dnssec": "secure",
         "tlsa_status": "none", "dnssec_method": "trust-anchor"},
        {"domain": "b.example", "mx_host": "mx3.q.example", "mx_dnssec": "insecure",
         "tlsa_status": "none", "dnssec_method": "trust-anchor"}])
    return results


def test_host_webpki_lifts_over_ips() -> None:
    got = host_webpki(survey()).set_index("mx_host")
    assert got.loc["mx1.p.example", "webpki_result"] == "certificate-expired"
    assert list(got.loc["mx1.p.example", "failures"]) == ["192.0.2.2: certificate-expired"]
    assert pd.isna(got.loc["mx2.p.example", "webpki_result"])  # no IP answered
    assert (got.loc["mx2.p.example", "ips"], got.loc["mx2.p.example", "ips_answered"]) == (1, 0)
    assert got.loc["mx3.q.example", "webpki_result"] == "starttls-not-supported"


def test_mta_sts_partial_host_degrades_and_unreached_host_is_not_refused() -> None:
    got = mta_sts_verdicts(survey()).set_index("domain")
    a = got.loc["a.example"]
    # mx1 has one good IP: a sender still delivers; mx2 is outside the policy but never answers.
    assert (a["verdict"], list(a["refused"]), list(a["accepted"])) == (
        "enforce-degraded", ["mx1.p.example"], ["mx1.p.example"])
    assert list(a["refused_reasons"]) == ["mx1.p.example: certificate-expired"]
    assert not a["would_lose_mail"] and not a["breaks_if_enforced"]
    b = got.loc["b.example"]
    assert (b["verdict"], list(b["refused"]), b["would_lose_mail"], b["breaks_if_enforced"]) == (
        "testing", ["mx3.q.example"], False, True)
    assert list(got.index) == ["a.example", "b.example"]  # only domains with MX hosts


def test_dane_records_matching_no_chain_break_the_domain() -> None:
    results = survey()
    got = dane_verdicts(results).set_index("domain")
    a = got.loc["a.example"]
    assert (a["verdict"], list(a["refused"]), a["coverage"], a["would_lose_mail"]) == (
        "breaks", ["mx1.p.example"], 0.5, True)
    assert got.loc["b.example", "verdict"] == "none"
    outcomes = dane_hosts(results).set_index(["domain", "mx_host"])["outcome"]
    assert dict(outcomes) == {("a.example", "mx1.p.example"): "tlsa-invalid",
                              ("a.example", "mx2.p.example"): "unreachable",
                              ("b.example", "mx3.q.example"): "opportunistic"}


def test_readiness_takes_the_worse_mechanism() -> None:
    got = enforcement_readiness(survey()).set_index("domain")
    assert got.loc["a.example", "readiness"] == Readiness.ENFORCED_LOSING  # DANE breaks
    assert got.loc["b.example", "readiness"] == Readiness.NOT_ENFORCED_FAILING  # testing only
    assert got.loc["c.example", "readiness"] == Readiness.NO_MAIL
    assert list(got.loc["b.example", "webpki_failures"]) == ["mx3.q.example: "
                                                             "starttls-not-supported"]
    assert list(got.loc["a.example", "tlsrpt_rua"]) == ["mailto:r@a.example"]


def test_policies_honouring_mta_sts_and_dane() -> None:
    results = survey()
    sts = policy_impact(results, Policy(honour_mta_sts=True)).set_index("domain")
    # The first IP of mx1 passes: delivered there, encrypted.
    assert (sts.loc["a.example", "reachable"], sts.loc["a.example", "ip"]) == (True, "192.0.2.1")
    assert sts.loc["b.example", "reachable"]  # testing mode refuses nothing
    dane = policy_impact(results, Policy(honour_dane=True)).set_index("domain")
    assert not dane.loc["a.example", "reachable"]
    assert dane.loc["a.example", "reason"] == "DANE: tlsa-invalid"
    assert dane.loc["a.example", "attempts"] == (
        "mx1.p.example [192.0.2.1]: DANE: tlsa-invalid; mx1.p.example [192.0.2.2]: DANE: "
        "tlsa-invalid; mx2.p.example [192.0.2.3]: timeout")
    assert Policy(honour_dane=True).label == "opportunistic (no requirement); honours DANE"


def test_failure_types_per_unit() -> None:
    got = failure_types(survey())
    hosts = got[got["unit"] == Unit.MX_HOST]
    assert list(zip(hosts["result"], hosts["count"], hosts["total"], strict=True)) == [
        ("starttls-not-supported", 1, 2), ("certificate-expired", 1, 2)]
    dane = got[got["unit"] == Unit.DANE_HOST]
    assert list(zip(dane["result"], dane["count"], strict=True)) == [("tlsa-invalid", 1)]


def test_failure_types_chart() -> None:
    fig = plot_failure_types(survey())
    axes = main_axes(fig)
    assert len(axes) == 3
    assert bar_widths(axes[0]) == [[1.0, 1.0]]
    assert [t.get_text() for t in axes[0].get_yticklabels()] == [
        "starttls-not-supported", "certificate-expired"]
    assert "Unit: left: unique MX hosts" in caption(fig) and "Scan: 2024-03-05" in caption(fig)
    assert has_no_data_text(plot_failure_types(empty()))


def test_readiness_chart() -> None:
    fig = plot_enforcement_readiness(survey())
    (ax,) = main_axes(fig)
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert shown == [c for c in READINESS if c != Readiness.NO_MAIL]
    widths = bar_widths(ax)[0]
    assert widths[shown.index(Readiness.ENFORCED_LOSING)] == 1
    assert widths[shown.index(Readiness.NOT_ENFORCED_FAILING)] == 1 and sum(widths) == 2
    assert "domains with MX hosts (n=2)" in caption(fig)
    assert has_no_data_text(plot_enforcement_readiness(empty()))
