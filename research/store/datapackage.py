"""A Frictionless Data Package (``datapackage.json``) for a survey or a ``logs`` output.

Data repositories and tools (Zenodo, CKAN, the ``frictionless`` validator, R's and Python's
``datapackage`` readers) read a directory through its descriptor: one resource per table, with
its fields, types and descriptions, the directory's provenance and its licence. The descriptor is
generated here from :mod:`research.store.schema` (columns, their docs and closed vocabularies)
and ``meta.json``, by hand, without the ``frictionless`` library, which only validates it (in the
tests). The resources are CSV exports of the Parquet tables, written beside them a row group at
a time: Table Schema has no Parquet list type, so list columns are JSON arrays in the CSV
(Table Schema's ``array``), timestamps ISO 8601 in UTC, nulls empty cells. The descriptor follows
Data Package v2 (https://datapackage.org/standard/data-package/).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from research.store.files import atomic_write, write_json
from research.store.frames import cast_table
from research.store.licenses import license_entry
from research.store.provenance import TOOL
from research.store.schema import (
    COLUMN_VALUES,
    META_KEYS,
    SESSION_TABLES,
    SESSIONS_META_KEYS,
    TABLE_DOCS,
    TABLES,
    Column,
)

DESCRIPTOR_NAME = "datapackage.json"
PACKAGE_SCHEMA = "https://datapackage.org/profiles/2.0/datapackage.json"
RESOURCE_SCHEMA = "https://datapackage.org/profiles/2.0/dataresource.json"
TABLE_SCHEMA = "https://datapackage.org/profiles/2.0/tableschema.json"
EXPORT_BATCH_ROWS = 500
"""Rows converted to CSV at a time: what the export holds in memory. As small as the tables'
row groups: a batch's cells are Python strings, and a 5,000-row batch of hosts or certificates
(their chains) raised a 10,000-domain survey's peak by some 30 MB that a 1,000-domain survey,
whose tables fit in one smaller batch, never reached."""

_FIELD_TYPES = {"string": "string", "boolean": "boolean", "Int64": "integer",
                "Float64": "number", "object": "array"}
"""pandas dtype of :mod:`research.store.schema` → Table Schema field type (datetimes apart)."""

# -- the CSV exports -------------------------------------------------------------------------------


def csv_name(table: str) -> str:
    return f"{table}.csv"


def _cells(frame: pd.DataFrame, columns: Sequence[Column]) -> Iterator[list[str]]:
    """Rows of ``frame`` (cast to the schema) as CSV cells in Table Schema's default formats."""
    formatted: list[Sequence[str]] = []
    for column in columns:
        values = frame[column.name]
        if column.dtype == "object":
            cells = [json.dumps(list(v), ensure_ascii=False) for v in values]
        elif column.dtype.startswith("datetime"):
            cells = values.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").fillna("").tolist()
        elif column.dtype == "boolean":
            cells = ["" if v is pd.NA else ("true" if v else "false") for v in values]
        elif column.dtype == "Float64":
            cells = ["" if v is pd.NA or math.isnan(v) else repr(float(v)) for v in values]
        else:
            cells = ["" if v is pd.NA else str(v) for v in values]
        formatted.append(cells)
    yield from (list(row) for row in zip(*formatted, strict=True))


def export_csv(table: str, parquet: Path, out: Path) -> Path:
    """Write table ``table`` stored in ``parquet`` as the CSV file ``out`` (atomically), a batch
    of rows at a time, so memory stays flat however large the table."""
    columns = _columns(table)

    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow([c.name for c in columns])
            for batch in pq.ParquetFile(parquet).iter_batches(batch_size=EXPORT_BATCH_ROWS):
                frame = cast_table(table, batch.to_pandas())
                writer.writerows(_cells(frame, columns))

    return atomic_write(out, write)


def _columns(table: str) -> tuple[Column, ...]:
    return TABLES[table] if table in TABLES else SESSION_TABLES[table]


# -- the descriptor --------------------------------------------------------------------------------


def field_descriptor(table: str, column: Column) -> dict[str, Any]:
    """The Table Schema field of one column: name, type, description, its vocabulary."""
    field: dict[str, Any] = {"name": column.name}
    if column.dtype.startswith("datetime"):
        field["type"] = "datetime"
    else:
        field["type"] = _FIELD_TYPES[column.dtype]
    field["description"] = column.doc
    values = COLUMN_VALUES.get((table, column.name))
    if values:
        field["constraints"] = {"enum": [str(v) for v in values]}
    return field


def resource_descriptor(table: str, csv_path: Path) -> dict[str, Any]:
    """The resource of one table exported to ``csv_path``, with its size and SHA-256 (so a copy
    can be checked against the descriptor)."""
    digest = hashlib.sha256()
    with csv_path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return {
        "$schema": RESOURCE_SCHEMA,
        "name": table,
        "type": "table",
        "path": csv_path.name,
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "bytes": csv_path.stat().st_size,
        "hash": f"sha256:{digest.hexdigest()}",
        "description": f"{TABLE_DOCS[table]} The same table as `{table}.parquet` beside it; "
                       "list columns are JSON arrays here.",
        "dialect": {"delimiter": ",", "quoteChar": '"', "header": True},
        "schema": {
            "$schema": TABLE_SCHEMA,
            "fields": [field_descriptor(table, c) for c in _columns(table)],
            "missingValues": [""],
        },
    }


def _package_name(out_dir: Path, prefix: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", out_dir.resolve().name.lower()).strip("-._")
    return f"{prefix}-{slug}" if slug else prefix


def _license(meta: Mapping[str, Any]) -> list[dict[str, str]]:
    text = (meta.get("options") or {}).get("license")
    return [license_entry(str(text))] if text else []


def write_package(out_dir: Path, tables: Iterable[str], descriptor: dict[str, Any]) -> Path:
    """Export each of ``tables`` (``<table>.parquet`` in ``out_dir``) to CSV and write
    ``datapackage.json``: ``descriptor`` (the package's own properties) with a resource per
    table. Returns the descriptor's path; raises OSError if ``out_dir`` cannot be written."""
    resources = []
    for table in tables:
        path = export_csv(table, out_dir / f"{table}.parquet", out_dir / csv_name(table))
        resources.append(resource_descriptor(table, path))
    return write_json(out_dir / DESCRIPTOR_NAME,
                      {"$schema": PACKAGE_SCHEMA, **descriptor, "resources": resources})


def _created(meta: Mapping[str, Any], *keys: str) -> dict[str, str]:
    for key in keys:
        value = meta.get(key)
        if value:
            stamp = pd.Timestamp(str(value))
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
            return {"created": stamp.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return {}


def write_survey_package(out_dir: Path, meta: Mapping[str, Any]) -> Path:
    """``datapackage.json`` and the CSV exports of a survey directory (every table of
    :data:`~research.store.schema.TABLES`), its ``meta.json`` as provenance."""
    counts = meta.get("counts") or {}
    domains = counts.get("domains")
    started = str(meta.get("started_at") or "")[:10]
    title = "STARTTLS survey" + (f" of {domains} domains" if domains is not None else "") + (
        f", {started}" if started else "")
    sha = meta.get("domain_list_sha256")
    source = {"title": f"domain list {meta.get('domain_list') or 'unknown'}"
                       + (f" (SHA-256 {sha})" if sha else "")}
    descriptor = {
        "name": _package_name(out_dir, "starttls-survey"),
        "title": title,
        "description": "Which MX hosts of the listed domains offer STARTTLS, which TLS versions "
                       "and cipher suites they accept, the certificates they present, and their "
                       "MTA-STS, TLS-RPT and DANE records, as measured by "
                       f"{TOOL}. The data describe other parties' mail servers.",
        **_created(meta, "finished_at", "started_at"),
        "keywords": ["email", "SMTP", "STARTTLS", "TLS", "MX", "MTA-STS", "DANE", "TLS-RPT"],
        "licenses": _license(meta),
        "sources": [source],
        "contributors": [{"title": _tool_title(meta), "role": "software"}],
        "provenance": _provenance(meta, META_KEYS),
    }
    if not descriptor["licenses"]:
        del descriptor["licenses"]
    return write_package(out_dir, TABLES, descriptor)


def write_sessions_package(out_dir: Path, meta: Mapping[str, Any]) -> Path:
    """``datapackage.json`` and the CSV export of a ``starttls-survey logs`` output directory."""
    files = [str(item.get("path")) for item in meta.get("inputs") or []]
    descriptor = {
        "name": _package_name(out_dir, "starttls-survey-sessions"),
        "title": "SMTP sessions and their TLS, from a mail server's logs and captures",
        "description": "One row per SMTP session a mail server logged or a capture recorded: "
                       "direction, peer, TLS version, cipher suite and certificate check, as "
                       f"read by {TOOL}.",
        **_created(meta, "created_at"),
        "keywords": ["email", "SMTP", "STARTTLS", "TLS", "mail server logs"],
        "licenses": _license(meta),
        "sources": [{"title": f"input file {f}"} for f in files],
        "contributors": [{"title": _tool_title(meta), "role": "software"}],
        "provenance": _provenance(meta, SESSIONS_META_KEYS),
    }
    if not descriptor["licenses"]:
        del descriptor["licenses"]
    return write_package(out_dir, SESSION_TABLES, descriptor)


def _tool_title(meta: Mapping[str, Any]) -> str:
    tool = meta.get("tool") or {}
    return " ".join(str(v) for v in (tool.get("name") or TOOL, tool.get("version")) if v)


def _provenance(meta: Mapping[str, Any], documented: Mapping[str, str]) -> dict[str, Any]:
    """``meta.json`` in the descriptor, documented keys first."""
    keys = [k for k in documented if k in meta] + sorted(k for k in meta if k not in documented)
    return {k: meta[k] for k in keys}
