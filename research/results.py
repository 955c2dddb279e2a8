"""The result tables: build them from the raw log, cast them to the schema, save and load them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class SurveyResults:
    """One survey's tables (columns documented in :mod:`research.schema`) and its ``meta`` dict."""

    domains: pd.DataFrame
    mx: pd.DataFrame
    hosts: pd.DataFrame
    ciphers: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
