"""The main job end to end: `starttls-survey demo` on the isc-2019 testbed replica."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.groundtruth import assert_domains_match, assert_hosts_match
from support.packages import errors_of, frictionless

from research.analysis import domains_lacking_version, domains_without_starttls
from research.store.results import SurveyResults, load_results
from research.testbed import load_scenario

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [sys.executable, "-m", "research", "demo", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, out


@pytest.fixture(scope="module")
def demo_results(demo_run: tuple[str, Path]) -> SurveyResults:
    return load_results(demo_run[1])


def test_demo_reproduces_the_scenario_numbers(demo_results: SurveyResults) -> None:
    counts = load_scenario("isc-2019").counts()
    assert (counts.domains, counts.no_starttls, counts.no_tls_1_2) == (100, 9, 1)
    assert len(demo_results.domains) == counts.domains
    assert len(domains_without_starttls(demo_results)) == counts.no_starttls
    lacking = domains_lacking_version(demo_results, "TLS 1.2", starttls_only=True)
    assert len(lacking) == counts.no_tls_1_2


def test_demo_hosts_agree_with_ground_truth(demo_results: SurveyResults) -> None:
    scenario = load_scenario("isc-2019")
    assert_domains_match(scenario, demo_results)
    assert_hosts_match(scenario, demo_results)


def test_demo_prints_the_headline_and_writes_the_report(demo_run: tuple[str, Path]) -> None:
    stdout, out = demo_run
    assert "Survey of 100 domains" in stdout
    assert "Domains without STARTTLS (9)" in stdout
    assert "without TLS ≥ 1.2 on any MX host (1)" in stdout
    assert "Requiring STARTTLS with TLS ≥ 1.2: 90/100" in stdout
    page = out / "report" / "report.html"
    assert f"Report written to {page}" in stdout
    html = page.read_text()
    assert "data:image/png;base64," in html
    without = (out / "report" / "domains_without_starttls.txt").read_text().split()
    no_tls12 = (out / "report" / "domains_without_tls_1_2.txt").read_text().split()
    assert (len(without), len(no_tls12)) == (9, 1)
    for name in ("domains", "mx", "hosts", "ciphers"):
        assert (out / f"{name}.parquet").exists()


def test_demo_survey_is_a_valid_data_package(demo_run: tuple[str, Path]) -> None:
    out = demo_run[1]
    report = frictionless(out / "datapackage.json")
    assert report["valid"], errors_of(report)
    hosts = next(t for t in report["tasks"] if t["name"] == "hosts")
    assert hosts["stats"]["rows"] == 32  # isc-2019: 30 MX hosts on 32 addresses


def test_requiring_tls_1_2_loses_exactly_the_tls_1_0_domain(demo_results: SurveyResults) -> None:
    from research.analysis import policy_sweep

    sweep = policy_sweep(demo_results, [None, "TLS 1.0", "TLS 1.1", "TLS 1.2"])
    sweep = sweep.set_index("min_version")
    starttls_only = sweep.loc[sweep.index.isna()].iloc[0]
    tls12 = sweep.loc["TLS 1.2"]
    assert int(starttls_only["reachable"]) == 91
    assert int(sweep.loc["TLS 1.0"]["reachable"]) == 91
    # The one TLS 1.0-only domain is lost as soon as anything newer is required.
    assert int(sweep.loc["TLS 1.1"]["reachable"]) == 90
    assert int(tls12["reachable"]) == 90
    assert set(tls12["lost_domains"]) - set(starttls_only["lost_domains"]) == set(
        domains_lacking_version(demo_results, "TLS 1.2", starttls_only=True)
    )
