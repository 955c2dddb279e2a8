"""Headline numbers, per MX host and per domain, and the 2019 diary's own summary."""

from __future__ import annotations

import math

import pandas as pd

from research.analysis.core import (
    CATEGORIES,
    FEATURE_LABELS,
    FEATURES,
    TLS12_RANK,
    check_version,
    check_view,
    domain_frame,
    host_frame,
    version_label,
)
from research.store.results import SurveyResults
from research.store.schema import (
    DNS_CATEGORIES,
    MAIL_DNS_STATUSES,
    TLS_VERSIONS,
    UNIT_BY_VIEW,
    DnsStatus,
    DomainCategory,
    Unit,
    View,
)

UNITS: tuple[Unit, ...] = (Unit.DOMAIN, *UNIT_BY_VIEW.values(), Unit.MX_HOST)
"""Every ``unit`` value of :func:`headline`, in display order."""
UNIT_DOMAIN = Unit.DOMAIN
UNIT_HOST = Unit.MX_HOST
"""The first and last of :data:`UNITS` under the names ``research.analysis`` has always
exported them by (the package itself spells them :class:`~research.store.schema.Unit`)."""

HEADLINE_COLUMNS = ["metric", "unit", "count", "total", "share"]


def _row(metric: str, unit: str, count: int, total: int) -> dict[str, object]:
    return {"metric": metric, "unit": unit, "count": int(count), "total": int(total),
            "share": count / total if total else math.nan}


def headline(results: SurveyResults) -> pd.DataFrame:
    """The headline numbers as a tidy table: ``metric, unit, count, total, share``.

    ``unit`` is one of :data:`UNITS`. Per domain: the input size, the DNS outcome and the
    category of every domain (total: all input domains). Per domain view and per MX host: every
    feature of :data:`~research.analysis.core.FEATURES` ("accepts TLS 1.2", "STARTTLS ...";
    total: domains with MX hosts, resp. unique MX hosts), "STARTTLS, no TLS ≥ 1.2" (total: the
    units with STARTTLS), and the distribution of the highest and lowest accepted version
    ("highest version: none" = no TLS at all). ``share`` is NaN when ``total`` is 0.
    """
    domains = domain_frame(results)
    hosts = host_frame(results)
    rows = _domain_rows(domains)
    mail = domains[domains["dns_status"].isin(MAIL_DNS_STATUSES).fillna(False).astype(bool)]
    for view, unit in UNIT_BY_VIEW.items():
        rows += _unit_rows(unit, mail, f"_{view}", max_rank=f"max_rank_{view}",
                           min_rank=None if view == View.ALL else f"min_rank_{view}")
    rows += _unit_rows(Unit.MX_HOST, hosts, "", max_rank="max_rank", min_rank="min_rank")
    return pd.DataFrame(rows, columns=HEADLINE_COLUMNS).astype(
        {"metric": "string", "unit": "string", "count": "int64", "total": "int64",
         "share": "float64"})


def _domain_rows(domains: pd.DataFrame) -> list[dict[str, object]]:
    n = len(domains)
    status = domains["dns_status"].astype("string")
    rows = [_row("domains in input", Unit.DOMAIN, n, n),
            _row("has MX hosts (MX or implicit MX)", Unit.DOMAIN,
                 int(status.isin(MAIL_DNS_STATUSES).fillna(False).sum()), n)]
    labels = {DnsStatus.MX: "MX records", DnsStatus.IMPLICIT_MX: "implicit MX (A/AAAA)",
              **DNS_CATEGORIES}
    for value, label in labels.items():
        rows.append(_row(f"DNS: {label}", Unit.DOMAIN,
                         int((status == value).fillna(False).sum()), n))
    for cat in CATEGORIES:
        count = int((domains["category"] == cat).sum())
        if cat != DomainCategory.UNKNOWN_DNS or count:
            rows.append(_row(f"category: {cat}", Unit.DOMAIN, count, n))
    return rows


def _unit_rows(unit: str, frame: pd.DataFrame, suffix: str, *, max_rank: str,
               min_rank: str | None) -> list[dict[str, object]]:
    """Feature, no-TLS-1.2 and version-distribution rows of one unit; columns are
    ``<feature><suffix>`` of ``frame``."""
    n = len(frame)
    rows = [_row(FEATURE_LABELS[f], unit, int(_true(frame[f + suffix]).sum()), n)
            for f in FEATURES]
    starttls = _true(frame["starttls" + suffix])
    below = starttls & (frame[max_rank].astype("int64") < TLS12_RANK)
    # Among units with STARTTLS, those where nothing reaches TLS 1.2: the category's words.
    rows.append(_row(DomainCategory.NO_TLS12, unit, int(below.sum()), int(starttls.sum())))
    rows += _version_distribution("highest version", unit, frame[max_rank], n)
    if min_rank is not None:
        rows += _version_distribution("lowest version", unit, frame[min_rank], n)
    return rows


def _true(series: pd.Series) -> pd.Series:
    return series.astype("boolean").fillna(False).astype(bool)


def _version_distribution(prefix: str, unit: str, ranks: pd.Series,
                          n: int) -> list[dict[str, object]]:
    ranks = ranks.astype("int64")
    rows = [_row(f"{prefix}: {v.label}", unit, int((ranks == v.rank).sum()), n)
            for v in reversed(TLS_VERSIONS)]
    rows.append(_row(f"{prefix}: none", unit, int((ranks < 0).sum()), n))
    return rows


def format_cell(count: int, total: int, share: float) -> str:
    """``"count/total (share%)"``, the display form of one headline cell."""
    pct = "–" if math.isnan(share) else f"{share:.0%}"
    return f"{count}/{total} ({pct})"


def headline_wide(table: pd.DataFrame) -> pd.DataFrame:
    """Pivot a :func:`headline` table for reading: one row per metric, one column per unit.

    Cells are ``"count/total (share%)"``; empty where a metric does not apply to a unit. Metric
    order is kept.
    """
    cells = table.assign(cell=[format_cell(c, t, s) for c, t, s in
                               zip(table["count"], table["total"], table["share"], strict=True)])
    wide = cells.pivot(index="metric", columns="unit", values="cell")
    metrics = list(dict.fromkeys(table["metric"]))
    units = [u for u in UNITS if u in wide.columns]
    wide = wide.reindex(index=metrics, columns=units).fillna("")
    wide.columns.name = None
    return wide.reset_index()


def domains_without_starttls(results: SurveyResults, view: str = View.ANY) -> list[str]:
    """Domains with at least one reachable MX host that fail STARTTLS in ``view``.

    ``view="any"`` (default): no MX host offers a working STARTTLS, "the domain offers none".
    ``view="all"``: at least one MX host lacks it. Domains that cannot be reached at all are not
    listed here (their ``category`` in :func:`~research.analysis.core.domain_verdicts` says why).
    Ordered by rank. Raises :class:`~research.analysis.core.AnalysisError` for an unknown view.
    """
    check_view(view)
    d = domain_frame(results)
    mask = _true(d["reached_any"]) & ~_true(d[f"starttls_{view}"])
    return [str(x) for x in d.loc[mask, "domain"]]


def domains_lacking_version(results: SurveyResults, version: str = "TLS 1.2", *,
                            view: str = View.ANY, starttls_only: bool = False) -> list[str]:
    """Domains with a reachable MX host that cannot do ``version`` *or newer* in ``view``.

    "Cannot do TLS 1.2" means no accepted version ≥ TLS 1.2, the question a sender requiring
    TLS 1.2 asks. With ``view="any"`` no MX host can; with ``"all"`` at least one cannot. Domains
    without STARTTLS are included unless ``starttls_only``. Ordered by rank. Raises
    :class:`~research.analysis.core.AnalysisError` for an unknown version or view.
    """
    rank = check_version(version)
    check_view(view)
    d = domain_frame(results)
    mask = _true(d["reached_any"]) & (d[f"max_rank_{view}"].astype("Int64").fillna(-1) < rank)
    if starttls_only:
        mask &= _true(d["starttls_any"])
    return [str(x) for x in d.loc[mask, "domain"]]


def diary_summary(results: SurveyResults) -> pd.DataFrame:
    """The survey told the way the 2019 SANS ISC diary told it, per domain.

    Rows: domains scanned; with STARTTLS (on any MX host); without STARTTLS (an MX host answered,
    none offers it); cannot receive mail or unresolved/unreachable; STARTTLS domains with no
    TLS ≥ 1.2 on any MX host (total: STARTTLS domains); STARTTLS domains with TLS ≥ 1.2 on all
    MX hosts. Columns: ``metric, unit, count, total, share, domains`` (the domains, comma-joined,
    for the short lists; the TLS-lacking ones with their highest version).
    """
    d = domain_frame(results)
    n = len(d)
    starttls = _true(d["starttls_any"])
    reached = _true(d["reached_any"])
    lacking = starttls & (d["max_rank_any"].astype("Int64").fillna(-1) < TLS12_RANK)
    dead = ~reached
    lacking_list = [f"{dom} (max {version_label(int(r)) or 'none'})"
                    for dom, r in zip(d.loc[lacking, "domain"], d.loc[lacking, "max_rank_any"],
                                      strict=True)]
    rows = [
        {**_row("domains scanned", Unit.DOMAIN, n, n), "domains": ""},
        {**_row("domains with STARTTLS (any MX host)", Unit.DOMAIN, int(starttls.sum()), n),
         "domains": ""},
        {**_row("domains without STARTTLS", Unit.DOMAIN, int((reached & ~starttls).sum()), n),
         "domains": _join(d.loc[reached & ~starttls, "domain"])},
        {**_row("domains with no reachable MX host or no mail (DNS)", Unit.DOMAIN,
                int(dead.sum()), n),
         "domains": ", ".join(f"{dom} ({cat})" for dom, cat in
                              zip(d.loc[dead, "domain"], d.loc[dead, "category"], strict=True))},
        {**_row("STARTTLS domains without TLS ≥ 1.2", Unit.DOMAIN, int(lacking.sum()),
                int(starttls.sum())), "domains": ", ".join(lacking_list)},
        {**_row("STARTTLS domains with TLS ≥ 1.2 on all MX hosts", Unit.DOMAIN,
                int((d["category"] == DomainCategory.TLS12_ALL).sum()), int(starttls.sum())),
         "domains": ""},
    ]
    return pd.DataFrame(rows, columns=[*HEADLINE_COLUMNS, "domains"])


def _join(values: pd.Series) -> str:
    return ", ".join(str(v) for v in values)
