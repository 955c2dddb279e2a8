"""research.report: the files written, the page's numbers, images, sections and column names,
the comparison and enforcement sections, and empty surveys. (The page in a real browser:
test_report_browser.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from support.survey_builder import META, build, domain, empty, frame, host, mx, sample

from research.analysis import headline
from research.report import NO_DATA, markdown_table, narrative, write_report
from research.report.page import TEMPLATE, domain_list_provenance

FILES = ["headline.csv", "headline.md", "diary.csv", "diary.md", "policy_sweep.csv",
         "policy_sweep.md", "domains_lost.csv", "domains.csv", "hosts.csv", "cipher_suites.csv",
         "weak_suites.csv",
         "domains_without_starttls.txt", "domains_without_tls_1_2.txt", "report.html"]
FIGURES = ["version_support", "starttls", "provider_heatmap", "cipher_distribution",
           "policy_impact"]


def embedded_images(page: str) -> int:
    return len(re.findall(r'<img [^>]*src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', page))


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert write_report(sample(), out, dpi=60) == out / "report.html"
    return out


def test_every_file_is_written(report_dir: Path) -> None:
    for name in FILES:
        assert (report_dir / name).stat().st_size > 0 or name.endswith(".txt"), name
    for stem in FIGURES:
        for suffix in (".png", ".svg"):
            assert (report_dir / "figures" / f"{stem}{suffix}").stat().st_size > 1000
    assert not (report_dir / "figures" / "comparison.png").exists()


def test_tables_and_lists(report_dir: Path) -> None:
    csv = pd.read_csv(report_dir / "headline.csv")
    expected = headline(sample())
    assert csv["metric"].tolist() == expected["metric"].tolist()
    assert csv["count"].tolist() == expected["count"].tolist()
    md = (report_dir / "headline.md").read_text()
    assert "| STARTTLS (TLS handshake succeeds) | " in md and "4/6 (67%)" in md
    sweep = pd.read_csv(report_dir / "policy_sweep.csv")
    strict = sweep[sweep["policy"] == "STARTTLS required, TLS ≥ 1.2"].iloc[0]
    assert (strict["reachable"], strict["lost_domains"]) == (3, "delta.example, epsilon.example")
    assert (report_dir / "domains_without_starttls.txt").read_text() == "epsilon.example\n"
    assert (report_dir / "domains_without_tls_1_2.txt").read_text() == "delta.example\n"
    assert "delta.example (max TLS 1.0)" in (report_dir / "diary.md").read_text()


def test_html_is_self_contained_and_states_the_numbers(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text()
    assert embedded_images(page) == len(FIGURES)
    # nothing fetched from elsewhere
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<link" not in page
    assert "<script" not in page and "&lt;NA&gt;" not in page
    assert "8 domains were surveyed on 2024-03-05" in page
    assert "4 of 8 (50%) domains offer it on at least one MX host" in page
    assert "(delta.example)" in page  # STARTTLS domain without TLS 1.2
    assert "requiring STARTTLS with TLS ≥ 1.2 reaches 3 of 8 (38%)" in page
    # unit definitions and the scan's metadata
    assert "domain (any MX host)" in page and "Definitions" in page
    assert "127.0.0.1:5353" in page and "sslyze" in page and "6.1.0" in page
    assert "port 25" in page


def test_narrative_counts() -> None:
    paragraphs = narrative(sample())
    assert paragraphs[0].startswith("8 domains were surveyed on 2024-03-05. 6 have MX hosts")
    assert "3 could not be delivered to at all: no reachable MX host: 1; null MX: 1; " \
           "NXDOMAIN: 1." in paragraphs[0]
    assert "The TLS 1.2 requirement itself costs 1 domain(s) beyond STARTTLS (delta.example)" \
        in paragraphs[-1]


def section(page: str, name: str) -> str:
    """The HTML of ``<section id="name">``, or "" when the page has none."""
    found = re.search(rf'<section id="{name}".*?</section>', page, re.S)
    return found.group() if found else ""


def test_page_answers_first_with_key_numbers(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text()
    summary = section(page, "summary")
    # 5 domains are reachable at all; the policy loses 2 of them.
    assert ("Requiring STARTTLS with TLS 1.2 or newer would lose 2 of 8 (25%) domains: 1 offer "
            "no STARTTLS at all, and 1 offer it but nothing newer than TLS 1.1.") in summary
    assert '<span class="value">50%</span> <span class="label">of domains offer STARTTLS' \
        in summary
    assert "4 of 8 domains, on at least one MX host" in summary
    assert page.index('id="summary"') < page.index('id="figures"') < page.index('id="tables"')


def test_figures_have_captions_with_unit_and_date(report_dir: Path) -> None:
    figures = section((report_dir / "report.html").read_text(), "figures")
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", figures, re.S)
    assert len(captions) == len(FIGURES)
    for caption in captions:
        assert "Scan of 2024-03-05 (8 domains)." in caption and "Files:" in caption
    assert "per unique MX host (on every IP) and per domain with MX hosts" in figures


def test_tables_have_human_column_names(report_dir: Path) -> None:
    tables = section((report_dir / "report.html").read_text(), "tables")
    heads = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", tables)
    assert {"Sender policy", "Reachable", "Share weighted by 1/rank", "Finding", "Domain",
            "Why"} <= set(heads)
    assert not [h for h in heads if "_" in h]  # no raw column names
    # Only the policies that require something beyond opportunistic delivery, and the baseline.
    assert "opportunistic, TLS ≥ 1.2 if possible" not in tables
    assert "STARTTLS required, TLS ≥ 1.3" in tables
    # The domains lost under the diary's policy, with why.
    assert re.search(r"<td>epsilon\.example</td><td class=\"num\">5</td><td>no STARTTLS</td>",
                     tables)


def test_long_tables_are_folded_and_linked(report_dir: Path) -> None:
    data = section((report_dir / "report.html").read_text(), "data")
    folded = re.findall(r'<details id="([a-z-]+)">', data)
    assert folded == ["headline", "domains", "hosts", "versions", "weak"]
    assert '<a href="domains.csv">' in data and '<a href="hosts.csv">' in data
    assert "<summary>Per domain <span class=\"count\">(8 rows)</span>" in data


def test_methods_box(report_dir: Path, tmp_path: Path) -> None:
    r = sample()
    r.meta = {**META, "domain_list": "top.csv", "domain_list_sha256": "ab" * 32,
              "options": {"engine": "versions", "concurrency": 4, "per_host_connections": 1,
                          "timeout": 5.0, "retries": 2, "backoff": 1.5,
                          "dnssec_anchor": "root.ds", "license": "CC-BY-4.0",
                          "dispatcher": "threads", "ehlo_name": "scan.example.org"}}
    methods = section(write_report(r, tmp_path, dpi=60).read_text(), "methods")
    for text in ("sslyze 6.1.0", "127.0.0.1:5353", "ab" * 32, "top.csv", "versions",
                 "4 hosts at once, 1 connections per host, 5.0 s timeout, 2 retries, 1.5 s "
                 "backoff, doubling", "validated from the trust anchor root.ds", "CC-BY-4.0",
                 "EHLO scan.example.org", "probes on threads", "2024-03-05T10:00:00+00:00"):
        assert text in methods, text


def test_page_comes_from_the_packaged_template_with_a_print_stylesheet(report_dir: Path
                                                                       ) -> None:
    from importlib import resources

    template = resources.files("research.report").joinpath("templates", TEMPLATE)
    assert template.is_file()
    page = (report_dir / "report.html").read_text()
    assert "@media print" in page and '<meta name="viewport"' in page


def enforcement_survey_sample() -> object:
    survey = sample()
    hosts = survey.hosts.copy()
    hosts["webpki_result"] = hosts["status"].map(
        {"starttls": "ok", "no_starttls": "starttls-not-supported"}).astype("string")
    hosts.loc[hosts["mx_host"] == "mx.delta.example", "webpki_result"] = "certificate-expired"
    survey.hosts = hosts
    survey.mta_sts = frame("mta_sts", [
        {"domain": "alpha.example", "txt_status": "valid", "fetch_status": "ok",
         "policy_status": "valid", "mode": "enforce", "mx_patterns": ["mx.big.example"],
         "mx_not_covered": []},
        {"domain": "delta.example", "txt_status": "valid", "fetch_status": "ok",
         "policy_status": "valid", "mode": "enforce", "mx_patterns": ["mx.delta.example"],
         "mx_not_covered": []}])
    return survey


def test_enforcement_section_only_with_enforcement_data(report_dir: Path, tmp_path: Path
                                                        ) -> None:
    assert section((report_dir / "report.html").read_text(), "enforcement") == ""
    assert not (report_dir / "enforcement_readiness.csv").exists()
    page = write_report(enforcement_survey_sample(), tmp_path, dpi=60).read_text()
    enforcement = section(page, "enforcement")
    assert "MTA-STS: 2 of 6 domains publish a valid record" in enforcement
    assert "Enforce mode loses mail for 1: delta.example." in enforcement
    assert re.search(r"<td>delta\.example</td><td>enforce-breaks</td><td>enforce</td>",
                     enforcement)
    assert "None: no MX host publishes TLSA records." in enforcement
    assert embedded_images(enforcement) == 2
    for name in ("enforcement_readiness", "failure_types"):
        assert (tmp_path / "figures" / f"{name}.svg").exists()
    for name in ("enforcement_readiness", "readiness_summary", "mta_sts_verdicts",
                 "dane_verdicts", "failure_types"):
        assert len(pd.read_csv(tmp_path / f"{name}.csv")) > 0, name


def later() -> object:
    """The sample survey a while later: epsilon gained STARTTLS with TLS 1.2 and 1.3, delta
    switched TLS 1.0 off for TLS 1.2."""
    survey = sample()
    survey.meta = {**META, "started_at": "2025-06-01T10:00:00+00:00"}
    hosts = survey.hosts.set_index("mx_host")
    changed = {"mx.eps.example": ("TLS 1.2", "TLS 1.3"), "mx.delta.example": ("TLS 1.2",)}
    rows = [host(h, hosts.loc[h, "ip"], versions=changed[h]) if h in changed
            else dict(hosts.loc[h].to_dict(), mx_host=h) for h in hosts.index]
    survey.hosts = frame("hosts", rows)
    return survey


def test_comparison_section(tmp_path: Path) -> None:
    page = write_report(later(), tmp_path, previous=sample(), dpi=60).read_text()
    assert embedded_images(page) == len(FIGURES) + 1
    assert (tmp_path / "figures" / "comparison.svg").exists()
    comparison = section(page, "comparison")
    assert "Compared with the earlier survey (2024-03-05, 8 domains) this one (2025-06-01, 8 " \
        "domains) finds" in comparison
    assert "offered STARTTLS: 4 of 6 (67%) then, 5 of 6 (83%) now" in comparison
    assert ("A sender requiring STARTTLS with TLS ≥ 1.2 would have reached 3 of 8 (38%) "
            "domains then and reaches 5 of 8 (62%) now.") in comparison
    assert "gained STARTTLS 1 (epsilon.example)" in comparison
    assert "switched TLS 1.0 off 1 (delta.example)" in comparison
    # The side-by-side table and the domains that moved between categories.
    assert re.search(r'<td>STARTTLS \(TLS handshake succeeds\)</td><td class="num">4/6 \(67%\)'
                     r'</td><td class="num">5/6 \(83%\)</td><td class="num">\+17 pp</td>',
                     comparison)
    assert re.search(r"<td>epsilon\.example</td><td>no STARTTLS</td><td>TLS ≥ 1\.2 on all MX "
                     r"hosts</td>", comparison)
    assert "2024-03-05, compared with" not in page and "compared with 2024-03-05" in page
    methods = section(page, "methods")
    assert "<th scope=\"col\">Previous survey</th>" in methods
    for name in ("comparison_summary", "comparison_domains", "comparison_hosts"):
        assert (tmp_path / f"{name}.csv").exists()


def test_empty_survey_says_no_data(tmp_path: Path) -> None:
    page = write_report(empty(), tmp_path / "out", dpi=60).read_text()
    assert NO_DATA in page and "No metadata" in page
    assert embedded_images(page) == len(FIGURES)
    assert (tmp_path / "out" / "domains_without_starttls.txt").read_text() == ""
    assert "_no rows_" not in (tmp_path / "out" / "headline.md").read_text()  # rows of zeros


def test_all_failed_survey(tmp_path: Path) -> None:
    r = build([domain("a.example", 1), domain("b.example", 2, "dns_error")],
              [mx("a.example", 10, "mx.a.example")],
              [host("mx.a.example", status="timeout")])
    page = write_report(r, tmp_path, dpi=60).read_text()
    assert "0 of 2 (0%) domains offer it" in page
    assert "2 could not be delivered to at all: no reachable MX host: 1; DNS error: 1." in page
    assert (tmp_path / "domains_without_tls_1_2.txt").read_text() == ""


def test_html_escapes_what_it_shows(tmp_path: Path) -> None:
    r = sample()
    r.meta = {**META, "ehlo_name": "<b>x</b>"}
    page = write_report(r, tmp_path, dpi=60).read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page


TRANCO_META = {"domain_list": "top-1m.csv.zip", "domain_list_sha256": "ab" * 32,
               "domain_list_entries": 1000, "domain_list_top": 1000, "domain_list_id": "K2VWW",
               "domain_list_format": "rank,domain CSV without a header, zip member top-1m.csv"}


def test_the_domain_list_is_stated_with_its_id_and_checksum(tmp_path: Path) -> None:
    sentence = ("Domain list top-1m.csv.zip (rank,domain CSV without a header, zip member "
                f"top-1m.csv); the first 1,000 entries; list ID K2VWW; SHA-256 {'ab' * 32} (of "
                "the entries taken).")
    assert domain_list_provenance(TRANCO_META) == sentence
    whole = {"domain_list": "list.txt", "domain_list_sha256": "cd" * 32,
             "domain_list_entries": 12, "domain_list_top": None, "domain_list_id": None,
             "domain_list_format": "one domain a line"}
    assert domain_list_provenance(whole) == (f"Domain list list.txt (one domain a line); 12 "
                                             f"entries; SHA-256 {'cd' * 32}.")
    assert domain_list_provenance({"domain_list": "x.csv"}) == "Domain list x.csv."
    assert domain_list_provenance(META) == ""
    r = sample()
    r.meta = {**META, **TRANCO_META, "domain_list_id": "<K2VWW>"}
    page = write_report(r, tmp_path, dpi=60).read_text()
    assert sentence.replace("K2VWW", "&lt;K2VWW&gt;") in page


def test_markdown_table() -> None:
    table = pd.DataFrame({"a": ["x|y", None], "b": [1, 2]})
    assert markdown_table(table) == "| a | b |\n|---|---|\n| x\\|y | 1 |\n|  | 2 |"
    assert markdown_table(table.iloc[0:0]) == "_no rows_"
