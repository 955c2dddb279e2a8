"""Reading a matplotlib Figure back: its caption, axes and bars, as the chart tests need."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text

from research.plots import CAPTION_GID, NO_DATA


def caption(fig: Figure) -> str:
    texts = fig.findobj(lambda a: isinstance(a, Text) and a.get_gid() == CAPTION_GID)
    assert len(texts) == 1
    text = texts[0]
    assert isinstance(text, Text)
    return text.get_text()


def main_axes(fig: Figure) -> list[Axes]:
    """Axes other than colour bars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def bar_heights(ax: Axes) -> list[list[float]]:
    return [[float(p.get_height()) for p in c] for c in ax.containers]


def bar_widths(ax: Axes) -> list[list[float]]:
    return [[float(p.get_width()) for p in c] for c in ax.containers]


def has_no_data_text(fig: Figure) -> bool:
    return any(t.get_text() == NO_DATA for ax in fig.axes for t in ax.texts)
