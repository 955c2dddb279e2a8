"""Shared fixtures: the shipped testbed scenarios, started once per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
