"""Every notebook runs top to bottom against the testbed; a failing cell, or one that shows a
warning, fails the test (:func:`support.notebooks.execute`)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from support.notebooks import execute, stream_text

from research.demo import notebook_files
from research.scan.inputs import read_domain_list
from research.scan.survey import run_survey
from research.store.schema import HostStatus
from research.testbed import Scenario, Testbed, load_scenario

NOTEBOOKS = notebook_files()
THEN_AND_NOW = next(p for p in NOTEBOOKS if p.name == "06_then_and_now.ipynb")
ONE_SURVEY = [p for p in NOTEBOOKS if p != THEN_AND_NOW]
"""The notebooks that study one survey (06 compares two)."""


@pytest.fixture(scope="module")
def saved_survey(isc_testbed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("isc-survey")
    domains = read_domain_list(isc_testbed.write_domain_list(out / "domains.csv"))
    run_survey(domains, out, isc_testbed.settings(timeout=3, greeting_timeout=3), progress=False)
    return out


def test_notebooks_are_stored_without_outputs() -> None:
    assert len(NOTEBOOKS) >= 3
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: needs exactly one 'parameters' cell"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", ONE_SURVEY, ids=[p.stem for p in ONE_SURVEY])
def test_notebook_runs_on_a_saved_survey(path: Path, saved_survey: Path, tmp_path: Path) -> None:
    nb = execute(path, tmp_path, target="testbed", results_dir=str(saved_survey))
    figures = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if "image/png" in o.get("data", {})]
    assert figures, f"{path.name} drew no chart"


@pytest.mark.testbed
def test_study_notebook_surveys_the_testbed_itself(tmp_path: Path) -> None:
    """With an empty results directory the study notebook starts the testbed and scans it."""
    out = tmp_path / "fresh"
    nb = execute(NOTEBOOKS[0], tmp_path, target="testbed", results_dir=str(out))
    text = stream_text(nb)
    assert "Domains without STARTTLS (9)" in text
    assert "STARTTLS domains without TLS 1.2 or newer (1)" in text
    assert (out / "hosts.parquet").exists()


def test_then_and_now_notebook_tells_what_changed(saved_survey: Path, today_survey: Path,
                                                  tmp_path: Path) -> None:
    """Notebook 06 on the isc-2019 survey (then) and the today survey (now): the changes it
    reports are those the two scenarios' ground truth implies, and it writes the comparison
    report."""
    report = tmp_path / "report"
    nb = execute(THEN_AND_NOW, tmp_path, target="testbed", results_dir=str(today_survey),
                 previous_dir=str(saved_survey), report_dir=str(report))
    text = stream_text(nb)
    then, now = load_scenario("isc-2019"), load_scenario("today")
    no_starttls = {d.name for d in then.domains} - set(domains_with_starttls(then))
    still = {d.name for d in now.domains} - set(domains_with_starttls(now))
    gained = sorted(no_starttls - still)
    assert f"Gained STARTTLS ({len(gained)}): {', '.join(gained)}." in text
    assert "Lost STARTTLS (0): none." in text
    assert "STARTTLS required, TLS ≥ 1.2: reaches 90 then, 96 now (loses 10 then, 4 now)" \
        in text
    assert "MTA-STS: none published" in text and "MTA-STS: 9 of 100 domains publish" in text
    assert "Enforce mode loses mail for 1: redimail.test." in text
    figures = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if "image/png" in o.get("data", {})]
    assert len(figures) == 4
    assert f"Report written to {report / 'report.html'}" in text
    assert (report / "figures" / "comparison.png").exists()


def domains_with_starttls(scenario: Scenario) -> list[str]:
    """The scenario's domains whose ground truth has a STARTTLS MX host."""
    starttls = {h.name for h in scenario.hosts if h.expect_status == HostStatus.STARTTLS}
    return [d.name for d in scenario.domains if any(h in starttls for h in d.mail_hosts)]
