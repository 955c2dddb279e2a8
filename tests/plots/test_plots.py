"""research.plots: each chart is a Figure with the expected axes, bars and caption."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from support.figures import bar_heights, bar_widths, caption, has_no_data_text, main_axes
from support.survey_builder import build, domain, empty, host, mx, sample

from research.analysis import compare
from research.plots import (
    all_figures,
    figure_png,
    plot_cipher_distribution,
    plot_comparison,
    plot_policy_impact,
    plot_provider_heatmap,
    plot_starttls,
    plot_version_support,
    save_figure,
)
from research.store.results import SurveyResults


def test_version_support_bars_per_unit() -> None:
    fig = plot_version_support(sample())
    (ax,) = main_axes(fig)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Protocol version",
                                                  "Share accepting the version")
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"]
    heights = bar_heights(ax)
    assert len(heights) == 3 and all(len(h) == 6 for h in heights)  # host, all, any × 6
    # TLS 1.2: 2 of 6 MX hosts, 2 of 6 domains (all MX), 3 of 6 domains (any MX)
    assert [h[4] for h in heights] == pytest.approx([2 / 6, 2 / 6, 3 / 6])
    labels = [t.get_text() for t in ax.texts]
    assert "3 (50%)" in labels and "2 (33%)" in labels
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "MX host (n=6)", "domain (all MX hosts) (n=6)", "domain (any MX host) (n=6)"]
    assert "Unit: unique MX hosts" in caption(fig) and "Scan: 2024-03-05" in caption(fig)
    assert not has_no_data_text(fig)


def test_starttls_chart_shows_every_domain_category() -> None:
    fig = plot_starttls(sample())
    left, right = main_axes(fig)
    assert (left.get_xlabel(), left.get_ylabel()) == ("Domains", "Category")
    assert (right.get_xlabel(), right.get_ylabel()) == ("MX hosts", "Status")
    categories = [t.get_text() for t in left.get_yticklabels()]
    assert categories[-2:] == ["null MX", "NXDOMAIN"] and len(categories) == 7
    assert bar_widths(left) == [[2, 1, 1, 1, 1, 1, 1]]
    assert [t.get_text() for t in right.get_yticklabels()] == ["starttls", "no_starttls",
                                                               "timeout"]
    assert bar_widths(right) == [[3, 2, 1]]
    assert "2 (25%)" in [t.get_text() for t in left.texts]
    assert fig.get_suptitle().startswith("STARTTLS: 4 of 8 (50%) domains")


def test_provider_heatmap_cells() -> None:
    fig = plot_provider_heatmap(sample())
    (ax,) = main_axes(fig)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Protocol version",
                                                  "Provider (registrable MX domain)")
    image = np.asarray(ax.get_images()[0].get_array())
    assert image.shape == (5, 7)  # providers × (STARTTLS + 6 versions)
    assert ax.get_yticklabels()[0].get_text() == "big.example (2 dom., 1 hosts)"
    assert image[0].tolist() == [1, 0, 0, 0, 0, 1, 1]
    assert image[1, 0] == pytest.approx(0.5)  # gamma: 1 of 2 hosts with STARTTLS
    assert "1/2" in [t.get_text() for t in ax.texts]
    assert len(fig.axes) == 2  # with its colour bar


def test_cipher_distribution_stacks_classes_per_version() -> None:
    fig = plot_cipher_distribution(sample())
    (ax,) = main_axes(fig)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Protocol version",
                                                  "Accepted suites (MX host × suite)")
    heights = np.array(bar_heights(ax))
    assert heights.shape == (5, 6)  # classes × versions
    assert heights.sum(axis=0).tolist() == [0, 0, 2, 0, 3, 1]
    assert heights[:, 4].tolist() == [2, 0, 0, 0, 1]  # TLS 1.2: FS+AEAD ×2, 3DES weak
    assert "3 (50%)" in [t.get_text() for t in ax.texts]


def test_policy_impact_lines() -> None:
    fig = plot_policy_impact(sample())
    (ax,) = main_axes(fig)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Minimum TLS version required",
                                                  "Share of domains reachable")
    lines = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
    assert len(lines) == 4
    assert lines["STARTTLS required: reachable"] == pytest.approx([4 / 8, 4 / 8, 3 / 8, 3 / 8,
                                                                   2 / 8])
    assert lines["opportunistic: reachable"] == pytest.approx([5 / 8] * 5)
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "any", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"]
    assert "3/8" in [t.get_text() for t in ax.texts]
    assert "input domains (n=8)" in caption(fig)


def test_policy_impact_without_ranks_has_no_weighted_line() -> None:
    r = build([domain("a.example")], [mx("a.example", 10, "mx.a.example")],
              [host("mx.a.example")])
    (ax,) = main_axes(plot_policy_impact(r))
    assert len(ax.get_lines()) == 3


def test_comparison_chart() -> None:
    before = sample()
    after = build(before.domains.to_dict("records"), before.mx.to_dict("records"),
                  [dict(h) | ({"tls_1_3": True, "max_version": "TLS 1.3"}
                              if h["mx_host"] == "g1.gamma.example" else {})
                   for h in before.hosts.to_dict("records")],
                  meta={"started_at": "2025-01-02T00:00:00Z"})
    fig = plot_comparison(compare(before, after))
    left, right = main_axes(fig)
    assert left.get_title() == "domain (any MX host)" and right.get_title() == "MX host"
    assert left.get_ylabel() == "Metric" and right.get_xlabel() == "Share of MX hosts"
    before_bars, after_bars = bar_widths(right)
    assert len(before_bars) == len(after_bars) == 5  # STARTTLS + TLS 1.0 … 1.3
    assert (before_bars[-1], after_bars[-1]) == pytest.approx((1 / 6, 2 / 6))  # TLS 1.3
    assert "2024-03-05 → 2025-01-02" in caption(fig)
    assert fig.get_suptitle() == "Before (2024-03-05) and after (2025-01-02)"


@pytest.mark.parametrize("plot", [plot_version_support, plot_starttls, plot_provider_heatmap,
                                  plot_cipher_distribution, plot_policy_impact])
def test_every_chart_says_no_data_on_an_empty_survey(
        plot: Callable[[SurveyResults], Figure]) -> None:
    fig = plot(empty())
    assert isinstance(fig, Figure)
    assert has_no_data_text(fig)
    assert "Scan: date unknown" in caption(fig)


def test_comparison_of_empty_surveys_says_no_data() -> None:
    assert has_no_data_text(plot_comparison(compare(empty(), empty())))


def test_all_figures() -> None:
    assert set(all_figures(sample())) == {"version_support", "starttls", "provider_heatmap",
                                          "cipher_distribution", "policy_impact"}
    assert "comparison" in all_figures(sample(), previous=sample())


def test_save_figure_writes_png_and_svg(tmp_path: Path) -> None:
    fig = plot_version_support(sample())
    paths = save_figure(fig, tmp_path / "new" / "versions.v1", dpi=50)
    assert paths == [tmp_path / "new" / "versions.v1.png", tmp_path / "new" / "versions.v1.svg"]
    png, svg = (p.read_bytes() for p in paths)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert b"<svg" in svg and b"Protocol version" in svg  # text kept as text
    # no timestamp in the SVG: the same figure saved twice gives the same bytes
    again = save_figure(fig, tmp_path / "again", dpi=50)
    assert again[1].read_bytes() == svg


def test_figure_png_bytes() -> None:
    assert figure_png(plot_starttls(sample()), dpi=40).startswith(b"\x89PNG")


def test_plots_do_not_use_pyplot() -> None:
    code = "import sys, research.plots; sys.exit('matplotlib.pyplot' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
