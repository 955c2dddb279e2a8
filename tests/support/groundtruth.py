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
