"""Compare a survey's tables with the ground truth written in a testbed scenario file."""

from __future__ import annotations

import pandas as pd

from research.store.results import SurveyResults
from research.store.schema import TLS_VERSIONS
from research.testbed import Host, Scenario


def assert_domains_match(scenario: Scenario, results: SurveyResults) -> None:
    domains = results.domains
    got = dict(zip(domains["domain"], domains["dns_status"], strict=True))
    assert got == {d.name: d.expect_dns_status.value for d in scenario.domains}
    errors = dict(zip(domains["domain"], domains["error"].fillna(""), strict=True))
    for spec in scenario.domains:
        mx = results.mx[results.mx["domain"] == spec.name]
        expected = sorted(spec.mx) if spec.mx else []
        if spec.implicit_mx:
            expected = [(0, spec.name)]
        assert sorted(zip(mx["preference"], mx["mx_host"], strict=True)) == expected, spec.name
        if spec.expect_error is not None:
            assert spec.expect_error in errors[spec.name], (spec.name, errors[spec.name])


def _used_aliases(scenario: Scenario) -> list[tuple[str, Host]]:
    used = {h for d in scenario.domains for h in d.mail_hosts}
    return [(alias, host) for host in scenario.hosts for alias in host.aliases if alias in used]


def assert_hosts_match(scenario: Scenario, results: SurveyResults) -> None:
    """Every host address of the scenario is in ``hosts`` once, with its expected status,
    exactly its expected accepted versions and, where the scenario says, its error; an alias
    (CNAME) a domain uses is scanned under its own name, with its target's outcome."""
    hosts = results.hosts
    expected = [(spec.name, spec) for spec in scenario.hosts] + _used_aliases(scenario)
    for name, spec in expected:
        rows = hosts[hosts["mx_host"] == name]
        addresses = sorted(spec.addresses) or ["-"]
        assert sorted(rows["ip"].fillna("-")) == addresses, name
        for _, row in rows.iterrows():
            assert row["status"] == spec.expect_status.value, (name, row["error"])
            accepted = [v.label for v in TLS_VERSIONS if row[v.column] is True]
            assert accepted == list(spec.expect_versions), name
            if spec.expect_error is not None and name == spec.name:
                error = "" if pd.isna(row["error"]) else row["error"]
                assert spec.expect_error in error, (name, error)
    assert len(hosts) == sum(max(1, len(spec.addresses)) for _, spec in expected)


def _stated(scenario: Scenario, key: str) -> dict[str, object]:
    """Domain name → the scenario's ground truth for ``key`` (only domains that state it)."""
    truths = {d.name: getattr(d.expect, key) for d in scenario.domains}
    return {name: value for name, value in truths.items() if value is not None}


def assert_enforcement_matches(scenario: Scenario, results: SurveyResults) -> None:
    """Every enforcement truth the scenario states holds in the survey: each host's
    ``webpki_result`` and DANE outcome (where its domain's MX RRset is secure), each domain's
    MTA-STS verdict, fetch status and refused hosts, TLS-RPT status and destinations, DANE
    verdict and refused hosts, and whether the certificates name the domain."""
    from research.analysis.enforcement import (
        dane_hosts,
        dane_verdicts,
        enforcement_readiness,
        mta_sts_verdicts,
    )

    webpki = dict(zip(results.hosts["mx_host"], results.hosts["webpki_result"], strict=True))
    assert {h.name: webpki[h.name] for h in scenario.hosts if h.expect_webpki} == {
        h.name: h.expect_webpki for h in scenario.hosts if h.expect_webpki}
    secure = results.dane[results.dane["mx_dnssec"] == "secure"][["domain", "mx_host"]]
    outcomes = dane_hosts(results).merge(secure, on=["domain", "mx_host"])
    by_host = {str(h): set(g["outcome"]) for h, g in outcomes.groupby("mx_host")}
    assert {h.name: by_host[h.name] for h in scenario.hosts if h.expect_dane} == {
        h.name: {h.expect_dane} for h in scenario.hosts if h.expect_dane}
    sts = mta_sts_verdicts(results).set_index("domain")
    assert {d: sts.loc[d, "verdict"] for d in _stated(scenario, "mta_sts")} == _stated(
        scenario, "mta_sts")
    fetched = results.mta_sts.set_index("domain")["fetch_status"]
    assert {d: fetched[d] for d in _stated(scenario, "mta_sts_fetch")} == _stated(
        scenario, "mta_sts_fetch")
    assert {d: tuple(sts.loc[d, "refused"]) for d in _stated(scenario, "mta_sts_refused")} == \
        _stated(scenario, "mta_sts_refused")
    tlsrpt = results.tlsrpt.set_index("domain")
    assert {d: tlsrpt.loc[d, "status"] for d in _stated(scenario, "tlsrpt")} == _stated(
        scenario, "tlsrpt")
    assert {d: tuple(tlsrpt.loc[d, "rua"]) for d in _stated(scenario, "tlsrpt_rua")} == \
        _stated(scenario, "tlsrpt_rua")
    dane = dane_verdicts(results).set_index("domain")
    assert {d: dane.loc[d, "verdict"] for d in _stated(scenario, "dane")} == _stated(
        scenario, "dane")
    assert {d: tuple(dane.loc[d, "refused"]) for d in _stated(scenario, "dane_refused")} == \
        _stated(scenario, "dane_refused")
    names = enforcement_readiness(results).set_index("domain")["cert_matches_domain"]
    assert {d: bool(names[d]) for d in _stated(scenario, "cert_matches_domain")} == _stated(
        scenario, "cert_matches_domain")


def assert_webpki_match(scenario: Scenario, results: SurveyResults) -> None:
    """Every (host, address) whose scenario entry states ``expect.webpki`` has that verdict: for
    MX names that share an address, proof that each was judged by its own certificate."""
    hosts = results.hosts
    for spec in scenario.hosts:
        if spec.expect_webpki is None:
            continue
        rows = hosts[hosts["mx_host"] == spec.name]
        assert len(rows) == len(spec.addresses), spec.name
        assert set(rows["webpki_result"]) == {spec.expect_webpki}, (spec.name, rows["error"])
