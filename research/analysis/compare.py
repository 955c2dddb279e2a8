"""What changed between two surveys (e.g. 2019-style list, rescanned a year later)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from research.analysis.core import domain_frame, host_frame, scan_date
from research.analysis.headline import headline
from research.store.results import SurveyResults
from research.store.schema import TLS_VERSIONS, VERSION_COLUMNS, Change


@dataclass
class Comparison:
    """The result of :func:`compare`; each table lists only what changed."""

    domains: pd.DataFrame
    """Changed domains: ``domain``, ``change`` (:class:`~research.store.schema.Change`),
    ``changed`` (the fields that differ), each field as ``<field>_before``/``<field>_after``,
    ``versions_gained`` and ``versions_lost`` (versions offered by any MX host)."""
    hosts: pd.DataFrame
    """Changed MX hosts, same layout (versions: accepted on every IP)."""
    summary: pd.DataFrame
    """The :func:`~research.analysis.headline.headline` of both, side by side: ``metric``,
    ``unit``, ``count_before``, ``total_before``, ``share_before``, the same ``_after``, and
    ``share_change`` (after minus before)."""
    before_date: str | None
    after_date: str | None


_DOMAIN_FIELDS = ("dns_status", "category", "mx_hosts", "starttls_any", "starttls_all",
                  "min_version_any", "max_version_any", "max_version_all")
_HOST_FIELDS = ("status", "reached", "starttls", "min_version", "max_version",
                "cert_matches_mx", "cert_trusted_mozilla")


def compare(before: SurveyResults, after: SurveyResults) -> Comparison:
    """Per domain and per unique MX host, what changed from ``before`` to ``after``.

    Rows present in only one survey are ``added``/``removed``; a row is ``changed`` when any of
    its fields or its set of supported versions differs (nulls compare equal to nulls).
    Unchanged rows are left out. See :class:`Comparison` for the columns.
    """
    d_before, d_after = domain_frame(before), domain_frame(after)
    h_before, h_after = host_frame(before), host_frame(after)
    return Comparison(
        domains=_diff(d_before, d_after, "domain", _DOMAIN_FIELDS, "_any"),
        hosts=_diff(h_before, h_after, "mx_host", _HOST_FIELDS, ""),
        summary=_summary(headline(before), headline(after)),
        before_date=scan_date(before.meta),
        after_date=scan_date(after.meta),
    )


def _versions(frame: pd.DataFrame, suffix: str) -> pd.Series:
    """The set of supported version labels of each row, as a tuple (oldest first)."""
    cols = [f"{c}{suffix}" for c in VERSION_COLUMNS]
    flags = frame[cols].astype("boolean").fillna(False).astype(bool).to_numpy()
    labels = [v.label for v in TLS_VERSIONS]
    return pd.Series([tuple(lbl for lbl, f in zip(labels, row, strict=True) if f)
                      for row in flags], index=frame.index, dtype="object")


def _diff(before: pd.DataFrame, after: pd.DataFrame, key: str, fields: Sequence[str],
          suffix: str) -> pd.DataFrame:
    b = before[[key, *fields]].assign(versions=_versions(before, suffix))
    a = after[[key, *fields]].assign(versions=_versions(after, suffix))
    m = b.merge(a, on=key, how="outer", suffixes=("_before", "_after"), indicator=True)
    rows = []
    for rec in m.to_dict("records"):
        where = rec.pop("_merge")
        changed = [f for f in (*fields, "versions")
                   if not _same(rec[f"{f}_before"], rec[f"{f}_after"])]
        if where == "both" and not changed:
            continue
        change = {"left_only": Change.REMOVED, "right_only": Change.ADDED}.get(str(where),
                                                                             Change.CHANGED)
        gained, lost = _version_delta(rec["versions_before"], rec["versions_after"])
        row = {key: rec[key], "change": change, "changed": ", ".join(changed)}
        for f in fields:
            row[f"{f}_before"], row[f"{f}_after"] = rec[f"{f}_before"], rec[f"{f}_after"]
        rows.append({**row, "versions_gained": gained, "versions_lost": lost})
    columns = [key, "change", "changed",
               *(f"{f}_{s}" for f in fields for s in ("before", "after")),
               "versions_gained", "versions_lost"]
    return pd.DataFrame(rows, columns=columns)


def _missing(x: object) -> bool:
    return x is None or x is pd.NA or x is pd.NaT or (isinstance(x, float) and math.isnan(x))


def _same(x: object, y: object) -> bool:
    if _missing(x) or _missing(y):
        return _missing(x) and _missing(y)
    return bool(x == y)


def _version_delta(before: object, after: object) -> tuple[str, str]:
    b = set(before) if isinstance(before, tuple) else set()
    a = set(after) if isinstance(after, tuple) else set()
    order = [v.label for v in TLS_VERSIONS]
    return (", ".join(v for v in order if v in a - b), ", ".join(v for v in order if v in b - a))


def _summary(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    m = before.merge(after, on=["metric", "unit"], how="outer", suffixes=("_before", "_after"),
                     sort=False)
    m["share_change"] = m["share_after"] - m["share_before"]
    return m[["metric", "unit", "count_before", "total_before", "share_before", "count_after",
              "total_after", "share_after", "share_change"]]
