"""The report folder: ``report.html``, every figure as PNG and SVG, the tables as CSV and
Markdown, and the lists of domains, for reuse beside the page."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from research.analysis import BASELINE_LABEL, headline_wide
from research.plots import (
    all_figures,
    plot_enforcement_readiness,
    plot_failure_types,
    save_figure,
)
from research.report.page import FIGURES_DIR, page_context, render
from research.report.tables import (
    ComparisonTables,
    ReportTables,
    comparison_tables,
    display,
    flatten,
    missing,
    report_tables,
)
from research.store.files import atomic_write
from research.store.results import SurveyResults

REPORT_NAME = "report.html"


def write_report(results: SurveyResults, out_dir: str | Path, *,
                 previous: SurveyResults | None = None, dpi: int = 300) -> Path:
    """Write the report of ``results`` into ``out_dir`` (created if needed); return the HTML path.

    Files: ``report.html`` (self-contained: figures embedded, nothing loaded from elsewhere);
    ``figures/<name>.png`` and ``.svg`` for every chart of :func:`research.plots.all_figures`
    (with ``previous``, also ``comparison``; with enforcement data, also
    ``enforcement_readiness`` and ``failure_types``); ``headline.csv`` (tidy) and ``headline.md``
    (one column per unit); ``diary.md/.csv`` (the 2019 diary's summary); ``policy_sweep.md/.csv``;
    ``domains_lost.csv`` (the domains requiring TLS ≥ 1.2 loses); ``domains.csv`` and
    ``hosts.csv`` (the verdict tables); ``cipher_suites.csv``, ``weak_suites.csv``;
    ``domains_without_starttls.txt`` and ``domains_without_tls_1_2.txt`` (STARTTLS domains with
    no TLS ≥ 1.2 on any MX host), one domain a line; with enforcement data
    ``enforcement_readiness.csv``, ``readiness_summary.csv``, ``mta_sts_verdicts.csv``,
    ``dane_verdicts.csv``, ``failure_types.csv``; with ``previous``,
    ``comparison_summary.csv``, ``comparison_domains.csv`` and ``comparison_hosts.csv``. An
    empty or all-failed survey gives the same files, saying "no data" where there is nothing to
    show. ``dpi`` is the resolution of the PNG files (the page embeds its own).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = report_tables(results)
    figures = all_figures(results, previous)
    if tables.enforcement is not None:
        figures["enforcement_readiness"] = plot_enforcement_readiness(results)
        figures["failure_types"] = plot_failure_types(results)
    for name, fig in figures.items():
        save_figure(fig, out / FIGURES_DIR / name, dpi=dpi)
    comparison = comparison_tables(previous, results) if previous is not None else None
    files = _write_tables(out, tables, comparison)
    context = page_context(results, tables, figures, previous=previous, comparison=comparison,
                           files=[*files, f"{FIGURES_DIR}/"])
    _close(figures)
    page = render(context)
    return atomic_write(out / REPORT_NAME, lambda tmp: tmp.write_text(page, encoding="utf-8"))


def _close(figures: dict[str, Figure]) -> None:
    for fig in figures.values():
        fig.clear()


def _write_tables(out: Path, t: ReportTables, c: ComparisonTables | None) -> list[str]:
    """Write every table file; return their names, in the order the page lists them."""
    written: list[str] = []

    def csv(name: str, frame: pd.DataFrame) -> None:
        flatten(frame).to_csv(out / name, index=False)
        written.append(name)

    def markdown(name: str, title: str, frame: pd.DataFrame, note: str = "") -> None:
        _write_markdown(out / name, title, frame, note)
        written.append(name)

    csv("headline.csv", t.headline)
    markdown("headline.md", "Headline", headline_wide(t.headline),
             "Cells: count/total (share). Units: see report.html, Methods.")
    csv("diary.csv", t.diary)
    markdown("diary.md", "As the 2019 diary reported it", display(t.diary))
    csv("policy_sweep.csv", t.sweep)
    markdown("policy_sweep.md", "Policy sweep", display(flatten(t.sweep)),
             "Shares of all input domains; weighted shares use weight 1/rank; lost = "
             f"reachable under '{BASELINE_LABEL}' but not under the policy.")
    csv("domains_lost.csv", t.lost)
    csv("domains.csv", t.domains)
    csv("hosts.csv", t.hosts)
    csv("cipher_suites.csv", t.ciphers)
    csv("weak_suites.csv", t.weak)
    _write_lines(out / "domains_without_starttls.txt", t.without_starttls)
    _write_lines(out / "domains_without_tls_1_2.txt", t.without_tls12)
    written += ["domains_without_starttls.txt", "domains_without_tls_1_2.txt"]
    if t.enforcement is not None:
        e = t.enforcement
        csv("enforcement_readiness.csv", e.readiness)
        csv("readiness_summary.csv", e.summary)
        csv("mta_sts_verdicts.csv", e.mta_sts)
        csv("dane_verdicts.csv", e.dane)
        csv("failure_types.csv", e.failures)
    if c is not None:
        csv("comparison_summary.csv", c.comparison.summary)
        csv("comparison_domains.csv", c.comparison.domains)
        csv("comparison_hosts.csv", c.comparison.hosts)
    return written


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _write_markdown(path: Path, title: str, table: pd.DataFrame, note: str = "") -> None:
    parts = [f"# {title}", ""]
    if note:
        parts += [note, ""]
    parts.append(markdown_table(table))
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``table`` (no index); nulls as empty cells.

    ``"_no rows_"`` for an empty table, so the file still says something.
    """
    if table.empty:
        return "_no rows_"

    def cell(value: object) -> str:
        text = "" if missing(value) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |"
            for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows])
