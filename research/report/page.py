"""``report.html``: the page a writer publishes, rendered from a Jinja2 template.

The template (``templates/report.html.j2``) and its stylesheet (``templates/report.css``) are
package data, read with :func:`research.store.packaged.package_path`; this module only gathers what
they show: the answer and the key numbers first, then (with a previous survey) then and now, the
figures with captions that name their unit and date, a few compact tables with human column names,
the enforcement findings when the survey has them, the long tables folded, and the methods. Figures
are embedded as PNG (``data:`` URIs), so the page stands alone.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2
import pandas as pd
from matplotlib.figure import Figure

from research.analysis import Policy, headline_wide, scan_date
from research.plots import figure_png
from research.report.narrative import (
    answer,
    comparison_sentences,
    enforcement_sentences,
    key_numbers,
    summary_paragraphs,
)
from research.report.tables import ComparisonTables, ReportTables, display
from research.store.packaged import package_path
from research.store.provenance import TOOL, version_of
from research.store.results import SurveyResults
from research.store.schema import DaneVerdict, StsVerdict

TEMPLATE = "report.html.j2"
STYLESHEET = "report.css"
FIGURES_DIR = "figures"
EMBED_DPI = 100
"""Resolution of the PNGs embedded in the page (the files beside it have their own)."""


@dataclass(frozen=True)
class FigureInfo:
    """What the page says about one chart: its title, and what it counts (the unit)."""

    title: str
    unit: str
    wide: bool = False
    """Shown across the page; the others two abreast on a wide screen."""


FIGURES: dict[str, FigureInfo] = {
    "starttls": FigureInfo(
        "STARTTLS, per domain and per MX host",
        "Left: every input domain by category (TLS ≥ 1.2 on all, some or none of its MX hosts, "
        "no STARTTLS, or why no mail can be delivered). Right: unique MX hosts by status.",
        wide=True),
    "policy_impact": FigureInfo(
        "What a TLS policy costs",
        "Share of the input domains a sender can still deliver to, by the minimum TLS version "
        "it requires, with and without requiring STARTTLS; plain and weighted by 1/rank.",
        wide=True),
    "version_support": FigureInfo(
        "Protocol versions accepted",
        "Share accepting each version, per unique MX host (on every IP) and per domain with "
        "MX hosts (on any MX host)."),
    "provider_heatmap": FigureInfo(
        "Providers",
        "Providers (registrable part of the MX host names), largest first: share of their "
        "MX hosts with STARTTLS and with each version."),
    "cipher_distribution": FigureInfo(
        "Cipher suites",
        "Accepted (MX host, cipher suite) pairs per protocol version, by class (forward "
        "secrecy, AEAD, weak)."),
    "enforcement_readiness": FigureInfo(
        "Enforcement readiness",
        "Domains with MX hosts: enforced by MTA-STS or DANE, and whether that loses mail; or "
        "not enforced, and whether every MX host would pass WebPKI if it were."),
    "failure_types": FigureInfo(
        "How enforcing senders' sessions would end",
        "By RFC 8460 result type: per unique MX host (WebPKI, as MTA-STS demands), per "
        "(domain, MX host) with DANE in force, per domain with an MTA-STS record."),
    "comparison": FigureInfo(
        "Then and now",
        "STARTTLS and each TLS version in both surveys: per domain with MX hosts (any MX "
        "host) and per unique MX host.",
        wide=True),
}
ENFORCEMENT_FIGURES = ("enforcement_readiness", "failure_types")

DEFINITIONS = [
    ("(MX host, IP)", "one scanned address of an MX host: one row of the hosts table."),
    ("MX host", "a unique MX host name, counted once however many domains use it. It has a "
     "property (STARTTLS, a TLS version, a matching certificate) only if every scanned IP of "
     "it has it; an IP that could not be reached has none. 'Reached' means at least one IP "
     "answered SMTP."),
    ("domain (all MX hosts)", "a domain with MX hosts, counted when every MX host has the "
     "property."),
    ("domain (any MX host)", "counted when at least one MX host has it."),
    ("domain (preferred MX)", "counted when every host at the lowest MX preference has it."),
    ("domain", "every input domain, including those without MX hosts (null MX, NXDOMAIN, DNS "
     "error, invalid name): their category says why."),
    ("STARTTLS", "the server advertised STARTTLS and a TLS handshake succeeded ('STARTTLS "
     "advertised' counts the advertisement alone)."),
    ("TLS ≥ 1.2", "the host accepts TLS 1.2 or a newer version."),
    ("Policy", "a sender tries MX hosts in preference order and delivers to the first that "
     "satisfies its policy, skipping unreachable ones; opportunistic senders deliver to the "
     "first reachable host, in clear text if TLS fails. Shares are of all input domains."),
]



@cache
def _environment() -> jinja2.Environment:
    def load(name: str) -> str:
        return package_path("research.report", "templates", name).read_text("utf-8")

    return jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=False,
                              keep_trailing_newline=True)


def stylesheet() -> str:
    return package_path("research.report", "templates", STYLESHEET).read_text("utf-8")


def table_view(frame: pd.DataFrame, columns: list[str] | None = None, *,
               labels: dict[str, str] | None = None, empty_note: str = "") -> dict[str, Any]:
    """A table as the template's ``table`` macro takes it: human column names, formatted
    cells, which columns are numbers (right-aligned)."""
    source = frame if columns is None else frame[columns]
    shown = display(source, labels=labels)
    numeric = [(pd.api.types.is_numeric_dtype(source[c]) and not pd.api.types.is_bool_dtype(
        source[c])) or str(c).endswith(("share", "coverage", "_then", "_now", "_change"))
        for c in source.columns]
    return {"columns": list(shown.columns), "rows": shown.values.tolist(), "numeric": numeric,
            "empty_note": empty_note}


def _png_size(png: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    return int(width), int(height)


def figure_view(name: str, fig: Figure, number: int, meta: dict[str, Any],
                n: int | None) -> dict[str, Any]:
    info = FIGURES.get(name, FigureInfo(name, ""))
    png = figure_png(fig, dpi=EMBED_DPI)
    width, height = _png_size(png)
    date = scan_date(meta) or "date unknown"
    scope = f" ({n} domains)" if n is not None else ""
    return {
        "name": name, "number": number, "title": info.title,
        "caption": f"{info.unit} Scan of {date}{scope}." if name != "comparison"
        else info.unit,
        "alt": f"{info.title}: {info.unit}",
        "src": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
        "width": width, "height": height,
        "href": f"{FIGURES_DIR}/{name}.png", "svg": f"{FIGURES_DIR}/{name}.svg",
        "wide": info.wide,
    }


def _folded(id_: str, title: str, frame: pd.DataFrame, csv: str | None, *,
            columns: list[str] | None = None, note: str = "") -> dict[str, Any]:
    return {"id": id_, "title": title, "rows": len(frame), "csv": csv, "note": note,
            "table": table_view(frame, columns)}


def _methods_values(meta: dict[str, Any]) -> dict[str, str]:
    options = meta.get("options") or {}
    versions = meta.get("versions") or {}
    tool = meta.get("tool") or {}

    def join(value: Any) -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return str(value)

    anchor = options.get("dnssec_anchor")
    politeness = [f"{options[k]} {label}" for k, label in (
        ("concurrency", "hosts at once"), ("per_host_connections", "connections per host"),
        ("timeout", "s timeout"), ("retries", "retries"), ("backoff", "s backoff, doubling"))
        if options.get(k) is not None]
    return {
        "Tool": join(" ".join(str(v) for v in (tool.get("name"), tool.get("version")) if v)),
        "Libraries": ", ".join(f"{k} {v}" for k, v in versions.items() if v),
        "Started (UTC)": join(meta.get("started_at")),
        "Finished (UTC)": join(meta.get("finished_at")) or ("not finished"
                                                              if meta else ""),
        "Runs": join(meta.get("runs")),
        "Input": domain_list_provenance(meta),
        "Resolver": join(meta.get("resolver")),
        "Vantage": ", ".join(x for x in (
            f"port {meta.get('port') or options.get('port')}"
            if meta.get("port") or options.get("port") else "",
            f"EHLO {meta.get('ehlo_name') or options.get('ehlo_name')}"
            if meta.get("ehlo_name") or options.get("ehlo_name") else "",
            f"probes on {options['dispatcher']}" if options.get("dispatcher") else "") if x),
        "Engine": join(options.get("engine")),
        "Politeness": ", ".join(politeness),
        "DNSSEC": (f"validated from the trust anchor {anchor}" if anchor else
                   "the resolver's AD bit, taken on trust") if options else "",
        "Trust store": "Mozilla (sslyze)" + (f" plus {options['trust_ca']}"
                                             if options.get("trust_ca") else "")
        if options else "",
        "Opt-out list": join(options.get("opt_out")) or ("none" if options else ""),
        "Data licence": join(options.get("license")) or ("none given" if options else ""),
    }


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


def methods_view(results: SurveyResults, previous: SurveyResults | None) -> dict[str, Any]:
    this = _methods_values(results.meta)
    before = _methods_values(previous.meta) if previous is not None else {}
    rows = [{"label": k, "value": v, "previous": before.get(k, "")} for k, v in this.items()
            if v or before.get(k)]
    return {"rows": rows if results.meta else [],
            "this": "This survey" if previous is not None else "Value",
            "previous": "Previous survey" if previous is not None else None}


def page_context(results: SurveyResults, t: ReportTables, figures: dict[str, Figure], *,
                 previous: SurveyResults | None = None,
                 comparison: ComparisonTables | None = None,
                 files: list[str]) -> dict[str, Any]:
    """Everything the template shows."""
    meta = results.meta
    date = scan_date(meta)
    n = len(results.domains)
    numbers = iter(range(1, 100))
    ordered = [name for name in FIGURES if name in figures and name not in ENFORCEMENT_FIGURES
               and name != "comparison"]
    comparison_view = None
    if comparison is not None and previous is not None:
        changed = comparison.comparison.domains
        comparison_view = {
            "sentences": comparison_sentences(comparison, t, results, previous),
            "side_by_side": table_view(comparison.side_by_side, labels={
                "domains_then": "Domains then", "domains_now": "Domains now",
                "domains_change": "Change", "hosts_then": "MX hosts then",
                "hosts_now": "MX hosts now", "hosts_change": "Change"}),
            "figure": figure_view("comparison", figures["comparison"], next(numbers), meta, n),
            "moved": table_view(comparison.moved, ["domain", "category_before",
                                                   "category_after", "versions_gained",
                                                   "versions_lost"],
                                empty_note="no domain changed category"),
            "changed": _folded("changed-domains", "Every domain that changed", changed,
                               "comparison_domains.csv",
                               columns=["domain", "change", "changed", "versions_gained",
                                        "versions_lost"]),
            "hosts": _folded("changed-hosts", "Every MX host that changed",
                             comparison.comparison.hosts, "comparison_hosts.csv",
                             columns=["mx_host", "change", "changed", "versions_gained",
                                      "versions_lost"]),
        }
    views = [figure_view(name, figures[name], next(numbers), meta, n) for name in ordered]
    enforcement_view = None
    if t.enforcement is not None:
        e = t.enforcement
        sts = e.mta_sts[e.mta_sts["verdict"] != StsVerdict.NONE]
        dane = e.dane[e.dane["verdict"] != DaneVerdict.NONE]
        enforcement_view = {
            "sentences": enforcement_sentences(results),
            "figures": [figure_view(name, figures[name], next(numbers), meta, n)
                        for name in ENFORCEMENT_FIGURES if name in figures],
            "summary": table_view(e.summary[e.summary["count"] > 0],
                                  ["metric", "unit", "count", "total", "share"]),
            "mta_sts": table_view(sts, ["domain", "verdict", "mode", "fetch_status", "refused",
                                        "refused_reasons"],
                                  empty_note="no domain publishes an MTA-STS record"),
            "dane": table_view(dane, ["domain", "verdict", "mx_dnssec", "coverage", "refused",
                                      "refused_reasons"],
                               empty_note="no MX host publishes TLSA records"),
            "readiness": _folded("readiness", "Readiness per domain", e.readiness,
                                 "enforcement_readiness.csv",
                                 columns=["domain", "rank", "readiness", "mta_sts_verdict",
                                          "dane_verdict", "webpki_failures"]),
        }
    blocked = ("Every host with an address timed out or refused while DNS worked: outbound "
               f"port {meta.get('port')} was probably blocked where the survey ran, so the "
               "host statuses describe that network, not the mail servers."
               if meta.get("smtp_port_blocked") else "")
    sections = [("summary", "Summary")]
    if comparison_view:
        sections.append(("comparison", "Then and now"))
    sections += [("figures", "Figures"), ("tables", "Tables")]
    if enforcement_view:
        sections.append(("enforcement", "Enforcement"))
    sections += [("data", "Full tables"), ("methods", "Methods"), ("files", "Files")]
    return {
        "title": "Is it safe to require TLS 1.2 for e-mail?",
        "subtitle": f"A survey of {n} domains' mail servers, scanned {date or 'date unknown'}"
                    + (f", compared with {scan_date(previous.meta) or 'an earlier survey'}"
                       if previous is not None else ""),
        "generator": f"{TOOL} {version_of(TOOL) or ''}".strip(),
        "css": stylesheet(),
        "answer": answer(t),
        "key_numbers": key_numbers(t),
        "paragraphs": summary_paragraphs(results, t),
        "blocked": blocked,
        "sections": sections,
        "comparison": comparison_view,
        "figures_wide": [v for v in views if v["wide"]],
        "figures_pair": [v for v in views if not v["wide"]],
        "diary": table_view(t.diary, ["metric", "count", "total", "share", "domains"]),
        "sweep": table_view(_required(t.sweep), ["policy", "reachable", "reachable_share",
                                                 "weighted_reachable_share", "lost"]),
        "lost": table_view(t.lost, labels={"category": "Why"},
                           empty_note="requiring TLS ≥ 1.2 loses no domain"),
        "enforcement": enforcement_view,
        "details": [
            _folded("headline", "Headline matrix: every metric by unit",
                    headline_wide(t.headline), "headline.csv",
                    note="Cells: count/total (share). Units as defined under Methods."),
            _folded("domains", "Per domain", t.domains, "domains.csv",
                    columns=["domain", "rank", "dns_status", "category", "mx_hosts",
                             "starttls_any", "starttls_all", "max_version_any",
                             "max_version_all", "min_version_any"]),
            _folded("hosts", "Per MX host", t.hosts, "hosts.csv",
                    columns=["mx_host", "provider", "status", "starttls", "min_version",
                             "max_version", "cert_matches_mx", "domains"]),
            _folded("versions", "Cipher suites per protocol version", t.versions,
                    "cipher_suites.csv",
                    columns=["tls_version", "hosts", "suites", "hosts_fs_share",
                             "hosts_aead_share", "hosts_weak_share"]),
            _folded("weak", "Weak suites accepted", t.weak, "weak_suites.csv"),
        ],
        "methods": methods_view(results, previous),
        "definitions": DEFINITIONS,
        "meta_json": json.dumps(meta, indent=2, default=str, ensure_ascii=False),
        "files": files,
    }


def _required(sweep: pd.DataFrame) -> pd.DataFrame:
    """The sweep's opportunistic baseline and its policies that require STARTTLS (an
    opportunistic sender's minimum version loses nothing; the CSV has those rows too)."""
    keep = sweep["require_starttls"].fillna(False).astype(bool) | (
        sweep["policy"].astype(str) == Policy().label)
    return sweep[keep]


def render(context: dict[str, Any]) -> str:
    return _environment().get_template(TEMPLATE).render(**context)

