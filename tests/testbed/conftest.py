"""Fixtures of the testbed tests: the one-host scenario they start on their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.testbed_clients import TINY

from research.testbed import Testbed


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture
def tiny_testbed(tiny_path: Path) -> Iterator[Testbed]:
    with Testbed.start(tiny_path) as tb:
        yield tb
