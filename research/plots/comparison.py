"""The chart of two surveys side by side (:func:`research.analysis.compare`)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from research.analysis import Comparison
from research.plots.style import (
    PALETTE,
    caption,
    cells,
    label_bars,
    new_figure,
    no_data,
    percent_axis,
    styled,
)
from research.store.schema import VERSION_LABELS, Unit

_COMPARED = ["STARTTLS (TLS handshake succeeds)", *(f"accepts {v}" for v in VERSION_LABELS[2:])]


@styled
def plot_comparison(comparison: Comparison) -> Figure:
    """Horizontal grouped bars, before vs after: STARTTLS and TLS 1.0–1.3 shares, per domain
    (any MX host) and per unique MX host. Bars carry "count/total (share)"."""
    summary = comparison.summary
    values = {key: cells(summary, key) for key in
              ("count_before", "total_before", "count_after", "total_after")}
    fig = new_figure(11, 4.8)
    axes = fig.subplots(1, 2, sharey=True)
    when = (comparison.before_date or "before", comparison.after_date or "after")
    for ax, unit in zip(axes, [Unit.DOMAIN_ANY, Unit.MX_HOST], strict=True):
        y = np.arange(len(_COMPARED))
        for i, (side, label) in enumerate(zip(("before", "after"), when, strict=True)):
            counts = [values[f"count_{side}"].get((m, unit), 0.0) for m in _COMPARED]
            totals = [values[f"total_{side}"].get((m, unit), 0.0) for m in _COMPARED]
            shares = [c / t if t else 0.0 for c, t in zip(counts, totals, strict=True)]
            bars = ax.barh(y + (i - 0.5) * 0.4, shares, 0.4, label=f"{side}: {label}",
                           color=PALETTE[i])
            label_bars(ax, bars, [f"{int(c)}/{int(t)} ({s:.0%})" if t else "–"
                                  for c, t, s in zip(counts, totals, shares, strict=True)])
        if not any(values[f"total_{side}"].get((m, unit), 0.0)
                   for side in ("before", "after") for m in _COMPARED):
            no_data(ax)
        ax.set_yticks(y, _COMPARED)
        ax.set_xlim(0, 1.35)
        percent_axis(ax, "x")
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(f"Share of {'domains' if unit != Unit.MX_HOST else 'MX hosts'}")
        ax.set_title(unit)
    axes[0].invert_yaxis()  # shared y: inverting once flips both panels
    axes[0].set_ylabel("Metric")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper right")
    fig.suptitle(f"Before ({when[0]}) and after ({when[1]})", fontsize=12, fontweight="bold")
    caption(fig, "left, domains with MX hosts (any MX host); right, unique MX hosts",
            f"{when[0]} → {when[1]}", what="Scans")
    return fig
