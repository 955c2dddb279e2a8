"""research.report: the files written, the HTML's numbers and images, and empty surveys."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from support.survey_builder import META, build, domain, empty, host, mx, sample

from research.analysis import headline
from research.report import (
    NO_DATA,
    domain_list_provenance,
    markdown_table,
    narrative,
    write_report,
)

FILES = ["headline.csv", "headline.md", "diary.csv", "diary.md", "policy_sweep.csv",
         "policy_sweep.md", "domains.csv", "hosts.csv", "cipher_suites.csv", "weak_suites.csv",
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


def test_comparison_is_included_with_a_previous_survey(tmp_path: Path) -> None:
    page = write_report(sample(), tmp_path, previous=sample(), dpi=60).read_text()
    assert embedded_images(page) == len(FIGURES) + 1
    assert (tmp_path / "figures" / "comparison.svg").exists()
    assert "Compared with the previous survey" in page


def test_empty_survey_says_no_data(tmp_path: Path) -> None:
    page = write_report(empty(), tmp_path / "out", dpi=60).read_text()
    assert NO_DATA in page and "no metadata" in page
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
