"""research.analysis.policy: what a sender's TLS policy costs, one domain at a time and swept, on
small hand-built surveys whose right answers are worked out here."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from support.survey_builder import (
    CBC,
    build,
    domain,
    host,
    mx,
    suite,
)
from support.tables import row_of

from research.analysis import (
    BASELINE_LABEL,
    AnalysisError,
    Policy,
    default_policies,
    domain_verdicts,
    policy_impact,
    policy_sweep,
    rank_weights,
)
from research.store.results import SurveyResults

# --- policy impact --------------------------------------------------------------------------------

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


# --- sweep ----------------------------------------------------------------------------------------

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


# --- opted out --------------------------------------------------------------------------------
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
