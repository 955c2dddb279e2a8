"""research.analysis.compare: what changed between two surveys, on small hand-built surveys whose
right answers are worked out here."""

from __future__ import annotations

import pytest
from support.survey_builder import (
    build,
    domain,
    host,
    mx,
    sample,
)

from research.analysis import (
    compare,
)

# --- compare --------------------------------------------------------------------------------------

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
