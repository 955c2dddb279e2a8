"""Tables as DataFrames with exactly the schema's columns, in order, cast to its dtypes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from research.store.schema import column_names, dtypes


def make_table(name: str, rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """A DataFrame with exactly the schema's columns for ``name``, in order, cast to its dtypes.

    Missing keys become nulls; extra keys are dropped.
    """
    frame = pd.DataFrame.from_records(list(rows), columns=column_names(name))
    return cast_table(name, frame)


def cast_table(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly table ``name``'s columns, in order (missing ones null), cast to
    their dtypes; list columns hold lists."""
    out = frame.reindex(columns=column_names(name)).reset_index(drop=True)
    for column, dtype in dtypes(name).items():
        values = out[column]
        if dtype == "object":
            # Lists arrive as lists (raw log) or numpy arrays (Parquet); the contract is lists.
            out[column] = values.map(lambda v: [] if _missing(v) else list(v))
        elif dtype.startswith("datetime"):
            parsed = pd.to_datetime(values, utc=True, format="ISO8601")
            out[column] = parsed.astype(pd.api.types.pandas_dtype(dtype))
        else:
            out[column] = values.astype(pd.api.types.pandas_dtype(dtype))
    return out


def _missing(value: Any) -> bool:
    # A key absent from some raw records arrives as NaN once pandas aligns the rows.
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)
