"""The main job: start the testbed, survey its replica of the 2019 population, keep the tables.

The survey code is the live survey's; only the resolver, the port and the domain list differ.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

from research.errors import InputError
from research.scan.inputs import STUDY_LIST, read_domain_list
from research.scan.survey import run_survey
from research.settings import DEFAULT_CONCURRENCY, DEFAULT_EHLO_NAME, RESULTS_DIR, SurveySettings
from research.store.files import META_NAME, RAW_LOG_NAME
from research.store.results import SurveyResults, load_results

DEMO_TIMEOUT = 3.0
"""Loopback servers answer in milliseconds; a short timeout keeps the deliberately dead hosts
of other scenarios from dominating the run."""


def run_demo(
    out: str | Path,
    *,
    scenario: str = "isc-2019",
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: bool | None = None,
    echo: Callable[[str], object] = lambda _s: None,
) -> SurveyResults:
    """Survey the testbed ``scenario`` into ``out`` (replacing an earlier demo there).

    Raises:
        ScenarioError: the scenario is unknown or malformed.
        InputError: ``out`` cannot be written.
    """
    from research.testbed import Testbed

    out = Path(out)
    _clear_previous(out)
    with Testbed.start(scenario) as tb:
        domain_list = tb.write_domain_list(out / "domains.csv")
        echo(f"Testbed '{scenario}' up: DNS at {tb.resolver}, SMTP on port {tb.smtp_port}")
        echo(
            "Surveying with: starttls-survey scan --domains "
            f"{domain_list} --resolver {tb.resolver} --port {tb.smtp_port} --out {out}"
        )
        # The testbed's settings validate its signed zone from its own trust anchor.
        settings = tb.settings(timeout=DEMO_TIMEOUT, concurrency=concurrency)
        return run_survey(read_domain_list(domain_list), out, settings, progress=progress)


def _clear_previous(out: Path) -> None:
    # Only what a survey writes is removed: a user's own files in --out stay.
    out.mkdir(parents=True, exist_ok=True)
    for name in (RAW_LOG_NAME, "meta.json", "domains.csv"):
        (out / name).unlink(missing_ok=True)
    for table in out.glob("*.parquet"):
        table.unlink()
    report = out / "report"
    if report.is_dir():
        shutil.rmtree(report)


def survey_for_notebook(
    target: str = "testbed",
    results_dir: str | Path | None = None,
    *,
    scenario: str = "isc-2019",
    ehlo_name: str | None = None,
    progress: bool | None = None,
) -> SurveyResults:
    """The results a notebook works on: loaded from ``results_dir`` if a survey is there,
    otherwise surveyed now — the testbed ``scenario`` for ``target="testbed"``, the study's
    domain list on the Internet (port 25) for ``target="live"``, saying ``ehlo_name`` in EHLO
    (None: the default, which identifies no one; a live survey then warns).

    Raises:
        InputError: ``target`` is neither ``testbed`` nor ``live``, or ``results_dir`` cannot
            be written.
        ScenarioError: the testbed scenario is unknown.
    """
    if target not in ("testbed", "live"):
        raise InputError(f"target must be 'testbed' or 'live', not {target!r}")
    default = RESULTS_DIR / ("demo-" + scenario if target == "testbed" else "live")
    out = Path(results_dir) if results_dir else default
    if (out / META_NAME).exists():
        return load_results(out)
    if target == "testbed":
        return run_demo(out, scenario=scenario, progress=progress)
    if ehlo_name is None or ehlo_name == DEFAULT_EHLO_NAME:
        warnings.warn(f"EHLO {DEFAULT_EHLO_NAME} does not identify you to the mail servers you "
                      "survey: set ehlo_name to a name that resolves to this scanner",
                      stacklevel=2)
    settings = SurveySettings.build(ehlo_name=ehlo_name or DEFAULT_EHLO_NAME)
    return run_survey(read_domain_list(STUDY_LIST), out, settings, progress=progress,
                      resume=(out / RAW_LOG_NAME).exists())
