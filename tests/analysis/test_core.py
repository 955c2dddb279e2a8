"""research.analysis.core: units of analysis, domain verdicts over the MX set, providers and dates,
on small hand-built surveys whose right answers are worked out here."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from support.survey_builder import (
    build,
    domain,
    host,
    mx,
    sample,
)
from support.tables import cell, row_of

from research.analysis import (
    domain_verdicts,
    headline,
    host_summary,
    provider_of,
    provider_table,
    scan_date,
)
from research.store.results import SurveyResults
from research.store.schema import DomainCategory

# --- units: per MX host vs per domain -------------------------------------------------------------

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


# --- domain verdicts ------------------------------------------------------------------------------

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


# --- providers, dates -----------------------------------------------------------------------------

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
