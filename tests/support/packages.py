"""Running the ``frictionless`` validator (PyPI, in the dev extra) on a Data Package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def frictionless(descriptor: Path) -> dict[str, Any]:
    """``frictionless validate --json`` on ``descriptor``: its report (``valid``, ``tasks``
    with their ``errors``)."""
    proc = subprocess.run([sys.executable, "-m", "frictionless", "validate", "--json",
                           str(descriptor)], capture_output=True, text=True, timeout=300)
    report: dict[str, Any] = json.loads(proc.stdout)
    assert (proc.returncode == 0) is report["valid"], proc.stderr
    return report


def errors_of(report: dict[str, Any]) -> list[str]:
    """The type of every error the report lists (``constraint-error``, ``hash-count``, ...)."""
    return [e["type"] for task in report["tasks"] for e in task["errors"]] + [
        e["type"] for e in report["errors"]]
