"""A survey's report: ``report.html`` to publish (the answer first, figures with captions that
name their unit and date, compact tables, enforcement, then-and-now, methods) and, beside it,
every figure as PNG and SVG and every table as CSV and Markdown.

* :mod:`~research.report.tables` — the tables, computed once, with human column names.
* :mod:`~research.report.narrative` — the summary's sentences and key numbers.
* :mod:`~research.report.page` — the page, rendered from ``templates/report.html.j2``.
* :mod:`~research.report.folder` — :func:`write_report`: the whole folder.
"""

from __future__ import annotations

from research.report.folder import REPORT_NAME, markdown_table, write_report
from research.report.narrative import NO_DATA, narrative
from research.report.page import FIGURES_DIR

__all__ = ["FIGURES_DIR", "NO_DATA", "REPORT_NAME", "markdown_table", "narrative",
           "write_report"]
