"""Shared fixtures: the shipped testbed scenarios, started once per test session."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from scanning import TimedScan, cli_scan

from research.results import load_results
from research.testbed import Testbed


@pytest.fixture(scope="session")
def isc_testbed() -> Iterator[Testbed]:
    """The ``isc-2019`` scenario running on loopback (DNS on a free port, SMTP on 2525 or free)."""
    with Testbed.start("isc-2019") as tb:
        yield tb


@pytest.fixture(scope="session")
def cases_testbed() -> Iterator[Testbed]:
    """The ``cases`` scenario running on loopback."""
    with Testbed.start("cases") as tb:
        yield tb


@pytest.fixture(scope="session")
def hostile_testbed() -> Iterator[Testbed]:
    """The ``hostile`` scenario: broken and hostile servers and DNS, one of each."""
    with Testbed.start("hostile") as tb:
        yield tb


@pytest.fixture(scope="session")
def blocked_testbed() -> Iterator[Testbed]:
    """The ``blocked`` scenario: DNS works, no SMTP host can be reached."""
    with Testbed.start("blocked") as tb:
        yield tb


@pytest.fixture(scope="session")
def hostile_scan(hostile_testbed: Testbed, tmp_path_factory: pytest.TempPathFactory
                 ) -> TimedScan:
    """One uninterrupted, timed CLI scan of the whole ``hostile`` scenario."""
    base = tmp_path_factory.mktemp("hostile-scan")
    domain_list = hostile_testbed.write_domain_list(base / "domains.csv")
    started = time.monotonic()
    proc = subprocess.run(cli_scan(hostile_testbed, domain_list, base / "out"),
                          capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    return TimedScan(base / "out", load_results(base / "out"), elapsed)
