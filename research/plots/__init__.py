"""Charts of a survey. Each ``plot_*`` function returns a :class:`matplotlib.figure.Figure`.

Every chart has labelled axes, counts and shares on its bars and a caption naming the unit of
analysis and the scan date; :mod:`~research.plots.style` holds what they share (the style,
caption, "no data" text, saving). :mod:`~research.plots.survey` draws a survey's charts,
:mod:`~research.plots.enforcement` those of MTA-STS, DANE and WebPKI,
:mod:`~research.plots.comparison` two surveys side by side. :func:`save_figure` writes PNG and
SVG.
"""

from __future__ import annotations

from research.plots.comparison import plot_comparison
from research.plots.enforcement import plot_enforcement_readiness, plot_failure_types
from research.plots.style import (
    CAPTION_GID,
    NO_DATA,
    PALETTE,
    STYLE,
    figure_png,
    save_figure,
    styled,
)
from research.plots.survey import (
    all_figures,
    plot_cipher_distribution,
    plot_policy_impact,
    plot_provider_heatmap,
    plot_starttls,
    plot_version_support,
)

__all__ = [
    "CAPTION_GID",
    "NO_DATA",
    "PALETTE",
    "STYLE",
    "all_figures",
    "figure_png",
    "plot_cipher_distribution",
    "plot_comparison",
    "plot_enforcement_readiness",
    "plot_failure_types",
    "plot_policy_impact",
    "plot_provider_heatmap",
    "plot_starttls",
    "plot_version_support",
    "save_figure",
    "styled",
]
