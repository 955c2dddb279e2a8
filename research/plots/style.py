"""What every chart shares: the style and palette, the figure, the caption naming the unit of
analysis and when the data was taken, the "no data" text, bars with "count (share)" labels,
percent axes, and writing the figure out.

Figures are built with the object API (no pyplot, no global figure state, nothing shown), so they
work headless, in tests and in notebooks alike (Jupyter displays a returned Figure).
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

from research.analysis import scan_date

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
"""The text an empty panel shows."""
COLOUR_OK, COLOUR_PARTLY, COLOUR_FAILS, COLOUR_UNKNOWN = "#009E73", "#E69F00", "#D55E00", "#999999"
"""Colours of a verdict (from :data:`PALETTE`): passes, partly, fails, not known or none."""
COLOUR_OTHER = "#BBBBBB"
"""Colour of a bar no verdict colour fits."""

P = ParamSpec("P")
R = TypeVar("R")


def styled(func: Callable[P, R]) -> Callable[P, R]:
    """Run ``func`` with :data:`STYLE` in force (artists take their style when created)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with mpl.rc_context(STYLE):
            return func(*args, **kwargs)

    return wrapper


def new_figure(width: float, height: float) -> Figure:
    """A Figure of that size in inches, laid out so labels and caption fit."""
    return Figure(figsize=(width, height), layout="constrained")


def caption(fig: Figure, unit: str, when: str, *, what: str = "Scan") -> None:
    """The footnote of every chart: what one count is (the unit of analysis) and when the data
    was taken: ``Unit: <unit>. <what>: <when>.``"""
    text = f"Unit: {unit}. {what}: {when}."
    fig.supxlabel(text, fontsize=8, color="0.35", ha="left", x=0.01).set_gid(CAPTION_GID)


def scan_caption(fig: Figure, unit: str, meta: dict[str, Any]) -> None:
    """:func:`caption` with the date the survey of ``meta`` ran."""
    caption(fig, unit, scan_date(meta) or "date unknown")


def no_data(ax: Axes) -> None:
    """Say :data:`NO_DATA` across an empty panel."""
    ax.text(0.5, 0.5, NO_DATA, transform=ax.transAxes, ha="center", va="center",
            fontsize=14, color="0.5")


def share_label(count: float, total: float) -> str:
    """``"4 (50%)"``; the count alone when ``total`` is 0."""
    return f"{int(count)} ({count / total:.0%})" if total else f"{int(count)}"


def of(count: float, total: float) -> str:
    """``"4 of 8 (50%)"``."""
    return f"{int(count)} of {int(total)}" + (f" ({count / total:.0%})" if total else "")


def label_bars(ax: Axes, bars: BarContainer, labels: Sequence[str], **kw: Any) -> None:
    """Write ``labels`` on (or beside) ``bars``."""
    ax.bar_label(bars, labels=list(labels), fontsize=7, padding=2, **kw)


def hbars(ax: Axes, names: Sequence[str], counts: Sequence[int], total: int,
          colours: Sequence[str]) -> None:
    """Horizontal bars, first name on top, each labelled "count (share of ``total``)"."""
    y = np.arange(len(names))
    bars = ax.barh(y, counts, color=list(colours))
    ax.set_yticks(y, list(names))
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    label_bars(ax, bars, [share_label(c, total) for c in counts])
    ax.set_xlim(0, max([*counts, 1]) * 1.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def percent_axis(ax: Axes, axis: str = "y") -> None:
    """Ticks 0–100 % on a share axis (its limit may be higher, to leave room for labels)."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_ticks(np.linspace(0, 1, 6))
    target.set_major_formatter(PercentFormatter(1.0))


def cells(table: pd.DataFrame, column: str) -> dict[tuple[str, str], float]:
    """``{(metric, unit): value}`` of a headline-shaped table; NaN read as 0."""
    values = pd.to_numeric(table[column], errors="coerce").fillna(0).astype(float)
    return {(str(m), str(u)): float(v)
            for m, u, v in zip(table["metric"], table["unit"], values, strict=True)}


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
