"""research.analysis.headline and summary: the headline table, the lists, the 2019 diary's numbers,
on small hand-built surveys whose right answers are worked out here."""

from __future__ import annotations

import tomllib

import pytest
from support.survey_builder import (
    build,
    domain,
    from_scenario,
    host,
    mx,
    sample,
)
from support.tables import cell

from research.analysis import (
    AnalysisError,
    diary_summary,
    domain_verdicts,
    domains_lacking_version,
    domains_without_starttls,
    format_summary,
    headline,
    policy_sweep,
)
from research.errors import SurveyError
from research.store.results import SurveyResults
from research.store.schema import DomainCategory
from research.testbed import scenarios_dir

# --- headline and lists ---------------------------------------------------------------------------

def test_headline_on_the_sample() -> None:
    t = headline(sample())
    assert cell(t, "domains in input", "domain") == (8, 8)
    assert cell(t, "has MX hosts (MX or implicit MX)", "domain") == (6, 8)
    assert cell(t, "category: null MX", "domain") == (1, 8)
    assert cell(t, "STARTTLS (TLS handshake succeeds)", "domain (all MX hosts)") == (3, 6)
    assert cell(t, "STARTTLS (TLS handshake succeeds)", "domain (any MX host)") == (4, 6)
    assert cell(t, "STARTTLS (TLS handshake succeeds)", "MX host") == (3, 6)
    # among units with STARTTLS: delta (domain) / mx.delta (host) stop at TLS 1.0
    assert cell(t, "STARTTLS, no TLS ≥ 1.2", "domain (any MX host)") == (1, 4)
    assert cell(t, "STARTTLS, no TLS ≥ 1.2", "MX host") == (1, 3)
    assert cell(t, "highest version: TLS 1.3", "MX host") == (1, 6)
    assert cell(t, "highest version: TLS 1.3", "domain (any MX host)") == (2, 6)
    assert cell(t, "highest version: none", "MX host") == (3, 6)
    assert cell(t, "lowest version: TLS 1.0", "MX host") == (2, 6)
    assert set(t["unit"]) == {"domain", "domain (all MX hosts)", "domain (any MX host)",
                              "domain (preferred MX)", "MX host"}


def test_lists_of_domains() -> None:
    r = sample()
    assert domains_without_starttls(r) == ["epsilon.example"]  # zeta is unreachable, not listed
    assert domains_without_starttls(r, view="all") == ["gamma.example", "epsilon.example"]
    assert domains_lacking_version(r, "TLS 1.2") == ["delta.example", "epsilon.example"]
    assert domains_lacking_version(r, "TLS 1.2", starttls_only=True) == ["delta.example"]
    assert domains_lacking_version(r, "TLS 1.2", view="all") == [
        "gamma.example", "delta.example", "epsilon.example"]
    assert domains_lacking_version(r, "TLS 1.3", starttls_only=True) == [
        "gamma.example", "delta.example"]
    with pytest.raises(AnalysisError):
        domains_lacking_version(r, "TLS 2.0")
    with pytest.raises(SurveyError):
        domains_without_starttls(r, view="most")


def test_tls_1_3_only_host_counts_as_tls_1_2_or_newer() -> None:
    r = build([domain("new.example", 1)], [mx("new.example", 10, "mx.new.example")],
              [host("mx.new.example", versions=("TLS 1.3",))])
    assert domains_lacking_version(r, "TLS 1.2") == []
    assert domain_verdicts(r)["category"].tolist() == [DomainCategory.TLS12_ALL]
    assert not domain_verdicts(r)["tls_1_2_any"].iloc[0]


def diary_like() -> SurveyResults:
    """Ten domains: 8 with STARTTLS (one stuck at TLS 1.0), 1 without, 1 NXDOMAIN."""
    names = [f"d{i}.example" for i in range(1, 11)]
    domains = [domain(n, i) for i, n in enumerate(names[:9], start=1)]
    domains.append(domain(names[9], 10, "nxdomain"))
    mxs = [mx(n, 10, f"mx.{n}") for n in names[:9]]
    hosts = [host(f"mx.{n}", f"192.0.2.{i}", versions=("TLS 1.0", "TLS 1.2"))
             for i, n in enumerate(names[:7], start=1)]
    hosts.append(host(f"mx.{names[7]}", "192.0.2.8", versions=("TLS 1.0",)))
    hosts.append(host(f"mx.{names[8]}", "192.0.2.9", status="no_starttls"))
    return build(domains, mxs, hosts)


def test_diary_summary() -> None:
    d = diary_summary(diary_like()).set_index("metric")
    assert (d.loc["domains scanned", "count"], d.loc["domains scanned", "total"]) == (10, 10)
    assert d.loc["domains with STARTTLS (any MX host)", "count"] == 8
    assert d.loc["domains with STARTTLS (any MX host)", "share"] == pytest.approx(0.8)
    assert d.loc["domains without STARTTLS", "domains"] == "d9.example"
    assert d.loc["domains with no reachable MX host or no mail (DNS)", "domains"] == \
        "d10.example (NXDOMAIN)"
    lacking = d.loc["STARTTLS domains without TLS ≥ 1.2"]
    assert (lacking["count"], lacking["total"]) == (1, 8)
    assert lacking["domains"] == "d8.example (max TLS 1.0)"
    assert d.loc["STARTTLS domains with TLS ≥ 1.2 on all MX hosts", "count"] == 7


def test_isc_2019_ground_truth_gives_the_diary_numbers() -> None:
    """The testbed's replica of the 2019 population, scanned perfectly, tells the diary's story."""
    path = scenarios_dir() / "isc-2019.toml"
    expect = tomllib.loads(path.read_text(encoding="utf-8"))["scenario"]["expect"]
    r = from_scenario(path)
    d = diary_summary(r).set_index("metric")
    assert d.loc["domains scanned", "count"] == expect["domains"]
    assert d.loc["domains without STARTTLS", "count"] == expect["no_starttls"]
    assert d.loc["STARTTLS domains without TLS ≥ 1.2", "count"] == expect["no_tls_1_2"]
    with_starttls = expect["domains"] - expect["no_starttls"]
    assert d.loc["domains with STARTTLS (any MX host)", "count"] == with_starttls
    # requiring TLS 1.2 loses exactly the domains without STARTTLS plus the TLS 1.0-only one
    sweep = policy_sweep(r, ["TLS 1.2"]).iloc[0]
    assert sweep["lost"] == expect["no_starttls"] + expect["no_tls_1_2"]


def test_format_summary_states_the_numbers() -> None:
    text = format_summary(diary_like())
    assert "Survey of 10 domains, scanned 2024-03-05." in text
    assert "8/10 (80%) domains on at least one MX host" in text
    assert "Domains without STARTTLS (1): d9.example." in text
    assert "(1): d8.example." in text
    assert "7/10 (70%) domains reachable" in text and "lost 2: d8.example, d9.example" in text
    assert format_summary(build()).startswith("No data")
