"""research.analysis on small hand-built surveys whose right answers are worked out here."""

from __future__ import annotations

import math
import tomllib

import pandas as pd
import pytest
from support.survey_builder import (
    CBC,
    GCM,
    TLS13,
    build,
    domain,
    from_scenario,
    host,
    mx,
    sample,
    suite,
)

from research.analysis import (
    BASELINE_LABEL,
    AnalysisError,
    Policy,
    cipher_summary,
    cipher_version_summary,
    classify_cipher,
    compare,
    default_policies,
    diary_summary,
    domain_verdicts,
    domains_lacking_version,
    domains_without_starttls,
    format_summary,
    headline,
    host_ciphers,
    host_summary,
    is_weak_cipher,
    policy_impact,
    policy_sweep,
    provider_of,
    provider_table,
    rank_weights,
    scan_date,
    suite_class_counts,
    weak_hosts,
    weak_suites,
)
from research.errors import SurveyError
from research.store.results import SurveyResults
from research.store.schema import DomainCategory
from research.testbed import scenarios_dir


def cell(table: pd.DataFrame, metric: str, unit: str) -> tuple[int, int]:
    row = table[(table["metric"] == metric) & (table["unit"] == unit)]
    assert len(row) == 1, (metric, unit)
    return int(row["count"].iloc[0]), int(row["total"].iloc[0])


def row_of(table: pd.DataFrame, key: str, value: str) -> pd.Series:
    rows = table[table[key] == value]
    assert len(rows) == 1, value
    return rows.iloc[0]


# --- weak-suite classification ------------------------------------------------------------------

@pytest.mark.parametrize(("name", "tags"), [
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", ()),
    ("TLS_AES_256_GCM_SHA384", ()),
    ("TLS_CHACHA20_POLY1305_SHA256", ()),
    ("TLS_RSA_WITH_SEED_CBC_SHA", ()),
    ("ECDHE-RSA-AES128-GCM-SHA256", ()),
    ("TLS_RSA_WITH_RC4_128_SHA", ("RC4",)),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", ("3DES",)),
    ("TLS_DHE_RSA_WITH_DES_CBC_SHA", ("DES",)),
    ("TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", ("EXPORT", "DES")),
    ("TLS_RSA_EXPORT_WITH_RC4_40_MD5", ("EXPORT", "RC4")),
    ("TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5", ("EXPORT", "RC2")),
    ("TLS_DH_anon_WITH_AES_128_CBC_SHA", ("anon",)),
    ("TLS_ECDH_anon_WITH_RC4_128_SHA", ("anon", "RC4")),
    ("TLS_RSA_WITH_NULL_SHA256", ("NULL",)),
    ("TLS_NULL_WITH_NULL_NULL", ("NULL",)),
    ("SSL_CK_DES_192_EDE3_CBC_WITH_MD5", ("3DES",)),
    ("SSL_CK_DES_64_CBC_WITH_MD5", ("DES",)),
    ("SSL_CK_RC4_128_EXPORT40_WITH_MD5", ("EXPORT", "RC4")),
    ("DES-CBC3-SHA", ("3DES",)),
    ("EXP-RC4-MD5", ("EXPORT", "RC4")),
    ("ADH-AES128-SHA", ("anon",)),
    ("AECDH-NULL-SHA", ("NULL", "anon")),
])
def test_classify_cipher(name: str, tags: tuple[str, ...]) -> None:
    assert classify_cipher(name) == tags
    assert is_weak_cipher(name) is bool(tags)


# --- units: per MX host vs per domain -----------------------------------------------------------

def shared_host_survey() -> SurveyResults:
    """a and b share one STARTTLS host; c has its own host without STARTTLS."""
    return build(
        [domain("a.example", 1), domain("b.example", 2), domain("c.example", 3)],
        [mx("a.example", 10, "mx.shared.example"), mx("b.example", 10, "mx.shared.example"),
         mx("c.example", 10, "mx.c.example")],
        [host("mx.shared.example"), host("mx.c.example", "192.0.2.9", status="no_starttls")])


def test_per_domain_and_per_host_give_different_numbers() -> None:
    table = headline(shared_host_survey())
    starttls = "STARTTLS (TLS handshake succeeds)"
    assert cell(table, starttls, "domain (any MX host)") == (2, 3)
    assert cell(table, starttls, "MX host") == (1, 2)
    assert cell(table, "accepts TLS 1.2", "domain (all MX hosts)") == (2, 3)
    assert cell(table, "accepts TLS 1.2", "MX host") == (1, 2)
    share = table[(table["metric"] == starttls) & (table["unit"] == "MX host")]["share"]
    assert share.iloc[0] == pytest.approx(0.5)


def test_host_has_a_property_only_if_every_ip_has_it() -> None:
    r = build([domain("d.example", 1)],
              [mx("d.example", 10, "half.example"), mx("d.example", 20, "split.example")],
              [host("half.example", "192.0.2.1"),
               host("half.example", "192.0.2.2", status="timeout"),
               host("split.example", "192.0.2.3", versions=("TLS 1.0", "TLS 1.2")),
               host("split.example", "192.0.2.4", versions=("TLS 1.2", "TLS 1.3"))])
    hosts = host_summary(r)
    half = row_of(hosts, "mx_host", "half.example")
    assert (half["status"], half["ip_rows"], half["ip_rows_reached"]) == ("mixed", 2, 1)
    assert bool(half["reached"]) and not half["starttls"] and not half["tls_1_2"]
    split = row_of(hosts, "mx_host", "split.example")
    assert split["tls_1_2"] and not split["tls_1_0"] and not split["tls_1_3"]
    # newest version every IP reaches; oldest version any IP accepts
    assert (split["max_version"], split["min_version"]) == ("TLS 1.2", "TLS 1.0")


def test_unscanned_mx_host_is_listed_and_has_nothing() -> None:
    r = build([domain("u.example", 1)], [mx("u.example", 10, "ghost.example")])
    hosts = host_summary(r)
    assert hosts["mx_host"].tolist() == ["ghost.example"]
    assert hosts["status"].iloc[0] == "not_scanned" and not hosts["reached"].iloc[0]
    assert domain_verdicts(r)["category"].tolist() == [DomainCategory.UNREACHABLE]


# --- domain verdicts ----------------------------------------------------------------------------

def verdict_survey() -> SurveyResults:
    return build(
        [domain("d.example", 1), domain("e.example", 2), domain("n.example", 3, "null_mx"),
         domain("x.example", 4, "dns_error"), domain("bad name", 5, "invalid"),
         domain("gone.example", 6, "nxdomain"), domain("quiet.example", 7, "no_mail")],
        # given out of preference order on purpose
        [mx("d.example", 20, "d2.example"), mx("d.example", 10, "d1.example"),
         mx("e.example", 10, "e2.example"), mx("e.example", 10, "e1.example")],
        [host("d1.example", "192.0.2.1", versions=("TLS 1.0", "TLS 1.1", "TLS 1.2")),
         host("d2.example", "192.0.2.2", status="no_starttls"),
         host("e1.example", "192.0.2.3", versions=("TLS 1.2", "TLS 1.3")),
         host("e2.example", "192.0.2.4", versions=("TLS 1.2",))])


def test_domain_verdicts_all_any_preferred() -> None:
    v = domain_verdicts(verdict_survey())
    d = row_of(v, "domain", "d.example")
    assert d["mx_hosts"] == "10 d1.example, 20 d2.example"
    assert (d["preferred_mx"], d["preferred_status"]) == ("d1.example", "starttls")
    assert (d["starttls_all"], d["starttls_any"], d["starttls_preferred"]) == (False, True, True)
    assert (d["tls_1_2_all"], d["tls_1_2_any"], d["tls_1_2_preferred"]) == (False, True, True)
    assert pd.isna(d["max_version_all"])  # d2 has no TLS at all
    assert (d["max_version_any"], d["max_version_preferred"]) == ("TLS 1.2", "TLS 1.2")
    assert d["min_version_any"] == "TLS 1.0"
    assert d["category"] == DomainCategory.TLS12_SOME

    e = row_of(v, "domain", "e.example")
    # both hosts share the lowest preference, so "preferred" needs both
    assert e["preferred_mx"] == "e1.example, e2.example"
    assert (e["tls_1_3_all"], e["tls_1_3_any"], e["tls_1_3_preferred"]) == (False, True, False)
    assert (e["max_version_all"], e["max_version_any"]) == ("TLS 1.2", "TLS 1.3")
    assert e["category"] == DomainCategory.TLS12_ALL


def test_domains_without_mx_hosts_keep_their_own_category() -> None:
    v = domain_verdicts(verdict_survey()).set_index("domain")
    assert v.loc["n.example", "category"] == "null MX"
    assert v.loc["x.example", "category"] == "DNS error"
    assert v.loc["bad name", "category"] == "invalid name"
    assert v.loc["gone.example", "category"] == "NXDOMAIN"
    assert v.loc["quiet.example", "category"] == "no mail records"
    assert pd.isna(v.loc["n.example", "starttls_any"]) and v.loc["n.example", "mx_count"] == 0
    assert list(v.index) == ["d.example", "e.example", "n.example", "x.example", "bad name",
                             "gone.example", "quiet.example"]  # rank order


def test_categories_cover_starttls_and_version_outcomes() -> None:
    cats = domain_verdicts(sample()).set_index("domain")["category"]
    assert cats.to_dict() == {
        "alpha.example": DomainCategory.TLS12_ALL, "beta.example": DomainCategory.TLS12_ALL,
        "gamma.example": DomainCategory.TLS12_SOME, "delta.example": DomainCategory.NO_TLS12,
        "epsilon.example": DomainCategory.NO_STARTTLS, "zeta.example": DomainCategory.UNREACHABLE,
        "eta.example": "null MX", "theta.example": "NXDOMAIN"}


def test_tables_without_columns_do_not_crash() -> None:
    empty = SurveyResults(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame())
    assert domain_verdicts(empty).empty and host_summary(empty).empty
    assert cell(headline(empty), "domains in input", "domain") == (0, 0)
    assert math.isnan(headline(empty)["share"].iloc[0])


# --- headline and lists -------------------------------------------------------------------------

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


# --- policy impact ------------------------------------------------------------------------------

REQUIRE_12 = Policy(require_starttls=True, min_version="TLS 1.2")


def impact_row(r: SurveyResults, policy: Policy, name: str) -> pd.Series:
    return row_of(policy_impact(r, policy), "domain", name)


def one_domain(*targets: tuple[int, dict], ciphers: list[dict] | None = None,
               name: str = "p.example") -> SurveyResults:
    """Domain ``name`` (rank 1) whose MX set is the given (preference, hosts row) pairs; a host
    given twice (two IPs) gets one MX record."""
    mxs: dict[str, dict] = {}
    for pref, h in targets:
        mxs.setdefault(h["mx_host"], mx(name, pref, h["mx_host"]))
    return build([domain(name, 1)], list(mxs.values()), [h for _, h in targets], ciphers or [])


def test_preferred_mx_fails_policy_backup_passes() -> None:
    r = one_domain((10, host("mx1.p.example", "192.0.2.1", versions=("TLS 1.0",))),
                   (20, host("mx2.p.example", "192.0.2.2", versions=("TLS 1.2",))))
    strict = impact_row(r, REQUIRE_12, "p.example")
    assert strict["reachable"] and strict["encrypted"] and strict["backup"]
    assert (strict["mx_host"], strict["ip"], strict["preference"]) == \
        ("mx2.p.example", "192.0.2.2", 20)
    assert strict["attempts"] == ("mx1.p.example [192.0.2.1]: max TLS 1.0 < TLS 1.2; "
                                  "mx2.p.example [192.0.2.2]: delivered")
    # opportunistically, the preferred host gets the mail, encrypted with TLS 1.0
    base = impact_row(r, Policy(), "p.example")
    assert (base["mx_host"], base["encrypted"], base["backup"]) == ("mx1.p.example", True, False)
    assert pd.isna(base["reason"])
    # an opportunistic "TLS ≥ 1.2 if possible" sender falls back to clear text, not to mx2
    soft = impact_row(r, Policy(min_version="TLS 1.2"), "p.example")
    assert soft["reachable"] and not soft["encrypted"]
    assert (soft["mx_host"], soft["reason"]) == ("mx1.p.example", "max TLS 1.0 < TLS 1.2")


def test_unreachable_preferred_mx_is_skipped() -> None:
    r = one_domain((5, host("mx1.p.example", "192.0.2.1", status="timeout")),
                   (10, host("mx2.p.example", "192.0.2.2", status="no_starttls")))
    base = impact_row(r, Policy(), "p.example")
    assert base["reachable"] and base["mx_host"] == "mx2.p.example" and base["backup"]
    assert not base["encrypted"] and base["reason"] == "no STARTTLS"  # delivered in clear
    strict = impact_row(r, Policy(require_starttls=True), "p.example")
    assert not strict["reachable"] and strict["reason"] == "no STARTTLS"
    assert strict["attempts"] == ("mx1.p.example [192.0.2.1]: timeout; "
                                  "mx2.p.example [192.0.2.2]: no STARTTLS")


def test_every_mx_failing_gives_the_reasons_in_order() -> None:
    r = one_domain((10, host("mx1.p.example", "192.0.2.1", status="no_starttls")),
                   (20, host("mx2.p.example", "192.0.2.2", versions=("TLS 1.0",))),
                   (30, host("mx3.p.example", "192.0.2.3", status="refused")))
    strict = impact_row(r, REQUIRE_12, "p.example")
    assert not strict["reachable"] and not strict["encrypted"] and pd.isna(strict["mx_host"])
    assert strict["reason"] == "no STARTTLS; max TLS 1.0 < TLS 1.2"


def test_no_reachable_mx_and_dns_reasons() -> None:
    r = build([domain("t.example", 1), domain("n.example", 2, "null_mx"),
               domain("e.example", 3, "dns_error"), domain("lost.example", 4)],
              [mx("t.example", 10, "a.t.example"), mx("t.example", 20, "b.t.example")],
              [host("a.t.example", "192.0.2.1", status="timeout"),
               host("b.t.example", None, status="unresolved")])
    impact = policy_impact(r, Policy()).set_index("domain")
    assert not impact["reachable"].any()
    assert impact["reason"].to_dict() == {"t.example": "no reachable MX", "n.example": "null MX",
                                          "e.example": "DNS error", "lost.example": "no MX host"}
    assert impact.loc["t.example", "attempts"] == ("a.t.example [192.0.2.1]: timeout; "
                                                   "b.t.example: unresolved")


def test_equal_preference_any_host_may_take_the_mail() -> None:
    r = one_domain((10, host("a.p.example", "192.0.2.1", status="tls_failed")),
                   (10, host("b.p.example", "192.0.2.2", versions=("TLS 1.3",))))
    strict = impact_row(r, REQUIRE_12, "p.example")
    assert strict["reachable"] and strict["mx_host"] == "b.p.example" and not strict["backup"]


def test_second_ip_of_a_host_is_tried_after_an_unreachable_first() -> None:
    r = one_domain((10, host("mx.p.example", "192.0.2.1", status="timeout")),
                   (10, host("mx.p.example", "192.0.2.2")))
    strict = impact_row(r, REQUIRE_12, "p.example")
    assert strict["reachable"] and strict["ip"] == "192.0.2.2"


@pytest.mark.parametrize(("status", "reason"), [
    ("starttls_rejected", "STARTTLS rejected"), ("tls_failed", "TLS handshake failed"),
    ("no_starttls", "no STARTTLS")])
def test_starttls_failures_have_their_reason(status: str, reason: str) -> None:
    r = one_domain((10, host("mx.p.example", status=status)))
    assert impact_row(r, Policy(require_starttls=True), "p.example")["reason"] == reason


def test_certificate_knob() -> None:
    r = one_domain((10, host("mx1.p.example", "192.0.2.1", cert_matches_mx=False)),
                   (20, host("mx2.p.example", "192.0.2.2", cert_matches_mx=None)))
    loose = impact_row(r, Policy(require_starttls=True), "p.example")
    assert loose["reachable"] and loose["mx_host"] == "mx1.p.example"
    strict = impact_row(r, Policy(require_starttls=True, require_cert_match=True), "p.example")
    assert not strict["reachable"]
    assert strict["reason"] == "certificate name mismatch; certificate name not checked"


def test_forward_secrecy_knob_looks_at_versions_at_or_above_the_minimum() -> None:
    ciphers = [suite("mx.p.example", "TLS 1.2", "TLS_RSA_WITH_AES_128_GCM_SHA256"),
               suite("mx.p.example", "TLS 1.0", CBC)]  # ECDHE, forward secret, TLS 1.0 only
    r = one_domain((10, host("mx.p.example", versions=("TLS 1.0", "TLS 1.2"))), ciphers=ciphers)
    assert impact_row(r, Policy(require_starttls=True, require_forward_secrecy=True),
                      "p.example")["reachable"]
    strict = impact_row(r, Policy(require_starttls=True, min_version="TLS 1.2",
                                  require_forward_secrecy=True), "p.example")
    assert not strict["reachable"]
    assert strict["reason"] == "no forward-secret suite at ≥ TLS 1.2"
    assert impact_row(r, REQUIRE_12, "p.example")["reachable"]


def test_policy_validation_and_labels() -> None:
    with pytest.raises(AnalysisError):
        Policy(min_version="TLS 1.4")
    with pytest.raises(ValueError):
        Policy(min_version="SSL 3.0")
    assert Policy().label == BASELINE_LABEL
    assert REQUIRE_12.label == "STARTTLS required, TLS ≥ 1.2"
    assert Policy(True, None, True, True).label == \
        "STARTTLS required, cert matches MX, forward secrecy"
    assert Policy(min_version="TLS 1.3").label == "opportunistic, TLS ≥ 1.3 if possible"


# --- sweep --------------------------------------------------------------------------------------

def sweep_survey() -> SurveyResults:
    """Ranks 1, 2, 4 deliverable at baseline (TLS 1.2, TLS 1.0, no STARTTLS); rank 3 NXDOMAIN."""
    return build(
        [domain("r1.example", 1), domain("r2.example", 2), domain("r3.example", 3, "nxdomain"),
         domain("r4.example", 4)],
        [mx("r1.example", 10, "mx.r1.example"), mx("r2.example", 10, "mx.r2.example"),
         mx("r4.example", 10, "mx.r4.example")],
        [host("mx.r1.example", "192.0.2.1"),
         host("mx.r2.example", "192.0.2.2", versions=("TLS 1.0",)),
         host("mx.r4.example", "192.0.2.4", status="no_starttls")])


def test_policy_sweep_counts_shares_weights_and_lost_domains() -> None:
    sweep = policy_sweep(sweep_survey(), [Policy(), "TLS 1.2", None]).set_index("policy")
    weight = 1 + 1 / 2 + 1 / 3 + 1 / 4
    base = sweep.loc[BASELINE_LABEL]
    assert (base["domains"], base["reachable"], base["encrypted"], base["lost"]) == (4, 3, 2, 0)
    assert base["reachable_share"] == pytest.approx(0.75)
    assert base["weighted_reachable_share"] == pytest.approx((1 + 1 / 2 + 1 / 4) / weight)
    assert base["weighted_encrypted_share"] == pytest.approx((1 + 1 / 2) / weight)
    strict = sweep.loc["STARTTLS required, TLS ≥ 1.2"]
    assert (strict["reachable"], strict["lost"]) == (1, 2)
    assert strict["lost_domains"] == ["r2.example", "r4.example"]  # rank order
    assert strict["weighted_reachable_share"] == pytest.approx(1 / weight)
    only = sweep.loc["STARTTLS required"]
    assert (only["reachable"], only["lost_domains"]) == (2, ["r4.example"])


def test_default_sweep_and_missing_ranks() -> None:
    policies = default_policies()
    assert policies[0] == Policy() and len(policies) == 10
    sweep = policy_sweep(sweep_survey())
    assert sweep["policy"].iloc[0] == BASELINE_LABEL
    # opportunistic never loses a domain, it only loses encryption
    opportunistic = sweep[~sweep["require_starttls"]]
    assert (opportunistic["reachable"] == 3).all()
    assert opportunistic["encrypted"].tolist() == [2, 2, 1, 1, 0]
    assert sweep[sweep["require_starttls"]]["reachable"].tolist() == [2, 2, 1, 1, 0]
    no_ranks = build([domain("a.example")], [mx("a.example", 10, "mx.a.example")],
                     [host("mx.a.example")])
    assert math.isnan(policy_sweep(no_ranks, [Policy()])["weighted_reachable_share"].iloc[0])


def test_rank_weights() -> None:
    w = rank_weights(pd.Series([1, 2, None, 0], dtype="Int64"))
    assert w.iloc[:2].tolist() == [1.0, 0.5] and w.iloc[2:].isna().all()


# --- ciphers ------------------------------------------------------------------------------------

def cipher_survey() -> SurveyResults:
    rc4 = "TLS_RSA_WITH_RC4_128_SHA"
    return build(
        [domain("c.example", 1)],
        [mx("c.example", 10, "two.example"), mx("c.example", 20, "one.example")],
        [host("two.example", "192.0.2.1", versions=("TLS 1.0", "TLS 1.2")),
         host("two.example", "192.0.2.2", versions=("TLS 1.2",)),
         host("one.example", "192.0.2.3", versions=("TLS 1.2", "TLS 1.3"))],
        [suite("two.example", "TLS 1.2", GCM, "192.0.2.1"),
         suite("two.example", "TLS 1.2", GCM, "192.0.2.2"),
         suite("two.example", "TLS 1.0", rc4, "192.0.2.1"),  # one IP only
         suite("one.example", "TLS 1.2", GCM, "192.0.2.3"),
         suite("one.example", "TLS 1.2", CBC, "192.0.2.3"),
         suite("one.example", "TLS 1.3", TLS13, "192.0.2.3")])


def test_host_ciphers_need_every_ip_and_weak_suites_any_ip() -> None:
    r = cipher_survey()
    hc = host_ciphers(r)
    assert hc[hc["mx_host"] == "two.example"]["cipher"].tolist() == [GCM]
    assert hc[hc["mx_host"] == "one.example"]["cipher"].tolist() == [TLS13, CBC, GCM]  # by name
    weak = weak_suites(r)
    assert weak[["mx_host", "tls_version", "weaknesses", "ips"]].values.tolist() == [
        ["two.example", "TLS 1.0", "RC4", 1]]
    assert weak_hosts(r)[["mx_host", "weak_suites", "weaknesses"]].values.tolist() == [
        ["two.example", 1, "RC4"]]


def test_cipher_summaries_per_version() -> None:
    r = cipher_survey()
    summary = cipher_summary(r)
    gcm = summary[(summary["tls_version"] == "TLS 1.2") & (summary["cipher"] == GCM)].iloc[0]
    assert (gcm["hosts"], gcm["share"]) == (2, 1.0)
    per_version = cipher_version_summary(r).set_index("tls_version")
    v12 = per_version.loc["TLS 1.2"]
    assert (v12["hosts"], v12["suites"], v12["host_suites"]) == (2, 2, 3)
    assert v12["fs_share"] == pytest.approx(1.0)  # all ECDHE
    assert v12["aead_share"] == pytest.approx(2 / 3)  # GCM twice, CBC once
    assert v12["hosts_aead_share"] == pytest.approx(1.0)
    assert per_version.loc["TLS 1.0", "hosts"] == 0  # RC4 only on one of two IPs
    assert math.isnan(per_version.loc["TLS 1.0", "fs_share"])
    counts = suite_class_counts(r)
    assert counts.loc["TLS 1.2"].to_dict() == {"FS + AEAD": 2, "FS, no AEAD": 1,
                                               "no FS, AEAD": 0, "no FS, no AEAD": 0, "weak": 0}
    assert counts.loc["TLS 1.3", "FS + AEAD"] == 1 and counts.values.sum() == 4


def test_anonymous_flag_counts_as_weak_even_with_a_bland_name() -> None:
    r = build([domain("a.example", 1)], [mx("a.example", 10, "mx.a.example")],
              [host("mx.a.example")],
              [suite("mx.a.example", "TLS 1.2", "SOME_SUITE", anonymous=True)])
    assert weak_suites(r)["weaknesses"].tolist() == ["anon"]


# --- providers, dates ---------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "provider"), [
    ("mx1.mail.example.com", "example.com"), ("gmail-smtp-in.l.google.com", "google.com"),
    ("mx.yahoo.co.jp", "yahoo.co.jp"), ("mail.bbc.co.uk", "bbc.co.uk"),
    ("mx.example.de", "example.de"), ("a.b.example.io", "example.io"),
    ("Example.COM.", "example.com"), ("localhost", "localhost")])
def test_provider_of(name: str, provider: str) -> None:
    assert provider_of(name) == provider


def test_provider_table() -> None:
    t = provider_table(sample())
    assert list(t.index[:2]) == ["big.example", "gamma.example"]  # most domains, then hosts
    gamma = t.loc["gamma.example"]
    assert (gamma["domains"], gamma["hosts"], gamma["starttls"]) == (1, 2, 0.5)
    assert len(provider_table(sample(), top=2)) == 2


def test_scan_date() -> None:
    assert scan_date({"started_at": "2024-03-05T23:59:00Z"}) == "2024-03-05"
    assert scan_date({}) is None
    assert scan_date({"started_at": "yesterday"}) == "yesterday"


# --- compare ------------------------------------------------------------------------------------

def test_compare_lists_only_changes() -> None:
    before = build(
        [domain("a.example", 1), domain("b.example", 2), domain("c.example", 3)],
        [mx("a.example", 10, "mx.a.example"), mx("b.example", 10, "mx.b.example"),
         mx("c.example", 10, "mx.c.example")],
        [host("mx.a.example", "192.0.2.1"), host("mx.b.example", "192.0.2.2",
                                                 status="no_starttls"),
         host("mx.c.example", "192.0.2.3")],
        meta={"started_at": "2019-07-01T00:00:00Z"})
    after = build(
        [domain("a.example", 1), domain("b.example", 2), domain("d.example", 3)],
        [mx("a.example", 10, "mx.a.example"), mx("b.example", 10, "mx.b.example"),
         mx("d.example", 10, "mx.d.example")],
        [host("mx.a.example", "192.0.2.1", versions=("TLS 1.2", "TLS 1.3")),
         host("mx.b.example", "192.0.2.2", status="no_starttls"),
         host("mx.d.example", "192.0.2.4", status="timeout")])
    c = compare(before, after)
    domains = c.domains.set_index("domain")
    assert domains["change"].to_dict() == {"a.example": "changed", "c.example": "removed",
                                           "d.example": "added"}
    a = domains.loc["a.example"]
    assert a["changed"] == "max_version_any, max_version_all, versions"
    assert (a["versions_gained"], a["versions_lost"]) == ("TLS 1.3", "")
    assert (a["max_version_any_before"], a["max_version_any_after"]) == ("TLS 1.2", "TLS 1.3")
    hosts = c.hosts.set_index("mx_host")
    assert hosts["change"].to_dict() == {"mx.a.example": "changed", "mx.c.example": "removed",
                                         "mx.d.example": "added"}
    assert hosts.loc["mx.a.example", "versions_gained"] == "TLS 1.3"
    assert hosts.loc["mx.c.example", "versions_lost"] == "TLS 1.2"
    s = c.summary.set_index(["metric", "unit"]).loc[("accepts TLS 1.3", "MX host")]
    assert (s["count_before"], s["count_after"]) == (0, 1)
    assert s["share_change"] == pytest.approx(1 / 3)
    assert (c.before_date, c.after_date) == ("2019-07-01", "2024-03-05")


def test_compare_identical_surveys_is_empty() -> None:
    c = compare(sample(), sample())
    assert c.domains.empty and c.hosts.empty
    assert (c.summary["share_change"].dropna() == 0).all()


def test_opted_out_hosts_and_domains_are_not_counted_as_reached() -> None:
    """An opted-out MX host was never contacted: a sender's delivery there is unknown, so the
    policy skips it for the backup; an opted-out domain keeps a category of its own."""
    r = build(
        domains=[domain("a.example", 1), domain("b.example", 2, dns_status="opted_out")],
        mx=[mx("a.example", 10, "mx1.a.example"), mx("a.example", 20, "mx2.a.example")],
        hosts=[host("mx1.a.example", "192.0.2.1", status="opted_out"),
               host("mx2.a.example", "192.0.2.2", versions=("TLS 1.0",))],
    )
    cats = domain_verdicts(r).set_index("domain")["category"]
    assert cats["b.example"] == "opted out (not surveyed)"
    impact = policy_impact(r, Policy()).set_index("domain")
    assert impact.loc["a.example", "mx_host"] == "mx2.a.example"
    strict = policy_impact(r, Policy(require_starttls=True, min_version="TLS 1.2"))
    assert not strict.set_index("domain").loc["a.example", "reachable"]
