"""Reading one cell or one row of an analysis table back, asserting it is there once."""

from __future__ import annotations

import pandas as pd


def cell(table: pd.DataFrame, metric: str, unit: str) -> tuple[int, int]:
    row = table[(table["metric"] == metric) & (table["unit"] == unit)]
    assert len(row) == 1, (metric, unit)
    return int(row["count"].iloc[0]), int(row["total"].iloc[0])


def row_of(table: pd.DataFrame, key: str, value: str) -> pd.Series:
    rows = table[table[key] == value]
    assert len(rows) == 1, value
    return rows.iloc[0]
