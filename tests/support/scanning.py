"""Running the CLI against a testbed, for the tests that need a whole scan."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from research.store.results import SurveyResults
from research.testbed import Testbed

TIMEOUT = 1.0
"""Seconds per network operation in these scans: loopback answers in milliseconds."""
GREETING_TIMEOUT = 1.0
"""Seconds for a whole greeting: the testbed greets at once, but for the hosts that never do."""
HOST_BUDGET = 10.0
"""Seconds an address is given: enough for any of these hosts' TLS scans on a loaded machine,
short for one that keeps saying 421 (the greylisting host is tried again, ``BACKOFF`` doubling,
until no try fits in it any more)."""
BACKOFF = 0.25
CONCURRENCY = 4


@dataclass
class TimedScan:
    out: Path
    results: SurveyResults
    elapsed: float
    """Wall time of the whole CLI run, seconds."""


def cli_scan(tb: Testbed, domain_list: Path, out: Path, *extra: str) -> list[str]:
    """The command line that scans ``domain_list`` on ``tb`` into ``out``."""
    return [sys.executable, "-m", "research", "scan", "--domains", str(domain_list),
            "--out", str(out), "--resolver", tb.resolver, "--port", str(tb.smtp_port),
            "--trust-ca", str(tb.ca_cert_path), "--timeout", f"{TIMEOUT:g}",
            "--greeting-timeout", f"{GREETING_TIMEOUT:g}", "--host-budget", f"{HOST_BUDGET:g}",
            "--backoff", f"{BACKOFF:g}", "--concurrency", str(CONCURRENCY), "--no-progress",
            *extra]


@contextmanager
def started_testbed(directory: Path, name: str, text: str) -> Iterator[Testbed]:
    """A testbed of the scenario ``text``, written to ``directory/<name>.toml`` (the scenario's
    generated files go beside it)."""
    path = directory / f"{name}.toml"
    path.write_text(text)
    with Testbed.start(path) as tb:
        yield tb
