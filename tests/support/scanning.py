"""Running the CLI against a testbed, for the tests that need a whole scan."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from research.store.results import SurveyResults
from research.testbed import Testbed

TIMEOUT = 1.0
"""Seconds per network operation in these scans: loopback answers in milliseconds."""
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
            "--concurrency", str(CONCURRENCY), "--no-progress", *extra]
