"""Small helpers the enforcement modules share: reading cells of the tables, lifting booleans."""

from __future__ import annotations

from typing import Any

import pandas as pd

from research.analysis.core import mail_domains
from research.store.results import SurveyResults


def text(value: Any) -> str | None:
    """A cell as a string; None for null (or anything else)."""
    return value if isinstance(value, str) else None


def items(value: Any) -> list[Any]:
    """A list cell (a list, tuple or array) as a list; [] for null."""
    return list(value) if isinstance(value, list | tuple) or hasattr(value, "tolist") else []


def by_key(frame: pd.DataFrame, key: str) -> dict[str, dict[Any, Any]]:
    """Rows as dicts by the string value of ``key`` (the last row wins on repeats)."""
    return {str(r[key]): r for r in frame.to_dict("records")}


def all_known(values: pd.Series) -> bool | None:
    """Every non-null value is true; None when all are null."""
    known = values.dropna()
    return bool(known.astype(bool).all()) if len(known) else None


def any_known(values: pd.Series) -> bool | None:
    """Some non-null value is true; None when all are null."""
    known = values.dropna()
    return bool(known.astype(bool).any()) if len(known) else None


def ranked_mail_domains(results: SurveyResults) -> pd.DataFrame:
    """The domains with MX hosts, in rank order (then by name)."""
    return mail_domains(results).sort_values(["rank", "domain"]).reset_index(drop=True)
