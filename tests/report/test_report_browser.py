"""The report in a real browser: Debian's Chromium, headless, at a laptop's width (1280 CSS
pixels) and a phone's (390). Nothing runs off the right edge, every image loads, the console
stays clean, and the page is a few screens long. Run on the demo's survey (as `make demo` writes
it), on the demo compared with the `today` scenario, and on the `enforcement` scenario."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool
from support.browser import chromium, chromium_missing, render

from research.report import write_report
from research.store.results import load_results

pytestmark = pytest.mark.testbed

WIDTHS = (1280, 390)
SCREENS = 8
"""The demo's page at 1280 px is at most this many screens of 1000 px (it was 18.8 before)."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_tool(chromium_missing())
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`starttls-survey demo`: the isc-2019 survey and its report, as a user gets them."""
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run([sys.executable, "-m", "research", "demo", "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return out


def check_page(browser: Any, page: Path) -> dict[int, dict[str, Any]]:
    """Render ``page`` at each width and assert what every report page must satisfy."""
    seen = {}
    for width in WIDTHS:
        r = render(browser, page.as_uri(), width)
        assert r["scroll_width"] <= r["inner_width"], (width, r["wide"])
        assert r["images"] and all(i["complete"] and i["natural_width"] > 0
                                   for i in r["images"]), (width, r["images"])
        assert r["console_errors"] == [] and r["page_errors"] == [], width
        assert r["failed_requests"] == [], width
        seen[width] = r
    return seen


def test_demo_report(browser: Any, demo: Path) -> None:
    seen = check_page(browser, demo / "report" / "report.html")
    wide = seen[1280]
    # 5 survey figures and the 2 enforcement ones: isc-2019 signs DNSSEC and serves no MTA-STS.
    assert len(wide["images"]) == 7
    assert wide["sections"] == ["summary", "figures", "tables", "enforcement", "data",
                                "methods", "files"]
    print(f"\ndemo report height at 1280 px: {wide['height']} px; at 390 px: "
          f"{seen[390]['height']} px")
    assert wide["height"] <= SCREENS * 1000


def test_then_and_now_report(browser: Any, demo: Path, today_survey: Path,
                             tmp_path: Path) -> None:
    page = write_report(load_results(today_survey), tmp_path, previous=load_results(demo),
                        dpi=60)
    seen = check_page(browser, page)
    assert seen[1280]["sections"][:2] == ["summary", "comparison"]
    assert len(seen[1280]["images"]) == 8


def test_enforcement_report(browser: Any, enforcement_survey: Path, tmp_path: Path) -> None:
    page = write_report(load_results(enforcement_survey), tmp_path, dpi=60)
    seen = check_page(browser, page)
    assert "enforcement" in seen[1280]["sections"]
    text = page.read_text(encoding="utf-8")
    assert "<td>sts-expired.test</td><td>enforce-breaks</td>" in text
