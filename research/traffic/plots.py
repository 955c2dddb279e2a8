"""Charts of a mail server's own traffic (the ``sessions`` table). Each returns a Figure.

Same conventions and helpers as :mod:`research.plots` (:mod:`research.plots.style`): object API
only, one style, counts on the bars, and a caption naming the unit and the period the sessions
cover.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from research.plots.style import (
    COLOUR_FAILS,
    COLOUR_OK,
    PALETTE,
    caption,
    new_figure,
    no_data,
    percent_axis,
    styled,
)
from research.store.schema import Direction, Unit
from research.traffic.analysis import CLEAR_TEXT, traffic_policy_sweep, version_distribution

_VERSION_COLOURS = {CLEAR_TEXT: COLOUR_FAILS, "SSL 3.0": "#CC79A7", "TLS 1.0": "#E69F00",
                    "TLS 1.1": "#F0E442", "TLS 1.2": "#56B4E9", "TLS 1.3": COLOUR_OK}


def _period(sessions: pd.DataFrame) -> str:
    """The days the sessions cover: ``2024-03-01 – 2024-03-07``."""
    if not len(sessions):
        return "period unknown"
    times = pd.to_datetime(sessions["time"], utc=True).dropna()
    if times.empty:
        return "period unknown"
    first, last = times.min().date().isoformat(), times.max().date().isoformat()
    return first if first == last else f"{first} – {last}"


@styled
def plot_traffic_versions(sessions: pd.DataFrame) -> Figure:
    """Stacked horizontal bars, one per direction: the share of sessions per negotiated
    version (clear text included), each segment labelled with its count."""
    dist = version_distribution(sessions, by=("direction",))
    fig = new_figure(9, 3.6)
    ax = fig.add_subplot()
    directions = [d for d in Direction if d in set(dist["direction"].dropna())]
    order = [CLEAR_TEXT, *(v for v in _VERSION_COLOURS if v != CLEAR_TEXT)]
    for i, direction in enumerate(directions):
        rows = dist[dist["direction"] == direction].set_index("version")
        left = 0.0
        for version in order:
            if version not in rows.index:
                continue
            share = float(rows["share"].loc[version])
            count = int(rows["sessions"].loc[version])
            ax.barh(i, share, left=left, color=_VERSION_COLOURS.get(version, PALETTE[0]),
                    label=version if i == 0 or version not in
                    set(dist[dist["direction"] == directions[0]]["version"]) else None,
                    edgecolor="white")
            if share > 0.04:
                ax.text(left + share / 2, i, str(count), ha="center", va="center", fontsize=8)
            left += share
    ax.set_yticks(np.arange(len(directions)),
                  [f"{d}\n(n={int(dist[dist['direction'] == d]['sessions'].sum())})"
                   for d in directions])
    ax.set_xlim(0, 1)
    percent_axis(ax, "x")
    ax.set_xlabel("Share of sessions")
    ax.set_title("TLS versions your mail server's peers negotiated")
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=6)
    if not directions:
        no_data(ax)
    caption(fig, f"{Unit.SESSION} (one SMTP connection; Exim: one message)", _period(sessions),
            what="Sessions")
    return fig


@styled
def plot_traffic_policy(sessions: pd.DataFrame, direction: str = Direction.OUTBOUND,
                        sweep: pd.DataFrame | None = None) -> Figure:
    """Bars by minimum version required (with STARTTLS required): the share of peers that
    stay reachable and the share of sessions that would have failed."""
    if sweep is None:
        sweep = traffic_policy_sweep(sessions, direction)
    fig = new_figure(9, 4.5)
    ax = fig.add_subplot()
    labels = ["any" if not isinstance(v, str) else v.removeprefix("TLS ")
              for v in sweep["min_version"]]
    x = np.arange(len(sweep))
    peers = int(sweep["domains"].max()) if len(sweep) else 0
    total = int(sweep["sessions"].max()) if len(sweep) else 0
    reach = ax.bar(x - 0.2, sweep["reachable_share"], 0.4, color=COLOUR_OK,
                   label=f"peers still reachable (of {peers})")
    failing = sweep["sessions_failing"] / total if total else sweep["sessions_failing"] * 0.0
    fail = ax.bar(x + 0.2, failing, 0.4, color=COLOUR_FAILS,
                  label=f"sessions that would have failed (of {total})")
    ax.bar_label(reach, labels=[str(int(v)) for v in sweep["reachable"]], fontsize=7, padding=2)
    ax.bar_label(fail, labels=[str(int(v)) for v in sweep["sessions_failing"]], fontsize=7,
                 padding=2)
    ax.set_xticks(x, [f"≥ {label}" if label != "any" else "any TLS" for label in labels])
    ax.set_xlabel("STARTTLS required, minimum TLS version")
    ax.set_ylim(0, 1.1)
    percent_axis(ax)
    ax.set_title(f"What requiring TLS would break for you ({direction})")
    ax.legend(loc="upper right")
    if not peers:
        no_data(ax)
    caption(fig, f"{Unit.PEER} (bars left) and {Unit.SESSION} (bars right), {direction}",
            _period(sessions), what="Sessions")
    return fig
