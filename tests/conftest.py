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
    import postfix_harness

    require_tool(postfix_harness.postfix_missing())
    import shutil

    tcpdump = shutil.which("tcpdump")
    out = tmp_path_factory.mktemp("postfix-run")
    files = postfix_harness.run_workload(mta_testbed, out, capture=tcpdump is not None)
    return {"log": files["log"], "pcap": files.get("pcap"),
            "pcap_missing": None if tcpdump else "tcpdump is not installed (apt-get install "
                                                 "tcpdump)"}
