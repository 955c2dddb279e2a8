"""The report's words: the answer first, as sentences that state the numbers and their units.

Every number here comes from :mod:`research.report.tables`; the sentences name the unit
(domains, unique MX hosts) and the scan date, as the 2019 diary's own summary did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from research.analysis import Policy, scan_date
from research.analysis.core import CATEGORIES
from research.analysis.enforcement import describe
from research.report.tables import (
    STARTTLS_ONLY,
    STRICT,
    ComparisonTables,
    ReportTables,
    missing,
    policy_row,
    report_tables,
)
from research.store.results import SurveyResults
from research.store.schema import MAIL_DNS_STATUSES, Unit

NO_DATA = "No data: the survey contains no domains."
STARTTLS = "STARTTLS (TLS handshake succeeds)"


@dataclass(frozen=True)
class KeyNumber:
    """One of the summary's headline figures: ``value`` (e.g. ``91%``), what it is, of what."""

    value: str
    label: str
    detail: str


def pct(count: float, total: float) -> str:
    """``"4 of 8 (50%)"``."""
    return f"{int(count)} of {int(total)} ({count / total:.0%})" if total else \
        f"{int(count)} of {int(total)}"


def _share(count: float, total: float) -> str:
    return f"{count / total:.0%}" if total else "–"


def _cell(table: pd.DataFrame, metric: str, unit: str) -> tuple[int, int]:
    rows = table[(table["metric"] == metric) & (table["unit"] == unit)]
    if rows.empty:
        return 0, 0
    return int(rows["count"].iloc[0]), int(rows["total"].iloc[0])


def listing(items: list[str]) -> str:
    return ", ".join(items) if items else "none"


def narrative(results: SurveyResults) -> list[str]:
    """The report's summary as plain sentences stating the numbers (one string per paragraph).

    ``[NO_DATA]`` for a survey without domains.
    """
    return summary_paragraphs(results, report_tables(results))


def summary_paragraphs(results: SurveyResults, t: ReportTables) -> list[str]:
    d = t.domains
    if d.empty:
        return [NO_DATA]
    n = len(d)
    date = scan_date(results.meta)
    mail = int(d["dns_status"].isin(MAIL_DNS_STATUSES).fillna(False).sum())
    counts = d["category"].value_counts()
    dead = {c: int(counts.get(c, 0)) for c in CATEGORIES[4:] if counts.get(c, 0)}
    s_any, _ = _cell(t.headline, STARTTLS, Unit.DOMAIN_ANY)
    s_all, _ = _cell(t.headline, STARTTLS, Unit.DOMAIN_ALL)
    h_tls, h_total = _cell(t.headline, STARTTLS, Unit.MX_HOST)
    h_12, _ = _cell(t.headline, "accepts TLS 1.2", Unit.MX_HOST)
    h_13, _ = _cell(t.headline, "accepts TLS 1.3", Unit.MX_HOST)
    paragraphs = [
        f"{n} domains were surveyed" + (f" on {date}" if date else "") + f". {mail} have MX "
        "hosts (MX records or an implicit MX). "
        + (f"{sum(dead.values())} could not be delivered to at all: "
           + "; ".join(f"{c}: {k}" for c, k in dead.items()) + "." if dead
           else "Every domain had a reachable MX host."),
        f"STARTTLS: {pct(s_any, n)} domains offer it on at least one MX host and "
        f"{pct(s_all, n)} on all of them. Domains whose MX hosts answered but offer no "
        f"STARTTLS at all: {len(t.without_starttls)} ({listing(t.without_starttls)}).",
        f"TLS 1.2: of the {s_any} domains with STARTTLS, {len(t.without_tls12)} cannot "
        f"negotiate TLS 1.2 or newer on any MX host ({listing(t.without_tls12)}).",
        f"Per unique MX host: {pct(h_tls, h_total)} offer STARTTLS on every IP; "
        f"{pct(h_12, h_total)} accept TLS 1.2 and {pct(h_13, h_total)} TLS 1.3.",
    ]
    paragraphs.append(policy_sentence(t.sweep, n))
    return [p for p in paragraphs if p]


def policy_sentence(sweep: pd.DataFrame, n: int) -> str:
    base, only, strict = (policy_row(sweep, p) for p in (Policy(), STARTTLS_ONLY, STRICT))
    if base is None or only is None or strict is None:
        return ""
    extra = [d for d in strict["lost_domains"] if d not in set(only["lost_domains"])]
    weighted = strict["weighted_reachable_share"]
    text = (f"Policy: opportunistic TLS reaches {pct(base['reachable'], n)} domains. Requiring "
            f"STARTTLS reaches {pct(only['reachable'], n)} (loses {only['lost']}); requiring "
            f"STARTTLS with TLS ≥ 1.2 reaches {pct(strict['reachable'], n)} (loses "
            f"{strict['lost']}: {listing(list(strict['lost_domains']))}). The TLS 1.2 "
            f"requirement itself costs {len(extra)} domain(s) beyond STARTTLS ({listing(extra)}).")
    if not missing(weighted):
        text += (f" Weighted by popularity (1/rank), {float(weighted):.1%} of the list stays "
                 "reachable under it.")
    return text


def answer(t: ReportTables) -> str:
    """The diary's question answered in one sentence."""
    n = len(t.domains)
    strict = policy_row(t.sweep, STRICT)
    if not n or strict is None:
        return NO_DATA
    lost = int(strict["lost"])
    beyond = [d for d in strict["lost_domains"] if d not in set(t.without_starttls)]
    if lost == 0:
        return (f"Yes: a sender requiring STARTTLS with TLS 1.2 or newer still reaches all {n} "
                "domains.")
    return (f"Requiring STARTTLS with TLS 1.2 or newer would lose {pct(lost, n)} domains: "
            f"{len(t.without_starttls)} offer no STARTTLS at all, and "
            f"{len(t.without_tls12)} offer it but nothing newer than TLS 1.1"
            + (f"; {len(beyond) - len(t.without_tls12)} more are unreachable otherwise"
               if len(beyond) > len(t.without_tls12) else "") + ".")


def key_numbers(t: ReportTables) -> list[KeyNumber]:
    """The four figures a reader looks for first."""
    n = len(t.domains)
    if not n:
        return []
    s_any, _ = _cell(t.headline, STARTTLS, Unit.DOMAIN_ANY)
    v12, v12_total = _cell(t.headline, "accepts TLS 1.2", Unit.DOMAIN_ANY)
    h13, h_total = _cell(t.headline, "accepts TLS 1.3", Unit.MX_HOST)
    strict = policy_row(t.sweep, STRICT)
    reach = int(strict["reachable"]) if strict is not None else 0
    return [
        KeyNumber(_share(s_any, n), "of domains offer STARTTLS",
                  f"{s_any} of {n} domains, on at least one MX host"),
        KeyNumber(_share(v12, v12_total), "of mail domains accept TLS 1.2",
                  f"{v12} of {v12_total} domains with MX hosts, on at least one MX host"),
        KeyNumber(_share(h13, h_total), "of MX hosts accept TLS 1.3",
                  f"{h13} of {h_total} unique MX hosts, on every IP"),
        KeyNumber(_share(reach, n), "reachable when requiring TLS ≥ 1.2",
                  f"{reach} of {n} domains for a sender requiring STARTTLS with TLS ≥ 1.2"),
    ]


def enforcement_sentences(results: SurveyResults) -> list[str]:
    """The enforcement findings, one sentence a line (:func:`research.analysis.enforcement.
    describe`)."""
    return [line for line in describe(results).splitlines() if line.strip()]


def comparison_sentences(c: ComparisonTables, t: ReportTables, results: SurveyResults,
                         previous: SurveyResults) -> list[str]:
    """What changed, in sentences: the shares then and now, the policy's cost, who moved."""
    comp = c.comparison
    when = (comp.before_date or "date unknown", comp.after_date or "date unknown")
    summary = comp.summary
    parts = []
    for metric, words in ((STARTTLS, "offered STARTTLS"), ("accepts TLS 1.2", "accepted TLS 1.2"),
                          ("accepts TLS 1.3", "accepted TLS 1.3"),
                          ("accepts TLS 1.0", "still accepted TLS 1.0")):
        row = summary[(summary["metric"] == metric) & (summary["unit"] == Unit.DOMAIN_ANY)]
        if row.empty:
            continue
        r = row.iloc[0]
        parts.append(f"{words}: {pct(r['count_before'], r['total_before'])} then, "
                     f"{pct(r['count_after'], r['total_after'])} now")
    sentences = [f"Compared with the earlier survey ({when[0]}, {len(previous.domains)} domains) "
                 f"this one ({when[1]}, {len(results.domains)} domains) finds, per domain with "
                 "MX hosts (any MX host): " + "; ".join(parts) + "."]
    then_row, now_row = policy_row(c.previous_sweep, STRICT), policy_row(t.sweep, STRICT)
    if then_row is not None and now_row is not None:
        sentences.append(f"A sender requiring STARTTLS with TLS ≥ 1.2 would have reached "
                         f"{pct(then_row['reachable'], len(previous.domains))} domains then and "
                         f"reaches {pct(now_row['reachable'], len(results.domains))} now.")
    changed = comp.domains
    moved = _moves(changed)
    sentences.append(f"{len(changed)} domains changed in some respect"
                     + (": " + "; ".join(f"{k} {len(v)} ({listing(v[:8])}"
                                         f"{', …' if len(v) > 8 else ''})"
                                         for k, v in moved.items() if v) if moved else "")
                     + ".")
    return sentences


def _moves(changed: pd.DataFrame) -> dict[str, list[str]]:
    if changed.empty:
        return {}

    def where(column: str, value: bool) -> set[str]:
        hits = changed[changed[column].map(lambda v: _is(v, value))]
        return set(hits["domain"])

    def having(column: str, version: str) -> list[str]:
        return sorted(changed[changed[column].fillna("").str.contains(version)]["domain"])

    return {
        "gained STARTTLS": sorted(where("starttls_any_before", False)
                                  & where("starttls_any_after", True)),
        "lost STARTTLS": sorted(where("starttls_any_before", True)
                                & where("starttls_any_after", False)),
        "switched TLS 1.0 off": having("versions_lost", "TLS 1.0"),
        "added TLS 1.3": having("versions_gained", "TLS 1.3"),
        "added": sorted(changed[changed["change"] == "added"]["domain"]),
        "removed": sorted(changed[changed["change"] == "removed"]["domain"]),
    }


def _is(value: Any, wanted: bool) -> bool:
    return not missing(value) and bool(value) is wanted
