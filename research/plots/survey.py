"""Charts of a survey: STARTTLS and protocol versions, providers, cipher suites, and what a TLS
policy costs. Each function returns a :class:`matplotlib.figure.Figure`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from research.analysis import (
    BASELINE_LABEL,
    CATEGORIES,
    POLICY_VERSIONS,
    SUITE_CLASSES,
    compare,
    default_policies,
    headline,
    policy_sweep,
    provider_table,
    suite_class_counts,
)
from research.analysis.core import host_frame
from research.plots.comparison import plot_comparison
from research.plots.style import (
    COLOUR_FAILS,
    COLOUR_OK,
    COLOUR_OTHER,
    COLOUR_PARTLY,
    COLOUR_UNKNOWN,
    cells,
    hbars,
    label_bars,
    new_figure,
    no_data,
    of,
    percent_axis,
    scan_caption,
    share_label,
    styled,
)
from research.store.results import SurveyResults
from research.store.schema import (
    TLS_VERSIONS,
    VERSION_LABELS,
    DomainCategory,
    HostStatus,
    LiftedStatus,
    SuiteClass,
    Unit,
)

_CATEGORY_COLOURS = {DomainCategory.TLS12_ALL: COLOUR_OK, DomainCategory.TLS12_SOME: "#56B4E9",
                     DomainCategory.NO_TLS12: COLOUR_PARTLY,
                     DomainCategory.NO_STARTTLS: COLOUR_FAILS,
                     DomainCategory.UNREACHABLE: COLOUR_UNKNOWN}
_STATUS_COLOURS = {HostStatus.STARTTLS: COLOUR_OK, HostStatus.NO_STARTTLS: COLOUR_FAILS}
"""Host statuses always shown, even when no host has them, and their colours."""
_STATUS_ORDER = [*HostStatus, *LiftedStatus]
_CLASS_COLOURS = {SuiteClass.FS_AEAD: COLOUR_OK, SuiteClass.FS_NO_AEAD: "#56B4E9",
                  SuiteClass.AEAD_NO_FS: "#F0E442", SuiteClass.NO_FS_NO_AEAD: COLOUR_PARTLY,
                  SuiteClass.WEAK: COLOUR_FAILS}
_STARTTLS = "STARTTLS (TLS handshake succeeds)"


@styled
def plot_version_support(results: SurveyResults) -> Figure:
    """Grouped bars: share accepting each protocol version, per unique MX host and per domain
    (all / any of its MX hosts). Bars carry "count (share)"; the legend gives each unit's total.
    """
    table = headline(results)
    units = [Unit.MX_HOST, Unit.DOMAIN_ALL, Unit.DOMAIN_ANY]
    fig = new_figure(10, 5.2)
    ax = fig.add_subplot()
    x = np.arange(len(VERSION_LABELS))
    width = 0.8 / len(units)
    totals = []
    for i, unit in enumerate(units):
        rows = table[(table["unit"] == unit) & table["metric"].isin(
            [f"accepts {v}" for v in VERSION_LABELS])].set_index("metric")
        rows = rows.reindex([f"accepts {v}" for v in VERSION_LABELS])
        counts = rows["count"].fillna(0).to_numpy()
        total = int(rows["total"].fillna(0).max()) if len(rows) else 0
        totals.append(total)
        shares = counts / total if total else np.zeros(len(counts))
        bars = ax.bar(x + (i - (len(units) - 1) / 2) * width, shares, width,
                      label=f"{unit} (n={total})")
        label_bars(ax, bars, [share_label(c, total) for c in counts], rotation=90)
    ax.set_xticks(x, VERSION_LABELS)
    ax.set_xlabel("Protocol version")
    ax.set_ylabel("Share accepting the version")
    ax.set_ylim(0, 1.25)
    percent_axis(ax)
    ax.set_title("Protocol versions accepted")
    ax.legend(loc="upper left")
    if not any(totals):
        no_data(ax)
    scan_caption(fig, "unique MX hosts (a host accepts a version only if all its IPs do); "
                 "domains with MX hosts, counted when all / any of their MX hosts accept it",
                 results.meta)
    return fig


@styled
def plot_starttls(results: SurveyResults) -> Figure:
    """Two bar charts: every input domain by category (STARTTLS and TLS 1.2, or why no mail can be
    delivered), and every unique MX host by status. Title: the STARTTLS shares."""
    table = cells(headline(results), "count")

    def count(metric: str, unit: str) -> int:
        return int(table.get((metric, unit), 0))

    fig = new_figure(11, 5)
    left, right = fig.subplots(1, 2, width_ratios=[1.15, 1])
    n_domains = count("domains in input", Unit.DOMAIN)
    cats = [(c, count(f"category: {c}", Unit.DOMAIN)) for c in CATEGORIES]
    # The five categories of domains with MX hosts always; the DNS outcomes when they occur.
    cats = [(c, n) for i, (c, n) in enumerate(cats) if n or i < 5]
    hbars(left, [c for c, _ in cats], [n for _, n in cats], n_domains,
          [_CATEGORY_COLOURS.get(c, COLOUR_OTHER) for c, _ in cats])
    left.set_xlabel("Domains")
    left.set_ylabel("Category")
    left.set_title("Domains by category")
    statuses = host_frame(results)["status"].value_counts()
    shown = [s for s in _STATUS_ORDER if statuses.get(s, 0) or s in _STATUS_COLOURS]
    n_hosts = int(statuses.sum())
    hbars(right, shown, [int(statuses.get(s, 0)) for s in shown], n_hosts,
          [_STATUS_COLOURS.get(s, COLOUR_UNKNOWN) for s in shown])
    right.set_xlabel("MX hosts")
    right.set_ylabel("Status")
    right.set_title("MX hosts by status")
    with_tls = count(_STARTTLS, Unit.DOMAIN_ANY)
    hosts_tls = count(_STARTTLS, Unit.MX_HOST)
    fig.suptitle(f"STARTTLS: {of(with_tls, n_domains)} domains (on at least one MX host); "
                 f"{of(hosts_tls, n_hosts)} MX hosts", fontsize=12, fontweight="bold")
    if not n_domains:
        no_data(left)
    if not n_hosts:
        no_data(right)
    scan_caption(fig, "left: input domains (share of all); right: unique MX hosts (status "
                 f"common to all their IPs, else '{LiftedStatus.MIXED}')", results.meta)
    return fig


@styled
def plot_provider_heatmap(results: SurveyResults, top: int = 20) -> Figure:
    """Heatmap: providers (registrable part of the MX host names) × STARTTLS and each version,
    coloured by the share of the provider's MX hosts; the ``top`` providers by domains served."""
    table = provider_table(results, top=top)
    columns = ["starttls", *(v.column for v in TLS_VERSIONS)]
    names = ["STARTTLS", *VERSION_LABELS]
    fig = new_figure(9, 1.6 + 0.38 * max(len(table), 3))
    ax = fig.add_subplot()
    values = table[columns].to_numpy(dtype=float) if len(table) else np.zeros((0, len(columns)))
    image = ax.imshow(values if len(table) else np.full((1, len(columns)), np.nan),
                      vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.grid(False)
    ax.set_xticks(np.arange(len(columns)), names)
    ax.set_yticks(np.arange(len(table)),
                  [f"{p} ({d} dom., {h} hosts)" for p, d, h in
                   zip(table.index, table["domains"], table["hosts"], strict=True)])
    for (i, j), share in np.ndenumerate(values):
        hosts = int(table["hosts"].iloc[i])
        ax.text(j, i, f"{round(share * hosts)}/{hosts}", ha="center", va="center", fontsize=7,
                color="white" if share < 0.6 else "black")
    ax.set_xlabel("Protocol version")
    ax.set_ylabel("Provider (registrable MX domain)")
    ax.set_title(f"What each provider's MX hosts accept (top {top} by domains served)")
    fig.colorbar(image, ax=ax, label="Share of the provider's MX hosts",
                 format=PercentFormatter(1.0))
    if not len(table):
        no_data(ax)
    scan_caption(fig, "unique MX hosts, grouped by provider (last two labels of the name, three "
                 "under e.g. co.uk); cells: hosts accepting / hosts", results.meta)
    return fig


@styled
def plot_cipher_distribution(results: SurveyResults) -> Figure:
    """Stacked bars per protocol version: accepted MX host × suite pairs by class (forward
    secrecy, AEAD, weak), with counts on the segments and the total on top."""
    counts = suite_class_counts(results)
    fig = new_figure(10, 5)
    ax = fig.add_subplot()
    x = np.arange(len(counts))
    bottom = np.zeros(len(counts))
    for cls in SUITE_CLASSES:
        values = counts[cls].to_numpy(dtype=float)
        bars = ax.bar(x, values, 0.6, bottom=bottom, label=cls, color=_CLASS_COLOURS[cls])
        label_bars(ax, bars, [str(int(v)) if v else "" for v in values], label_type="center")
        bottom += values
    total = bottom.sum()
    for xi, height in zip(x, bottom, strict=True):
        if height:
            ax.text(float(xi), height, f"{int(height)} ({height / total:.0%})", ha="center",
                    va="bottom", fontsize=8)
    ax.set_xticks(x, list(counts.index))
    ax.set_xlabel("Protocol version")
    ax.set_ylabel("Accepted suites (MX host × suite)")
    ax.set_ylim(0, max(bottom.max(), 1) * 1.15)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Cipher suites accepted, by protocol version")
    ax.legend(title="Suite class", loc="upper left")
    if not total:
        no_data(ax)
    scan_caption(fig, "accepted (unique MX host, suite) pairs, a suite counted for a host only "
                 "if all its IPs accept it; weak = RC4, 3DES, DES, RC2, EXPORT, NULL or anon",
                 results.meta)
    return fig


@styled
def plot_policy_impact(results: SurveyResults, sweep: pd.DataFrame | None = None) -> Figure:
    """Lines: share of domains a sender can still deliver to, by the minimum TLS version it
    requires, with and without requiring STARTTLS (and, opportunistically, the share that
    travels encrypted to that standard; rank-weighted when ranks exist).

    ``sweep`` defaults to :func:`~research.analysis.policy_sweep` over
    :func:`~research.analysis.default_policies`; rows with certificate or forward-secrecy
    requirements are ignored.
    """
    if sweep is None:
        sweep = policy_sweep(results, default_policies())
    sweep = sweep[~sweep["require_cert_match"] & ~sweep["require_forward_secrecy"]]
    xlabels = ["any", *POLICY_VERSIONS]
    fig = new_figure(9, 5)
    ax = fig.add_subplot()
    n = int(sweep["domains"].fillna(0).max()) if len(sweep) else 0
    lines = [(True, "reachable_share", "reachable", "STARTTLS required: reachable", "-", "o"),
             (False, "reachable_share", "reachable", "opportunistic: reachable", "-", "s"),
             (False, "encrypted_share", "encrypted", "opportunistic: encrypted to that standard",
              "--", "^"),
             (True, "weighted_reachable_share", None, "STARTTLS required: reachable, "
              "rank-weighted (1/rank)", ":", "d")]
    for required, column, count_column, label, style, marker in lines:
        rows = _by_min_version(sweep[sweep["require_starttls"] == required], xlabels)
        if rows.empty or rows[column].isna().all():
            continue
        ax.plot(rows["x"], rows[column], linestyle=style, marker=marker, label=label)
        if count_column is not None and required:
            for xi, share, count in zip(rows["x"], rows[column], rows[count_column], strict=True):
                ax.annotate(f"{int(count)}/{n}", (xi, share), textcoords="offset points",
                            xytext=(0, -14), ha="center", fontsize=7)
    ax.set_xticks(np.arange(len(xlabels)), xlabels)
    ax.set_xlabel("Minimum TLS version required")
    ax.set_ylabel("Share of domains reachable")
    ax.set_ylim(0, 1.05)
    percent_axis(ax)
    ax.set_title("What a TLS policy costs: domains still reachable")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left")
    if not n:
        no_data(ax)
    scan_caption(fig, f"input domains (n={n}), all counted, including those without mail "
                 f"servers; baseline: {BASELINE_LABEL}", results.meta)
    return fig


def _by_min_version(rows: pd.DataFrame, xlabels: Sequence[str]) -> pd.DataFrame:
    labels = ["any" if not isinstance(v, str) else v for v in rows["min_version"]]
    out = rows.assign(x=[xlabels.index(v) for v in labels])
    return out.sort_values("x").drop_duplicates("x")


def all_figures(results: SurveyResults,
                previous: SurveyResults | None = None) -> dict[str, Figure]:
    """Every chart of a survey, by file-name stem; with ``previous``, also ``comparison``."""
    figures = {
        "version_support": plot_version_support(results),
        "starttls": plot_starttls(results),
        "provider_heatmap": plot_provider_heatmap(results),
        "cipher_distribution": plot_cipher_distribution(results),
        "policy_impact": plot_policy_impact(results),
    }
    if previous is not None:
        figures["comparison"] = plot_comparison(compare(previous, results))
    return figures
