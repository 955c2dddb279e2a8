"""The ``today`` scenario: the isc-2019 domains as they might look now (illustrative), for the
then-and-now comparison. Same names and ranks as 2019, and a scan meets its ground truth."""

from __future__ import annotations

from pathlib import Path

from support.groundtruth import (
    assert_domains_match,
    assert_enforcement_matches,
    assert_hosts_match,
)
from support.survey_builder import from_scenario

from research.analysis import compare, domains_lacking_version, domains_without_starttls
from research.store.results import load_results
from research.testbed import load_scenario, scenarios_dir


def test_same_population_as_2019() -> None:
    then, now = load_scenario("isc-2019"), load_scenario("today")
    assert [(d.rank, d.name, d.mx) for d in now.domains] == [
        (d.rank, d.name, d.mx) for d in then.domains]
    assert [(h.name, h.addresses) for h in now.hosts] == [
        (h.name, h.addresses) for h in then.hosts]
    assert (now.counts().no_starttls, now.counts().no_tls_1_2) == (4, 0)
    assert (then.counts().no_starttls, then.counts().no_tls_1_2) == (9, 1)


def test_scan_meets_the_ground_truth(today_survey: Path) -> None:
    scenario = load_scenario("today")
    results = load_results(today_survey)
    assert_domains_match(scenario, results)
    assert_hosts_match(scenario, results)
    assert_enforcement_matches(scenario, results)
    assert len(domains_without_starttls(results)) == 4
    assert domains_lacking_version(results, "TLS 1.2", starttls_only=True) == []


def test_compared_with_2019(today_survey: Path) -> None:
    """What changed since 2019, per domain: the 2019 scenario's ground truth against the scan."""
    changes = compare(from_scenario(scenarios_dir() / "isc-2019.toml"), load_results(today_survey))
    domains = changes.domains.set_index("domain")
    assert domains.loc["libertel.test", "versions_gained"] == "TLS 1.2, TLS 1.3"
    assert (bool(domains.loc["pengyou.test", "starttls_any_before"]),
            bool(domains.loc["pengyou.test", "starttls_any_after"])) == (False, True)
    assert "thriftnet.test" not in domains.index  # still without STARTTLS, unchanged
    lost_1_0 = domains["versions_lost"].str.contains("TLS 1.0")
    # 87 domains accepted TLS 1.0 in 2019; 7 of them still do (the 8th now, dongmail.test,
    # had no STARTTLS then).
    assert int(lost_1_0.sum()) == 87 - 7
