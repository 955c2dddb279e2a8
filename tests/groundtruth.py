"""Compare a survey's tables with the ground truth written in a testbed scenario file."""

from __future__ import annotations

from research.results import SurveyResults
from research.schema import TLS_VERSIONS
from research.testbed import Scenario


def assert_domains_match(scenario: Scenario, results: SurveyResults) -> None:
    domains = results.domains
    got = dict(zip(domains["domain"], domains["dns_status"], strict=True))
    assert got == {d.name: d.expect_dns_status.value for d in scenario.domains}
    for spec in scenario.domains:
        mx = results.mx[results.mx["domain"] == spec.name]
        expected = sorted(spec.mx) if spec.mx else []
        if spec.implicit_mx:
            expected = [(0, spec.name)]
        assert sorted(zip(mx["preference"], mx["mx_host"], strict=True)) == expected, spec.name


def assert_hosts_match(scenario: Scenario, results: SurveyResults) -> None:
    """Every host address of the scenario is in ``hosts`` once, with its expected status and
    exactly its expected accepted versions."""
    hosts = results.hosts
    for spec in scenario.hosts:
        rows = hosts[hosts["mx_host"] == spec.name]
        addresses = sorted(spec.addresses) or ["-"]
        assert sorted(rows["ip"].fillna("-")) == addresses, spec.name
        for _, row in rows.iterrows():
            assert row["status"] == spec.expect_status.value, (spec.name, row["error"])
            accepted = [v.label for v in TLS_VERSIONS if row[v.column] is True]
            assert accepted == list(spec.expect_versions), spec.name
    assert len(hosts) == sum(max(1, len(h.addresses)) for h in scenario.hosts)
