"""The report's tables: computed once from a survey, shown with human column names.

Every table the report shows or writes is a function of :mod:`research.analysis`; this module
picks the columns a reader needs, names them for people (``reachable_share`` → "Share"), and
formats shares, lists and nulls for a page or a Markdown file. The files keep the analysis's
own column names, for reuse by programs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from research.analysis import (
    Comparison,
    Policy,
    cipher_summary,
    cipher_version_summary,
    compare,
    dane_verdicts,
    diary_summary,
    domain_verdicts,
    domains_lacking_version,
    domains_without_starttls,
    enforcement_readiness,
    failure_types,
    headline,
    host_summary,
    mta_sts_verdicts,
    policy_sweep,
    readiness_summary,
    weak_suites,
)
from research.analysis.policy import default_policies
from research.store.results import SurveyResults

STRICT = Policy(require_starttls=True, min_version="TLS 1.2")
"""The 2019 diary's question: a sender requiring STARTTLS with TLS 1.2 or newer."""
STARTTLS_ONLY = Policy(require_starttls=True)

COLUMN_LABELS: dict[str, str] = {
    # diary, headline
    "metric": "Finding", "unit": "Unit", "count": "Count", "total": "Of", "share": "Share",
    "domains": "Domains",
    # policy sweep
    "policy": "Sender policy", "reachable": "Reachable", "reachable_share": "Share",
    "weighted_reachable_share": "Share weighted by 1/rank", "lost": "Lost",
    "lost_domains": "Domains lost",
    # per domain
    "domain": "Domain", "rank": "Rank", "dns_status": "DNS", "category": "Category",
    "mx_hosts": "MX hosts", "starttls_any": "STARTTLS (any MX)",
    "starttls_all": "STARTTLS (all MX)", "max_version_any": "Newest version (any MX)",
    "max_version_all": "Newest version (all MX)", "min_version_any": "Oldest version (any MX)",
    # per host
    "mx_host": "MX host", "status": "Status", "starttls": "STARTTLS",
    "max_version": "Newest version", "min_version": "Oldest version",
    "cert_matches_mx": "Certificate matches", "provider": "Provider",
    # ciphers
    "tls_version": "Version", "hosts": "MX hosts", "suites": "Suites",
    "hosts_fs_share": "Hosts offering forward secrecy", "hosts_aead_share": "Hosts offering AEAD",
    "hosts_weak_share": "Hosts accepting a weak suite", "cipher": "Cipher suite",
    "weaknesses": "Weaknesses", "ips": "IP addresses",
    # enforcement
    "readiness": "Readiness", "verdict": "Verdict", "mode": "Mode", "fetch_status": "Fetch",
    "refused": "Refused MX hosts", "refused_reasons": "Why", "coverage": "MX hosts covered",
    "mx_dnssec": "MX RRset DNSSEC", "result": "Result (RFC 8460)",
    # comparison
    "then": "Then", "now": "Now", "change": "Change", "changed": "What changed",
    "category_before": "Then", "category_after": "Now", "versions_gained": "Versions gained",
    "versions_lost": "Versions lost",
}
"""Human names of the columns the page shows."""


@dataclass
class ReportTables:
    """Every table of one survey's report, computed once."""

    headline: pd.DataFrame
    diary: pd.DataFrame
    sweep: pd.DataFrame
    domains: pd.DataFrame
    hosts: pd.DataFrame
    versions: pd.DataFrame
    ciphers: pd.DataFrame
    weak: pd.DataFrame
    without_starttls: list[str]
    without_tls12: list[str]
    lost: pd.DataFrame
    """The domains a sender requiring STARTTLS with TLS ≥ 1.2 loses, and why."""
    enforcement: EnforcementTables | None


@dataclass
class EnforcementTables:
    readiness: pd.DataFrame
    summary: pd.DataFrame
    mta_sts: pd.DataFrame
    dane: pd.DataFrame
    failures: pd.DataFrame


def has_enforcement(results: SurveyResults) -> bool:
    """Whether the survey looked up MTA-STS, TLS-RPT and DANE and judged certificates (surveys
    from before those lookups have none of them)."""
    webpki = results.hosts.get("webpki_result")
    return bool(len(results.mta_sts) or len(results.dane) or len(results.tlsrpt)
                or (webpki is not None and webpki.notna().any()))


def report_tables(results: SurveyResults) -> ReportTables:
    policies = default_policies()
    if STARTTLS_ONLY not in policies:
        policies.append(STARTTLS_ONLY)
    sweep = policy_sweep(results, policies)
    domains = domain_verdicts(results)
    return ReportTables(
        headline=headline(results),
        diary=diary_summary(results),
        sweep=sweep,
        domains=domains,
        hosts=host_summary(results),
        versions=cipher_version_summary(results),
        ciphers=cipher_summary(results),
        weak=weak_suites(results),
        without_starttls=domains_without_starttls(results),
        without_tls12=domains_lacking_version(results, "TLS 1.2", starttls_only=True),
        lost=_lost(sweep, domains),
        enforcement=_enforcement(results) if has_enforcement(results) else None,
    )


def _enforcement(results: SurveyResults) -> EnforcementTables:
    return EnforcementTables(
        readiness=enforcement_readiness(results),
        summary=readiness_summary(results),
        mta_sts=mta_sts_verdicts(results),
        dane=dane_verdicts(results),
        failures=failure_types(results),
    )


def policy_row(sweep: pd.DataFrame, policy: Policy) -> dict[str, Any] | None:
    """The sweep's row of ``policy`` as a dict, or None if the sweep lacks it."""
    rows = sweep[sweep["policy"].astype(str) == policy.label]
    return None if rows.empty else dict(rows.iloc[0])


def _lost(sweep: pd.DataFrame, domains: pd.DataFrame) -> pd.DataFrame:
    row = policy_row(sweep, STRICT)
    names = list(row["lost_domains"]) if row is not None else []
    lost = domains[domains["domain"].isin(names)]
    return lost[["domain", "rank", "category", "mx_hosts", "max_version_any"]].reset_index(
        drop=True)


# -- the comparison ------------------------------------------------------------------------------

COMPARED = ("STARTTLS (TLS handshake succeeds)", "accepts TLS 1.0", "accepts TLS 1.1",
            "accepts TLS 1.2", "accepts TLS 1.3", "STARTTLS, no TLS ≥ 1.2")
"""The headline metrics the comparison puts side by side."""
COMPARED_UNITS = ("domain (any MX host)", "MX host")


@dataclass
class ComparisonTables:
    comparison: Comparison
    side_by_side: pd.DataFrame
    """One row per compared metric: then, now and the change, per domain and per MX host."""
    moved: pd.DataFrame
    """The changed domains whose category changed (the ones a reader asks about)."""
    previous_sweep: pd.DataFrame


def comparison_tables(previous: SurveyResults, results: SurveyResults) -> ComparisonTables:
    comparison = compare(previous, results)
    summary = comparison.summary
    rows = []
    for metric in COMPARED:
        row: dict[str, Any] = {"metric": metric}
        for unit, prefix in zip(COMPARED_UNITS, ("domains", "hosts"), strict=True):
            cell = summary[(summary["metric"] == metric) & (summary["unit"] == unit)]
            if cell.empty:
                continue
            c = cell.iloc[0]
            row[f"{prefix}_then"] = _of(c["count_before"], c["total_before"])
            row[f"{prefix}_now"] = _of(c["count_after"], c["total_after"])
            row[f"{prefix}_change"] = _points(c["share_change"])
        rows.append(row)
    changed = comparison.domains
    moved = changed[changed["changed"].str.contains("category")] if len(changed) else changed
    policies = [Policy(), STARTTLS_ONLY, STRICT]
    return ComparisonTables(comparison, pd.DataFrame(rows), moved.reset_index(drop=True),
                            policy_sweep(previous, policies))


def _of(count: Any, total: Any) -> str:
    if missing(count) or missing(total):
        return ""
    count, total = int(count), int(total)
    return f"{count}/{total} ({count / total:.0%})" if total else f"{count}/{total}"


def _points(change: Any) -> str:
    return "" if missing(change) else f"{float(change) * 100:+.0f} pp"


# -- display ---------------------------------------------------------------------------------------


def missing(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float) and math.isnan(value))


def flatten(table: pd.DataFrame) -> pd.DataFrame:
    """Lists become comma-joined strings, so CSV and Markdown cells stay one value."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object and out[col].map(lambda v: isinstance(v, list | tuple)).any():
            out[col] = out[col].map(lambda v: ", ".join(map(str, v))
                                    if isinstance(v, list | tuple) else v)
    return out


def _cell(column: str, value: object) -> object:
    if missing(value):
        return ""
    if column.endswith("share") or column.endswith("_share_change") or column == "coverage":
        return f"{float(value):.1%}"  # type: ignore[arg-type]
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def display(table: pd.DataFrame, columns: list[str] | None = None, *,
            labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Human form of ``table``: only ``columns`` (default all), shares as percentages, lists
    joined, booleans yes/no, nulls empty, columns named by :data:`COLUMN_LABELS` (or
    ``labels``)."""
    out = flatten(table if columns is None else table[columns])
    for col in out.columns:
        out[col] = out[col].astype(object).map(lambda v, c=col: _cell(c, v))
    names = {**COLUMN_LABELS, **(labels or {})}
    return out.rename(columns={c: names.get(c, c) for c in out.columns})
