"""Scenario files: the shipped ones by name, any other by path, and the domain list of one."""

from __future__ import annotations

import csv
import re
import tomllib
from pathlib import Path

from research.errors import ScenarioError
from research.store.packaged import package_path
from research.testbed.scenario.model import Scenario
from research.testbed.scenario.parser import Invalid, Parser


def scenarios_dir() -> Path:
    """The shipped scenarios: package data in ``research/testbed/scenarios/`` (one
    ``NAME.toml`` each, and the format's manual, ``README.md``). A file added there is a
    scenario."""
    return package_path("research.testbed", "scenarios")


def list_scenarios() -> list[str]:
    """Names of the shipped scenarios (:func:`scenarios_dir`), sorted."""
    return sorted(p.stem for p in scenarios_dir().glob("*.toml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Read and validate a scenario, given a shipped scenario's name or a path to a TOML file.

    Raises ScenarioError (one-line message naming the file and the offending entry) when the
    scenario is unknown, unreadable, not TOML, or breaks any rule of the format.
    """
    path = _resolve(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ScenarioError(f"cannot read scenario {path}: {err.strerror or err}") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ScenarioError(f"{path.name}: not valid TOML: {err}") from err
    try:
        return Parser(path).scenario(raw)
    except Invalid as err:
        raise ScenarioError(f"{path.name}: {err}") from None


def write_domain_list(scenario: Scenario, path: Path) -> Path:
    """Write the scenario's domains as a CSV with header ``rank,domain``; return ``path``.

    Creates missing parent directories; raises OSError if the file cannot be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["rank", "domain"])
        writer.writerows(scenario.domain_list())
    return path


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith(".toml"):
        path = Path(name_or_path)
        if not path.is_file():
            raise ScenarioError(f"scenario file not found: {path}")
        return path
    path = scenarios_dir() / f"{text}.toml"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", text) or not path.is_file():
        known = ", ".join(list_scenarios()) or "none"
        raise ScenarioError(f"unknown scenario {text!r} (available: {known})")
    return path
