"""Write a survey's report: figures, tables (Markdown and CSV), domain lists and one HTML page.

``report.html`` is self-contained (figures embedded as base64 PNG, no external resources), so it
can be mailed or archived on its own. Everything else sits beside it for reuse.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from research.analysis import (
    BASELINE_LABEL,
    Policy,
    cipher_summary,
    cipher_version_summary,
    compare,
    diary_summary,
    domain_verdicts,
    domains_lacking_version,
    domains_without_starttls,
    headline,
    headline_wide,
    host_summary,
    policy_sweep,
    scan_date,
    weak_suites,
)
from research.analysis.core import CATEGORIES
from research.analysis.policy import default_policies
from research.plots import all_figures, figure_png, save_figure
from research.store.results import SurveyResults
from research.store.schema import MAIL_DNS_STATUSES, META_KEYS, Unit

REPORT_NAME = "report.html"
FIGURES_DIR = "figures"
NO_DATA = "No data: the survey contains no domains."

_FIGURE_TITLES = {
    "policy_impact": "What a TLS policy costs",
    "starttls": "STARTTLS, per domain and per MX host",
    "version_support": "Protocol versions accepted",
    "provider_heatmap": "Providers",
    "cipher_distribution": "Cipher suites",
    "comparison": "Compared with the previous survey",
}
_STRICT = Policy(require_starttls=True, min_version="TLS 1.2")
_STARTTLS_ONLY = Policy(require_starttls=True)


@dataclass
class _Tables:
    """Every table the report shows, computed once."""

    headline: pd.DataFrame
    diary: pd.DataFrame
    sweep: pd.DataFrame
    domains: pd.DataFrame
    hosts: pd.DataFrame
    versions: pd.DataFrame
    ciphers: pd.DataFrame
    weak: pd.DataFrame
    without_starttls: list[str]
    without_tls12: list[str]


def _tables(results: SurveyResults) -> _Tables:
    policies = default_policies()
    if _STARTTLS_ONLY not in policies:
        policies.append(_STARTTLS_ONLY)
    return _Tables(
        headline=headline(results),
        diary=diary_summary(results),
        sweep=policy_sweep(results, policies),
        domains=domain_verdicts(results),
        hosts=host_summary(results),
        versions=cipher_version_summary(results),
        ciphers=cipher_summary(results),
        weak=weak_suites(results),
        without_starttls=domains_without_starttls(results),
        without_tls12=domains_lacking_version(results, "TLS 1.2", starttls_only=True),
    )


def write_report(results: SurveyResults, out_dir: str | Path, *,
                 previous: SurveyResults | None = None, dpi: int = 300) -> Path:
    """Write the report of ``results`` into ``out_dir`` (created if needed); return the HTML path.

    Files: ``figures/<name>.png`` and ``.svg`` for every chart of
    :func:`research.plots.all_figures` (with ``previous``, also the comparison);
    ``headline.csv`` (tidy) and ``headline.md`` (one column per unit); ``diary.md/.csv`` (the
    2019 diary's summary); ``policy_sweep.md/.csv``; ``domains.csv`` and ``hosts.csv`` (the
    verdict tables); ``cipher_suites.csv``, ``weak_suites.csv``;
    ``domains_without_starttls.txt`` and ``domains_without_tls_1_2.txt`` (STARTTLS domains with
    no TLS ≥ 1.2 on any MX host), one domain a line; and ``report.html``. An empty or all-failed
    survey gives the same files, saying "no data" where there is nothing to show. ``dpi`` is
    the resolution of the PNG files (the HTML embeds its own, smaller PNGs).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = _tables(results)
    figures = all_figures(results, previous)
    for name, fig in figures.items():
        save_figure(fig, out / FIGURES_DIR / name, dpi=dpi)
    _write_tables(out, tables)
    comparison = compare(previous, results) if previous is not None else None
    page = _html(results, tables, figures,
                 comparison.domains if comparison is not None else None)
    path = out / REPORT_NAME
    path.write_text(page, encoding="utf-8")
    return path


def _write_tables(out: Path, t: _Tables) -> None:
    sweep = _flatten(t.sweep)
    t.headline.to_csv(out / "headline.csv", index=False)
    _write_markdown(out / "headline.md", "Headline", headline_wide(t.headline),
                    "Cells: count/total (share). Units: see report.html, Definitions.")
    t.diary.to_csv(out / "diary.csv", index=False)
    _write_markdown(out / "diary.md", "As the 2019 diary reported it", _display(t.diary))
    sweep.to_csv(out / "policy_sweep.csv", index=False)
    _write_markdown(out / "policy_sweep.md", "Policy sweep", _display(sweep),
                    "Shares of all input domains; weighted shares use weight 1/rank; lost = "
                    f"reachable under '{BASELINE_LABEL}' but not under the policy.")
    _flatten(t.domains).to_csv(out / "domains.csv", index=False)
    _flatten(t.hosts).to_csv(out / "hosts.csv", index=False)
    t.ciphers.to_csv(out / "cipher_suites.csv", index=False)
    t.weak.to_csv(out / "weak_suites.csv", index=False)
    _write_lines(out / "domains_without_starttls.txt", t.without_starttls)
    _write_lines(out / "domains_without_tls_1_2.txt", t.without_tls12)


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
        text = "" if _missing(value) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |"
            for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float) and math.isnan(value))


def _flatten(table: pd.DataFrame) -> pd.DataFrame:
    """Lists become comma-joined strings, so CSV and Markdown cells stay one value."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object and out[col].map(lambda v: isinstance(v, list)).any():
            out[col] = out[col].map(lambda v: ", ".join(map(str, v)) if isinstance(v, list)
                                    else v)
    return out


def _display(table: pd.DataFrame) -> pd.DataFrame:
    """Human form of a table: shares as percentages, lists joined."""
    out = _flatten(table)
    for col in out.columns:
        if col.endswith("share") or col.endswith("_share_change"):
            out[col] = out[col].map(lambda v: "" if _missing(v) else f"{float(v):.1%}")
        else:
            # pandas renders a missing value of a nullable dtype as "<NA>"; show nothing
            out[col] = out[col].astype(object).map(lambda v: "" if _missing(v) else v)
    return out


# --- HTML ---------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1150px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table.data{border-collapse:collapse;font-size:.85em;margin:.8em 0}
table.data th,table.data td{border:1px solid #ddd;padding:.25em .5em;text-align:left;
vertical-align:top}
table.data th{background:#f4f4f4}figure{margin:1em 0}figure img{max-width:100%}
figcaption{font-size:.85em;color:#555}.nodata{color:#a00;font-weight:bold}
.lead{font-size:1.05em}code{background:#f4f4f4;padding:0 .2em}
"""


def _esc(text: object) -> str:
    return html.escape(str(text))


def _html_table(table: pd.DataFrame) -> str:
    if table.empty:
        return '<p class="nodata">no data</p>'
    return _display(table).to_html(index=False, na_rep="", border=0, classes="data",
                                   escape=True)


def _figure_html(name: str, fig: Figure) -> str:
    data = base64.b64encode(figure_png(fig)).decode("ascii")
    title = _FIGURE_TITLES.get(name, name)
    return (f'<figure id="fig-{_esc(name)}"><img alt="{_esc(title)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{_esc(title)} — also '
            f"<code>{FIGURES_DIR}/{_esc(name)}.png</code> and <code>.svg</code>"
            "</figcaption></figure>")


def _pct(count: float, total: float) -> str:
    return f"{int(count)} of {int(total)} ({count / total:.0%})" if total else \
        f"{int(count)} of {int(total)}"


def _cell(table: pd.DataFrame, metric: str, unit: str) -> tuple[int, int]:
    rows = table[(table["metric"] == metric) & (table["unit"] == unit)]
    if rows.empty:
        return 0, 0
    return int(rows["count"].iloc[0]), int(rows["total"].iloc[0])


def _listing(items: list[str]) -> str:
    return ", ".join(items) if items else "none"


def narrative(results: SurveyResults) -> list[str]:
    """The report's summary as plain sentences stating the numbers (one string per paragraph).

    ``[NO_DATA]`` for a survey without domains.
    """
    return _narrative(results, _tables(results))


def _narrative(results: SurveyResults, t: _Tables) -> list[str]:
    d = t.domains
    if d.empty:
        return [NO_DATA]
    n = len(d)
    date = scan_date(results.meta)
    mail = int(d["dns_status"].isin(MAIL_DNS_STATUSES).fillna(False).sum())
    counts = d["category"].value_counts()
    dead = {c: int(counts.get(c, 0)) for c in CATEGORIES[4:] if counts.get(c, 0)}
    starttls = "STARTTLS (TLS handshake succeeds)"
    s_any, _ = _cell(t.headline, starttls, Unit.DOMAIN_ANY)
    s_all, _ = _cell(t.headline, starttls, Unit.DOMAIN_ALL)
    h_tls, h_total = _cell(t.headline, starttls, Unit.MX_HOST)
    h_12, _ = _cell(t.headline, "accepts TLS 1.2", Unit.MX_HOST)
    h_13, _ = _cell(t.headline, "accepts TLS 1.3", Unit.MX_HOST)
    paragraphs = [
        f"{n} domains were surveyed" + (f" on {date}" if date else "") + f". {mail} have MX "
        "hosts (MX records or an implicit MX). "
        + (f"{sum(dead.values())} could not be delivered to at all: "
           + "; ".join(f"{c}: {k}" for c, k in dead.items()) + "." if dead
           else "Every domain had a reachable MX host."),
        f"STARTTLS: {_pct(s_any, n)} domains offer it on at least one MX host and "
        f"{_pct(s_all, n)} on all of them. Domains whose MX hosts answered but offer no "
        f"STARTTLS at all: {len(t.without_starttls)} ({_listing(t.without_starttls)}).",
        f"TLS 1.2: of the {s_any} domains with STARTTLS, {len(t.without_tls12)} cannot "
        f"negotiate TLS 1.2 or newer on any MX host ({_listing(t.without_tls12)}).",
        f"Per unique MX host: {_pct(h_tls, h_total)} offer STARTTLS on every IP; "
        f"{_pct(h_12, h_total)} accept TLS 1.2 and {_pct(h_13, h_total)} TLS 1.3.",
    ]
    paragraphs.append(_policy_sentence(t.sweep, n))
    return paragraphs


def _policy_sentence(sweep: pd.DataFrame, n: int) -> str:
    by_label = {str(p): row for p, row in zip(sweep["policy"], sweep.to_dict("records"),
                                               strict=True)}
    base, only, strict = (by_label.get(p.label) for p in (Policy(), _STARTTLS_ONLY, _STRICT))
    if base is None or only is None or strict is None:
        return ""
    extra = [d for d in strict["lost_domains"] if d not in set(only["lost_domains"])]
    weighted = strict["weighted_reachable_share"]
    text = (f"Policy: opportunistic TLS reaches {_pct(base['reachable'], n)} domains. Requiring "
            f"STARTTLS reaches {_pct(only['reachable'], n)} (loses {only['lost']}); requiring "
            f"STARTTLS with TLS ≥ 1.2 reaches {_pct(strict['reachable'], n)} (loses "
            f"{strict['lost']}: {_listing(list(strict['lost_domains']))}). The TLS 1.2 "
            f"requirement itself costs {len(extra)} domain(s) beyond STARTTLS ({_listing(extra)}).")
    if not _missing(weighted):
        text += (f" Weighted by popularity (1/rank), {float(weighted):.1%} of the list stays "
                 "reachable under it.")
    return text


_DEFINITIONS = [
    ("(MX host, IP)", "one scanned address of an MX host: one row of the hosts table."),
    (Unit.MX_HOST, "a unique MX host name, counted once however many domains use it. It has a "
     "property (STARTTLS, a TLS version, a matching certificate) only if every scanned IP of "
     "it has it; an IP that could not be reached has none. 'Reached' means at least one IP "
     "answered SMTP."),
    (Unit.DOMAIN_ALL, "a domain with MX hosts, counted when every MX host has the "
     "property."),
    (Unit.DOMAIN_ANY, "counted when at least one MX host has it."),
    (Unit.DOMAIN_PREFERRED, "counted when every host at the lowest MX preference has it."),
    (Unit.DOMAIN, "every input domain, including those without MX hosts (null MX, NXDOMAIN, DNS "
     "error, invalid name): their category says why."),
    ("STARTTLS", "the server advertised STARTTLS and a TLS handshake succeeded ('STARTTLS "
     "advertised' counts the advertisement alone)."),
    ("TLS ≥ 1.2", "the host accepts TLS 1.2 or a newer version."),
    ("Policy", "a sender tries MX hosts in preference order and delivers to the first that "
     "satisfies its policy, skipping unreachable ones; opportunistic senders deliver to the "
     "first reachable host, in clear text if TLS fails. Shares are of all input domains."),
]


def domain_list_provenance(meta: dict[str, Any]) -> str:
    """One sentence on the surveyed list from ``meta``: its name and format, how many entries
    were taken, its ID and checksum ("" without a list in ``meta``)."""
    source = meta.get("domain_list")
    if not source:
        return ""
    form, taken, top = (meta.get(k) for k in ("domain_list_format", "domain_list_entries",
                                               "domain_list_top"))
    parts = [f"Domain list {source}" + (f" ({form})" if form else "")]
    if isinstance(taken, int):
        parts.append(f"the first {taken:,} entries" if top else f"{taken:,} entries")
    if meta.get("domain_list_id"):
        parts.append(f"list ID {meta['domain_list_id']}")
    if meta.get("domain_list_sha256"):
        parts.append(f"SHA-256 {meta['domain_list_sha256']}"
                     + (" (of the entries taken)" if top else ""))
    return "; ".join(parts) + "."


def _meta_html(meta: dict[str, Any]) -> str:
    keys = [k for k in META_KEYS if k in meta] + sorted(k for k in meta if k not in META_KEYS)
    if not keys:
        return '<p class="nodata">no metadata</p>'
    provenance = domain_list_provenance(meta)
    rows = []
    for key in keys:
        rows.append(f"<tr><th>{_esc(key)}</th><td>{_meta_value(meta[key])}</td>"
                    f"<td>{_esc(META_KEYS.get(key, ''))}</td></tr>")
    return ((f"<p>{_esc(provenance)}</p>" if provenance else "")
            + '<table class="data"><tr><th>key</th><th>value</th><th>meaning</th></tr>'
            + "".join(rows) + "</table>")


def _meta_value(value: object) -> str:
    if isinstance(value, dict):
        if not value:
            return ""
        return ('<table class="data">' + "".join(
            f"<tr><th>{_esc(k)}</th><td>{_meta_value(v)}</td></tr>" for k, v in value.items())
            + "</table>")
    if isinstance(value, list | tuple):
        return _esc(", ".join(str(v) for v in value))
    if value is None:
        return ""
    return _esc(value if isinstance(value, str | int | float) else json.dumps(value, default=str))


def _html(results: SurveyResults, t: _Tables, figures: dict[str, Figure],
          changed_domains: pd.DataFrame | None) -> str:
    date = scan_date(results.meta) or "date unknown"
    meta = results.meta
    port = meta.get("port") or (meta.get("options") or {}).get("port")
    sections: list[str] = [
        f"<h1>Is it safe to require TLS 1.2 for e-mail? — survey of {date}</h1>",
        f'<p class="lead">Scan started {_esc(meta.get("started_at") or "unknown")}, finished '
        f'{_esc(meta.get("finished_at") or "unknown")}; port {_esc(port or "unknown")}; '
        f'resolver {_meta_value(meta.get("resolver")) or "unknown"}.</p>',
        "<h2>Summary</h2>",
        *(f"<p>{_esc(p)}</p>" for p in _narrative(results, t) if p),
        "<h2>As the 2019 diary reported it</h2>", _html_table(t.diary),
        "<h2>What a TLS policy costs</h2>", _figure_html("policy_impact",
                                                         figures["policy_impact"]),
        _html_table(t.sweep),
        "<h2>STARTTLS and protocol versions</h2>",
        _figure_html("starttls", figures["starttls"]),
        _figure_html("version_support", figures["version_support"]),
        _figure_html("provider_heatmap", figures["provider_heatmap"]),
        "<h2>Headline table</h2><p>Cells: count/total (share).</p>",
        _html_table(headline_wide(t.headline)),
        "<h2>Cipher suites</h2>",
        _figure_html("cipher_distribution", figures["cipher_distribution"]),
        _html_table(t.versions), "<h3>Weak suites (accepted on at least one IP)</h3>",
        _html_table(t.weak),
    ]
    if "comparison" in figures:
        sections += ["<h2>Compared with the previous survey</h2>",
                     _figure_html("comparison", figures["comparison"]),
                     "<h3>Domains that changed</h3>",
                     _html_table(changed_domains if changed_domains is not None
                                 else pd.DataFrame())]
    sections += [
        "<h2>Domains</h2>",
        _html_table(t.domains[["domain", "rank", "dns_status", "category", "mx_hosts",
                               "starttls_any", "starttls_all", "max_version_any",
                               "max_version_all", "min_version_any"]]),
        "<h2>Definitions</h2><dl>",
        *(f"<dt><b>{_esc(k)}</b></dt><dd>{_esc(v)}</dd>" for k, v in _DEFINITIONS),
        "</dl><h2>Scan metadata</h2>", _meta_html(meta),
        "<h2>Files</h2><p>Beside this page: <code>headline.csv/.md</code>, "
        "<code>diary.csv/.md</code>, <code>policy_sweep.csv/.md</code>, <code>domains.csv</code>"
        ", <code>hosts.csv</code>, <code>cipher_suites.csv</code>, <code>weak_suites.csv</code>"
        ", <code>domains_without_starttls.txt</code>, <code>domains_without_tls_1_2.txt</code> "
        "(STARTTLS domains with no TLS ≥ 1.2 on any MX host) and <code>figures/</code>.</p>",
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>STARTTLS survey {_esc(date)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(sections) + "\n</body></html>\n")
