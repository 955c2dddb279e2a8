"""Shared fixtures: the shipped testbed scenarios, started once per test session.

Every test that starts loopback servers, or uses a fixture that does, carries the ``testbed``
marker, so ``pytest -m "not testbed"`` is the fast loop of unit tests. Tests that use the
fixtures below are marked automatically; a test that starts a testbed itself must say so with
``@pytest.mark.testbed`` (or ``pytestmark``), and one that does not is failed, so the fast loop
never starts a server.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.scanning import TimedScan, cli_scan

from research.store.results import load_results
from research.testbed import Testbed

TESTBED_FIXTURES = frozenset({
    "isc_testbed", "cases_testbed", "hostile_testbed", "enforcement_testbed", "blocked_testbed",
    "mta_testbed", "hostile_scan", "enforcement_survey", "postfix_run", "today_survey",
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TESTBED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.testbed)


_current: list[pytest.Item] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    # Fixtures of any scope are set up here, so a module-scoped one that starts a testbed is
    # caught too.
    _current[:] = [item]
    yield


@pytest.fixture(scope="session", autouse=True)
def _testbed_only_when_marked() -> Iterator[None]:
    """A test not marked ``testbed`` cannot start one: the fast loop stays fast and honest."""
    start = Testbed.start.__func__  # type: ignore[attr-defined]

    def guarded(cls: type[Testbed], *args: Any, **kwargs: Any) -> Testbed:
        item = _current[0] if _current else None
        if item is not None and item.get_closest_marker("testbed") is None:
            raise AssertionError(f"{item.nodeid} starts a testbed: mark it "
                                 "@pytest.mark.testbed")
        return start(cls, *args, **kwargs)  # type: ignore[no-any-return]

    Testbed.start = classmethod(guarded)  # type: ignore[assignment, method-assign]
    yield
    Testbed.start = classmethod(start)  # type: ignore[assignment, method-assign]


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
def enforcement_testbed() -> Iterator[Testbed]:
    """The ``enforcement`` scenario: certificates, MTA-STS, TLS-RPT and DANE cases."""
    with Testbed.start("enforcement") as tb:
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


@pytest.fixture(scope="session")
def enforcement_survey(enforcement_testbed: Testbed,
                       tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved survey of the ``enforcement`` scenario, DNSSEC validated from the testbed's trust
    anchor; the directory it was written to."""
    from research.scan.inputs import read_domain_list
    from research.scan.survey import run_survey

    tb = enforcement_testbed
    out = tmp_path_factory.mktemp("enforcement-survey")
    domains = read_domain_list(tb.write_domain_list(out / "domains.csv"))
    assert tb.mta_sts_port is not None
    run_survey(domains, out, tb.settings(timeout=3, greeting_timeout=3), progress=False)
    return out


@pytest.fixture(scope="session")
def today_survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved survey of the ``today`` scenario (the isc-2019 domains as they might look now),
    DNSSEC validated from the testbed's trust anchor; the directory it was written to."""
    from research.scan.inputs import read_domain_list
    from research.scan.survey import run_survey

    out = tmp_path_factory.mktemp("today-survey")
    with Testbed.start("today") as tb:
        domains = read_domain_list(tb.write_domain_list(out / "domains.csv"))
        run_survey(domains, out, tb.settings(timeout=3), progress=False)
    return out


def require_tool(reason: str | None) -> None:
    """Skip a test whose real software is missing, with the reason; in CI (``CI=true``), where
    ``.ci/run`` installs it, fail loudly instead: a missing install step must not pass."""
    if reason is None:
        return
    import os

    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} — CI must provide it (.ci/run installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mta_testbed() -> Iterator[Testbed]:
    """The ``mta`` scenario: mail-accepting hosts, one per TLS version, for a real MTA."""
    with Testbed.start("mta") as tb:
        yield tb


@pytest.fixture(scope="session")
def postfix_run(mta_testbed: Testbed,
                tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A real Postfix (Debian's package) relaying the standard workload to the ``mta`` testbed,
    recorded: ``{"log": maillog path, "pcap": tcpdump capture path or None, "pcap_missing":
    why there is no capture}``. Skips (or fails in CI) when Postfix cannot run here."""
    from support import postfix_harness

    require_tool(postfix_harness.postfix_missing())
    import shutil

    tcpdump = shutil.which("tcpdump")
    out = tmp_path_factory.mktemp("postfix-run")
    files = postfix_harness.run_workload(mta_testbed, out, capture=tcpdump is not None)
    return {"log": files["log"], "pcap": files.get("pcap"),
            "pcap_missing": None if tcpdump else "tcpdump is not installed (apt-get install "
                                                 "tcpdump)"}
