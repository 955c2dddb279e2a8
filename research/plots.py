"""Charts of a survey. Each function returns a :class:`matplotlib.figure.Figure`.

Figures are built with the object API (no pyplot, no global figure state, nothing shown), so they
work headless, in tests and in notebooks alike (Jupyter displays a returned Figure). Every chart
has labelled axes, counts and shares on its bars and a caption naming the unit of analysis and
the scan date. :func:`save_figure` writes PNG and SVG.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import matplotlib as mpl
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from research.analysis import (
    BASELINE_LABEL,
    CATEGORIES,
    POLICY_VERSIONS,
    SUITE_CLASSES,
    UNIT_BY_VIEW,
    UNIT_HOST,
    Comparison,
    default_policies,
    headline,
    policy_sweep,
    provider_table,
    scan_date,
    suite_class_counts,
)
from research.analysis.core import (
    CAT_NO_STARTTLS,
    CAT_UNREACHABLE,
    MIXED,
    NOT_SCANNED,
    host_frame,
)
from research.store.results import SurveyResults
from research.store.schema import TLS_VERSIONS, HostStatus

PALETTE: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9",
                            "#F0E442", "#000000")
"""Okabe–Ito colours: distinguishable with the common colour-vision deficiencies."""
STYLE: dict[Any, Any] = {
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "axes.prop_cycle": cycler(color=PALETTE),
    # Text stays text in SVG (searchable, small), and element ids are reproducible.
    "svg.fonttype": "none",
    "svg.hashsalt": "starttls-survey",
}
"""The one style of every chart (matplotlib rcParams), applied by :func:`styled`."""

CAPTION_GID = "caption"
"""``gid`` of the caption text, so it can be found in a Figure or in the SVG."""
NO_DATA = "no data"

_CATEGORY_COLOURS = {CATEGORIES[0]: "#009E73", CATEGORIES[1]: "#56B4E9",
                     CATEGORIES[2]: "#E69F00", CAT_NO_STARTTLS: "#D55E00",
                     CAT_UNREACHABLE: "#999999"}
_STATUS_COLOURS = {"starttls": "#009E73", "starttls_rejected": "#E69F00", "tls_failed": "#E69F00",
                   "no_starttls": "#D55E00"}
_STATUS_ORDER = [*(s.value for s in HostStatus), MIXED, NOT_SCANNED]
_CLASS_COLOURS = dict(zip(SUITE_CLASSES, ("#009E73", "#56B4E9", "#F0E442", "#E69F00", "#D55E00"),
                          strict=True))
_VERSION_LABELS = [v.label for v in TLS_VERSIONS]

P = ParamSpec("P")
R = TypeVar("R")


def styled(func: Callable[P, R]) -> Callable[P, R]:
    """Run ``func`` with :data:`STYLE` in force (artists take their style when created)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with mpl.rc_context(STYLE):
            return func(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _caption(fig: Figure, unit: str, meta: dict[str, Any]) -> None:
    """The footnote of every chart: what was counted, and when the scan ran."""
    date = scan_date(meta)
    text = f"Unit: {unit}. Scan: {date or 'date unknown'}."
    fig.supxlabel(text, fontsize=8, color="0.35", ha="left", x=0.01).set_gid(CAPTION_GID)


def _share_label(count: float, total: float) -> str:
    return f"{int(count)} ({count / total:.0%})" if total else f"{int(count)}"


def _of(count: float, total: float) -> str:
    """``"4 of 8 (50%)"``."""
    return f"{int(count)} of {int(total)}" + (f" ({count / total:.0%})" if total else "")


def _label_bars(ax: Axes, bars: BarContainer, labels: Sequence[str], **kw: Any) -> None:
    ax.bar_label(bars, labels=list(labels), fontsize=7, padding=2, **kw)


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, NO_DATA, transform=ax.transAxes, ha="center", va="center",
            fontsize=14, color="0.5")


def _percent_axis(ax: Axes, axis: str = "y") -> None:
    """Ticks 0–100 % on a share axis (its limit may be higher, to leave room for labels)."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_ticks(np.linspace(0, 1, 6))
    target.set_major_formatter(PercentFormatter(1.0))


@styled
def plot_version_support(results: SurveyResults) -> Figure:
    """Grouped bars: share accepting each protocol version, per unique MX host and per domain
    (all / any of its MX hosts). Bars carry "count (share)"; the legend gives each unit's total.
    """
    table = headline(results)
    units = [UNIT_HOST, UNIT_BY_VIEW["all"], UNIT_BY_VIEW["any"]]
    fig = _figure(10, 5.2)
    ax = fig.add_subplot()
    x = np.arange(len(_VERSION_LABELS))
    width = 0.8 / len(units)
    totals = []
    for i, unit in enumerate(units):
        rows = table[(table["unit"] == unit) & table["metric"].isin(
            [f"accepts {v}" for v in _VERSION_LABELS])].set_index("metric")
        rows = rows.reindex([f"accepts {v}" for v in _VERSION_LABELS])
        counts = rows["count"].fillna(0).to_numpy()
        total = int(rows["total"].fillna(0).max()) if len(rows) else 0
        totals.append(total)
        shares = counts / total if total else np.zeros(len(counts))
        bars = ax.bar(x + (i - (len(units) - 1) / 2) * width, shares, width,
                      label=f"{unit} (n={total})")
        _label_bars(ax, bars, [_share_label(c, total) for c in counts], rotation=90)
    ax.set_xticks(x, _VERSION_LABELS)
    ax.set_xlabel("Protocol version")
    ax.set_ylabel("Share accepting the version")
    ax.set_ylim(0, 1.25)
    _percent_axis(ax)
    ax.set_title("Protocol versions accepted")
    ax.legend(loc="upper left")
    if not any(totals):
        _no_data(ax)
    _caption(fig, "unique MX hosts (a host accepts a version only if all its IPs do); "
             "domains with MX hosts, counted when all / any of their MX hosts accept it",
             results.meta)
    return fig


@styled
def plot_starttls(results: SurveyResults) -> Figure:
    """Two bar charts: every input domain by category (STARTTLS and TLS 1.2, or why no mail can be
    delivered), and every unique MX host by status. Title: the STARTTLS shares."""
    table = _cells(headline(results), "count")
    fig = _figure(11, 5)
    left, right = fig.subplots(1, 2, width_ratios=[1.15, 1])
    n_domains = _count(table, "domains in input", "domain")
    cats = [(c, _count(table, f"category: {c}", "domain")) for c in CATEGORIES]
    cats = [(c, n) for i, (c, n) in enumerate(cats) if n or i < 5]
    _hbars(left, [c for c, _ in cats], [n for _, n in cats], n_domains,
           [_CATEGORY_COLOURS.get(c, "#BBBBBB") for c, _ in cats])
    left.set_xlabel("Domains")
    left.set_ylabel("Category")
    left.set_title("Domains by category")
    statuses = host_frame(results)["status"].value_counts()
    shown = [s for s in _STATUS_ORDER if statuses.get(s, 0) or s in ("starttls", "no_starttls")]
    n_hosts = int(statuses.sum())
    _hbars(right, shown, [int(statuses.get(s, 0)) for s in shown], n_hosts,
           ["#009E73" if s == "starttls" else "#D55E00" if s == "no_starttls" else "#999999"
            for s in shown])
    right.set_xlabel("MX hosts")
    right.set_ylabel("Status")
    right.set_title("MX hosts by status")
    any_view = UNIT_BY_VIEW["any"]
    with_tls = _count(table, "STARTTLS (TLS handshake succeeds)", any_view)
    hosts_tls = _count(table, "STARTTLS (TLS handshake succeeds)", UNIT_HOST)
    fig.suptitle(f"STARTTLS: {_of(with_tls, n_domains)} domains (on at least one MX host); "
                 f"{_of(hosts_tls, n_hosts)} MX hosts", fontsize=12, fontweight="bold")
    if not n_domains:
        _no_data(left)
    if not n_hosts:
        _no_data(right)
    _caption(fig, "left: input domains (share of all); right: unique MX hosts (status common to "
             "all their IPs, else 'mixed')", results.meta)
    return fig


def _cells(table: pd.DataFrame, column: str) -> dict[tuple[str, str], float]:
    """``{(metric, unit): value}`` of a headline-shaped table; NaN read as 0."""
    values = pd.to_numeric(table[column], errors="coerce").fillna(0).astype(float)
    return {(str(m), str(u)): float(v)
            for m, u, v in zip(table["metric"], table["unit"], values, strict=True)}


def _count(cells: dict[tuple[str, str], float], metric: str, unit: str) -> int:
    return int(cells.get((metric, unit), 0))


def _hbars(ax: Axes, names: Sequence[str], counts: Sequence[int], total: int,
           colours: Sequence[str]) -> None:
    y = np.arange(len(names))
    bars = ax.barh(y, counts, color=list(colours))
    ax.set_yticks(y, list(names))
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    _label_bars(ax, bars, [_share_label(c, total) for c in counts])
    ax.set_xlim(0, max([*counts, 1]) * 1.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


@styled
def plot_provider_heatmap(results: SurveyResults, top: int = 20) -> Figure:
    """Heatmap: providers (registrable part of the MX host names) × STARTTLS and each version,
    coloured by the share of the provider's MX hosts; the ``top`` providers by domains served."""
    table = provider_table(results, top=top)
    columns = ["starttls", *(v.column for v in TLS_VERSIONS)]
    names = ["STARTTLS", *_VERSION_LABELS]
    fig = _figure(9, 1.6 + 0.38 * max(len(table), 3))
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
        _no_data(ax)
    _caption(fig, "unique MX hosts, grouped by provider (last two labels of the name, three "
             "under e.g. co.uk); cells: hosts accepting / hosts", results.meta)
    return fig


@styled
def plot_cipher_distribution(results: SurveyResults) -> Figure:
    """Stacked bars per protocol version: accepted MX host × suite pairs by class (forward
    secrecy, AEAD, weak), with counts on the segments and the total on top."""
    counts = suite_class_counts(results)
    fig = _figure(10, 5)
    ax = fig.add_subplot()
    x = np.arange(len(counts))
    bottom = np.zeros(len(counts))
    for cls in SUITE_CLASSES:
        values = counts[cls].to_numpy(dtype=float)
        bars = ax.bar(x, values, 0.6, bottom=bottom, label=cls, color=_CLASS_COLOURS[cls])
        _label_bars(ax, bars, [str(int(v)) if v else "" for v in values], label_type="center")
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
        _no_data(ax)
    _caption(fig, "accepted (unique MX host, suite) pairs, a suite counted for a host only if "
             "all its IPs accept it; weak = RC4, 3DES, DES, RC2, EXPORT, NULL or anon",
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
    fig = _figure(9, 5)
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
    _percent_axis(ax)
    ax.set_title("What a TLS policy costs: domains still reachable")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left")
    if not n:
        _no_data(ax)
    _caption(fig, f"input domains (n={n}), all counted, including those without mail servers; "
             f"baseline: {BASELINE_LABEL}", results.meta)
    return fig


def _by_min_version(rows: pd.DataFrame, xlabels: Sequence[str]) -> pd.DataFrame:
    labels = ["any" if not isinstance(v, str) else v for v in rows["min_version"]]
    out = rows.assign(x=[xlabels.index(v) for v in labels])
    return out.sort_values("x").drop_duplicates("x")


_COMPARED = ["STARTTLS (TLS handshake succeeds)", *(f"accepts {v}" for v in _VERSION_LABELS[2:])]


@styled
def plot_comparison(comparison: Comparison) -> Figure:
    """Horizontal grouped bars, before vs after: STARTTLS and TLS 1.0–1.3 shares, per domain
    (any MX host) and per unique MX host. Bars carry "count/total (share)"."""
    summary = comparison.summary
    cells = {key: _cells(summary, key) for key in
             ("count_before", "total_before", "count_after", "total_after")}
    fig = _figure(11, 4.8)
    axes = fig.subplots(1, 2, sharey=True)
    when = (comparison.before_date or "before", comparison.after_date or "after")
    for ax, unit in zip(axes, [UNIT_BY_VIEW["any"], UNIT_HOST], strict=True):
        y = np.arange(len(_COMPARED))
        for i, (side, label) in enumerate(zip(("before", "after"), when, strict=True)):
            counts = [cells[f"count_{side}"].get((m, unit), 0.0) for m in _COMPARED]
            totals = [cells[f"total_{side}"].get((m, unit), 0.0) for m in _COMPARED]
            shares = [c / t if t else 0.0 for c, t in zip(counts, totals, strict=True)]
            bars = ax.barh(y + (i - 0.5) * 0.4, shares, 0.4, label=f"{side}: {label}",
                           color=PALETTE[i])
            _label_bars(ax, bars, [f"{int(c)}/{int(t)} ({s:.0%})" if t else "–"
                                   for c, t, s in zip(counts, totals, shares, strict=True)])
        if not any(cells[f"total_{side}"].get((m, unit), 0.0)
                   for side in ("before", "after") for m in _COMPARED):
            _no_data(ax)
        ax.set_yticks(y, _COMPARED)
        ax.set_xlim(0, 1.35)
        _percent_axis(ax, "x")
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(f"Share of {'domains' if unit != UNIT_HOST else 'MX hosts'}")
        ax.set_title(unit)
    axes[0].invert_yaxis()  # shared y: inverting once flips both panels
    axes[0].set_ylabel("Metric")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper right")
    fig.suptitle(f"Before ({when[0]}) and after ({when[1]})", fontsize=12, fontweight="bold")
    date = f"{when[0]} → {when[1]}"
    fig.supxlabel(f"Unit: left, domains with MX hosts (any MX host); right, unique MX hosts. "
                  f"Scans: {date}.", fontsize=8, color="0.35", ha="left",
                  x=0.01).set_gid(CAPTION_GID)
    return fig


_RESULT_COLOURS = {"ok": "#009E73", "starttls-not-supported": "#D55E00",
                   "certificate-not-trusted": "#CC79A7", "certificate-expired": "#E69F00",
                   "certificate-host-mismatch": "#F0E442", "validation-failure": "#999999",
                   "tlsa-invalid": "#0072B2", "dnssec-invalid": "#56B4E9"}


@styled
def plot_failure_types(results: SurveyResults) -> Figure:
    """Horizontal bars, one panel per unit: how sessions of an enforcing sender would end, by
    RFC 8460 result type (:func:`research.analysis.enforcement.failure_types`): MX hosts under
    WebPKI (what MTA-STS demands), (domain, MX host) pairs where DANE is in force, and domains
    with an MTA-STS record (fetching their policy). Bars carry "count (share)"."""
    from research.analysis.enforcement import (
        UNIT_DANE_HOST,
        UNIT_HOST,
        UNIT_STS_DOMAIN,
        failure_types,
    )

    table = failure_types(results)
    units = [(UNIT_HOST, "MX hosts: WebPKI (MTA-STS rules)"),
             (UNIT_DANE_HOST, "MX hosts with DANE in force"),
             (UNIT_STS_DOMAIN, "Domains with an MTA-STS record: policy fetch")]
    fig = _figure(13, 4.6)
    axes = fig.subplots(1, len(units))
    for ax, (unit, title) in zip(axes, units, strict=True):
        rows = table[table["unit"] == unit]
        total = int(rows["total"].max()) if len(rows) else 0
        names = [str(r) for r in rows["result"]]
        _hbars(ax, names, [int(c) for c in rows["count"]], total,
               [_RESULT_COLOURS.get(n, "#BBBBBB") for n in names])
        ax.set_title(f"{title} (n={total})", fontsize=10)
        ax.set_xlabel("Count")
        if not total:
            _no_data(ax)
    axes[0].set_ylabel("RFC 8460 result type ('ok': the session succeeds)")
    fig.suptitle("What an enforcing sender would meet, by RFC 8460 result type", fontsize=12,
                 fontweight="bold")
    _caption(fig, "left: unique MX hosts that answered SMTP (a host is ok only if every answering "
             "IP is); middle: (domain, MX host) pairs with a DNSSEC-secure MX RRset and TLSA "
             "records; right: domains with a valid _mta-sts TXT record", results.meta)
    return fig


@styled
def plot_enforcement_readiness(results: SurveyResults) -> Figure:
    """Horizontal bars: domains with MX hosts by enforcement readiness
    (:data:`research.analysis.enforcement.READINESS`), with "count (share)"."""
    from research.analysis.enforcement import READINESS, READY_NO_MAIL, enforcement_readiness

    ready = enforcement_readiness(results)
    mail = ready[ready["readiness"] != READY_NO_MAIL]
    cats = [c for c in READINESS if c != READY_NO_MAIL]
    counts = [int((mail["readiness"] == c).sum()) for c in cats]
    fig = _figure(10, 4.2)
    ax = fig.add_subplot()
    colours = ["#009E73", "#E69F00", "#D55E00", "#56B4E9", "#CC79A7", "#BBBBBB", "#999999"]
    _hbars(ax, cats, counts, len(mail), colours)
    ax.set_xlabel("Domains")
    ax.set_ylabel("Readiness")
    ax.set_title("Could a sender enforce TLS? MTA-STS, DANE and WebPKI per domain")
    if not len(mail):
        _no_data(ax)
    _caption(fig, f"domains with MX hosts (n={len(mail)}); 'enforced' = MTA-STS in enforce "
             "mode or DANE in force (the worse of the two counts)", results.meta)
    return fig


def all_figures(results: SurveyResults,
                previous: SurveyResults | None = None) -> dict[str, Figure]:
    """Every chart of a survey, by file-name stem; with ``previous``, also ``comparison``."""
    from research.analysis import compare  # local: keeps the import list above short

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


def save_figure(fig: Figure, path_stem: str | Path, *, dpi: int = 300) -> list[Path]:
    """Write ``<path_stem>.png`` (at ``dpi``) and ``<path_stem>.svg``; return both paths.

    Parent directories are created. The SVG carries no date, so re-rendering the same data gives
    the same file.
    """
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.svg"
    with mpl.rc_context(STYLE):
        fig.savefig(png, dpi=dpi, bbox_inches="tight")
        fig.savefig(svg, bbox_inches="tight", metadata={"Date": None})
    return [png, svg]


def figure_png(fig: Figure, *, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (for embedding in HTML)."""
    buffer = io.BytesIO()
    with mpl.rc_context(STYLE):
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()
