"""The repository's own files, which the package does not ship (the data dictionary,
pyproject.toml): for the tests that check them. What the package reads at run time is found
through the package itself (``importlib.resources``), never from here."""

from __future__ import annotations

from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]
"""The clone's top directory (``tests/support/`` is two below it)."""
