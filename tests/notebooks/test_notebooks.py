"""Every notebook runs top to bottom against the testbed; a failing cell fails the test."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from support.notebooks import execute

from research.demo import notebook_files
from research.scan.inputs import read_domain_list
from research.scan.survey import run_survey
from research.testbed import Testbed

NOTEBOOKS = notebook_files()


@pytest.fixture(scope="module")
def saved_survey(isc_testbed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("isc-survey")
    domains = read_domain_list(isc_testbed.write_domain_list(out / "domains.csv"))
    run_survey(domains, out, isc_testbed.settings(timeout=3), progress=False)
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_a_saved_survey(path: Path, saved_survey: Path, tmp_path: Path) -> None:
    nb = execute(path, tmp_path, target="testbed", results_dir=str(saved_survey))
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    figures = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if "image/png" in o.get("data", {})]
    assert figures, f"{path.name} drew no chart"


@pytest.mark.testbed
def test_study_notebook_surveys_the_testbed_itself(tmp_path: Path) -> None:
    """With an empty results directory the study notebook starts the testbed and scans it."""
    out = tmp_path / "fresh"
    nb = execute(NOTEBOOKS[0], tmp_path, target="testbed", results_dir=str(out))
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs if o.output_type == "stream")
    assert "Domains without STARTTLS (9)" in text
    assert "STARTTLS domains without TLS 1.2 or newer (1)" in text
    assert (out / "hosts.parquet").exists()
