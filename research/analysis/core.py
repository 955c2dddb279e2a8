"""Units of analysis and how a property is lifted from one IP to an MX host and to a domain.

Three units appear in every output, always named:

* **(MX host, IP)** — one ``hosts`` row, what the scanner measured.
* **MX host** — a unique MX host name, however many domains use it and however many IPs it has.
  A host *has* a property (offers STARTTLS, accepts TLS 1.2, has a matching certificate, ...)
  only if **every** scanned IP row of it has it. An IP that could not be reached (timeout,
  refused, unresolved, SMTP error) has no property, so one unreachable IP makes the whole host
  fail the property: the conservative reading, because a sender may well land on that IP.
  Exceptions, named as such: ``reached`` (at least one IP answered SMTP) and ``weak_cipher``
  (at least one IP accepts a weak suite), since for those the cautious direction is "any".
  ``max_version`` is the newest version every IP reaches (the minimum over IPs of each IP's
  newest version); ``min_version`` is the oldest version any IP accepts (the exposure).
* **domain** — a domain of the input list. Its MX set is lifted three ways, each a column
  suffix: ``_all`` (every MX host has it), ``_any`` (at least one MX host has it) and
  ``_preferred`` (every host at the lowest preference value has it; those are tried first).
  ``max_version_all`` is the newest version every MX host reaches, i.e. the strictest minimum
  version a sender can require without losing any MX host; ``max_version_any`` the newest any
  MX host offers; ``min_version_any`` the oldest any MX host accepts.

Domains whose ``dns_status`` is not ``mx``/``implicit_mx`` have no MX hosts: their verdict
columns are null and their ``category`` says why (null MX, NXDOMAIN, DNS error, ...), so they stay
visible instead of being dropped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from research.errors import SurveyError
from research.policy.ciphers import is_weak_cipher
from research.policy.names import provider_of
from research.store import schema
from research.store.results import SurveyResults
from research.store.schema import (
    DNS_CATEGORIES,
    MAIL_DNS_STATUSES,
    NOT_REACHED,
    TLS_VERSIONS,
    VERSION_BY_LABEL,
    VERSION_COLUMNS,
    DomainCategory,
    HostStatus,
    LiftedStatus,
    View,
)


class AnalysisError(SurveyError, ValueError):
    """An analysis function was called with an argument it cannot use (unknown version, view)."""


TLS12_RANK = VERSION_BY_LABEL["TLS 1.2"].rank
CATEGORIES: tuple[DomainCategory, ...] = tuple(DomainCategory)
"""Every value of ``domain_verdicts()["category"]``, best first (:class:`DomainCategory`)."""

FEATURES: tuple[str, ...] = (
    "reached",
    "starttls_advertised",
    "starttls",
    *VERSION_COLUMNS,
    "cert_matches_mx",
    "cert_trusted_mozilla",
    "forward_secrecy",
    "weak_cipher",
)
"""Boolean host properties, lifted to domains as ``<feature>_all/_any/_preferred``."""
FEATURE_LABELS: dict[str, str] = {
    "reached": "reached (SMTP answered)",
    "starttls_advertised": "STARTTLS advertised",
    "starttls": "STARTTLS (TLS handshake succeeds)",
    **{v.column: f"accepts {v.label}" for v in TLS_VERSIONS},
    "cert_matches_mx": "certificate matches MX name",
    "cert_trusted_mozilla": "certificate trusted (Mozilla roots)",
    "forward_secrecy": "forward-secret suite offered",
    "weak_cipher": "accepts a weak suite",
}
VIEWS: tuple[View, ...] = tuple(View)
"""The views of a domain's MX set, in column order (:class:`View`)."""

_ALL_IP_FEATURES = tuple(f for f in FEATURES if f not in ("reached", "weak_cipher"))
_NO_RANK = -1
_RANKS = np.array([v.rank for v in TLS_VERSIONS])


def table(results: SurveyResults, name: str) -> pd.DataFrame:
    """Return ``results.<name>`` with every schema column present (missing ones added as null).

    Lets the analysis run on partial or empty tables (e.g. ``pd.DataFrame()``) without
    special cases; existing columns are returned as they are.
    """
    df: pd.DataFrame = getattr(results, name)
    dtypes = schema.dtypes(name)
    missing = [c for c in dtypes if c not in df.columns]
    if not missing:
        return df
    df = df.copy()
    for col in missing:
        df[col] = pd.Series(pd.NA, index=df.index, dtype=dtypes[col])
    return df


def flag(series: pd.Series) -> pd.Series:
    """A nullable boolean column as plain ``bool``; null (not measured) reads as False."""
    return series.astype("boolean").fillna(False).astype(bool)


def version_rank(label: object) -> int:
    """Rank of a version label (``"TLS 1.2"`` → 4); -1 for null or an unknown label."""
    if isinstance(label, str) and label in VERSION_BY_LABEL:
        return VERSION_BY_LABEL[label].rank
    return _NO_RANK


def check_version(label: str) -> int:
    """Rank of a version label; raises :class:`AnalysisError` for anything else."""
    if label not in VERSION_BY_LABEL:
        raise AnalysisError(f"unknown protocol version {label!r}; expected one of "
                            + ", ".join(VERSION_BY_LABEL))
    return VERSION_BY_LABEL[label].rank


def check_view(view: str) -> str:
    """``view`` if it is one of :data:`VIEWS`; raises :class:`AnalysisError` otherwise."""
    if view not in VIEWS:
        raise AnalysisError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
    return view


def version_label(rank: object) -> str | None:
    """Label of a version rank (4 → ``"TLS 1.2"``); None for -1 or null."""
    if not isinstance(rank, int | np.integer):
        return None
    r = int(rank)
    return TLS_VERSIONS[r].label if 0 <= r < len(TLS_VERSIONS) else None


def _labels(ranks: pd.Series) -> pd.Series:
    return pd.Series([version_label(r) for r in ranks], index=ranks.index, dtype="string")


def mail_domains(results: SurveyResults) -> pd.DataFrame:
    """The ``domains`` rows whose DNS gave MX hosts to scan (``mx`` or ``implicit_mx``)."""
    domains = table(results, "domains")
    return domains[domains["dns_status"].isin(MAIL_DNS_STATUSES).fillna(False).astype(bool)]


def mx_rows(results: SurveyResults) -> pd.DataFrame:
    """``mx`` rows of mail domains, with a real host name, sorted by (domain, preference, host)."""
    mx = table(results, "mx")
    keep = mx["domain"].isin(mail_domains(results)["domain"]).fillna(False).astype(bool)
    keep &= mx["mx_host"].fillna("").str.len() > 0
    out = mx.loc[keep, ["domain", "preference", "mx_host"]].copy()
    # A missing preference sorts last rather than crashing the comparison.
    out["preference"] = out["preference"].fillna(1 << 16).astype("int64")
    return out.sort_values(["domain", "preference", "mx_host"]).reset_index(drop=True)


def ip_frame(results: SurveyResults) -> pd.DataFrame:
    """One row per ``hosts`` row with plain-bool features and version ranks added.

    Added columns: ``reached``, ``starttls``, every name in :data:`FEATURES` as ``bool``,
    ``cert_checked`` (``cert_matches_mx`` was measured),
    ``max_rank``/``min_rank`` (newest/oldest accepted version, -1 for none) and ``fs_max_rank``
    (newest version with a forward-secret suite, -1 for none).
    """
    hosts = table(results, "hosts").reset_index(drop=True)
    out = hosts.copy()
    status = hosts["status"].astype("string")
    out["reached"] = ~status.isin(NOT_REACHED).fillna(False).astype(bool) & status.notna()
    out["starttls"] = (status == HostStatus.STARTTLS).fillna(False).astype(bool)
    out["starttls_advertised"] = flag(hosts["starttls_offered"])
    out["cert_checked"] = hosts["cert_matches_mx"].notna()
    for col in (*VERSION_COLUMNS, "cert_matches_mx", "cert_trusted_mozilla"):
        out[col] = flag(hosts[col])
    out["max_rank"], out["min_rank"] = _ip_version_ranks(out, hosts)
    suites = _ip_suites(results)
    out = out.merge(suites, on=["mx_host", "ip"], how="left")
    out["fs_max_rank"] = out["fs_max_rank"].fillna(_NO_RANK).astype("int64")
    out["forward_secrecy"] = out["fs_max_rank"] > _NO_RANK
    out["weak_cipher"] = out["weak_cipher"].astype("boolean").fillna(False).astype(bool)
    return out


def _ip_version_ranks(flags: pd.DataFrame, hosts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    # The booleans are the measurement; min/max_version columns only fill in when no boolean is.
    mat = flags[list(VERSION_COLUMNS)].to_numpy(dtype=bool)
    beyond = len(_RANKS)  # larger than any rank, so min() ignores versions not accepted
    max_rank = np.where(mat, _RANKS, _NO_RANK).max(axis=1, initial=_NO_RANK)
    min_rank = np.where(mat, _RANKS, beyond).min(axis=1, initial=beyond)
    min_rank = np.where(min_rank == beyond, _NO_RANK, min_rank)
    measured = hosts[list(VERSION_COLUMNS)].notna().to_numpy().any(axis=1)
    fallback_max = np.array([version_rank(v) for v in hosts["max_version"]], dtype=int)
    fallback_min = np.array([version_rank(v) for v in hosts["min_version"]], dtype=int)
    max_rank = np.where(measured, max_rank, fallback_max)
    min_rank = np.where(measured, min_rank, fallback_min)
    return max_rank.astype("int64"), min_rank.astype("int64")


def _ip_suites(results: SurveyResults) -> pd.DataFrame:
    ciphers = table(results, "ciphers")
    cols = ["mx_host", "ip", "fs_max_rank", "weak_cipher"]
    if ciphers.empty:
        return pd.DataFrame({c: pd.Series(dtype="string" if c in ("mx_host", "ip") else "int64")
                             for c in cols})
    c = ciphers[["mx_host", "ip"]].copy()
    rank = ciphers["tls_version"].map(version_rank).astype("int64")
    c["fs_rank"] = np.where(flag(ciphers["forward_secrecy"]), rank, _NO_RANK)
    c["weak"] = [
        bool(anon) or (isinstance(name, str) and is_weak_cipher(name))
        for name, anon in zip(ciphers["cipher"], flag(ciphers["anonymous"]), strict=True)
    ]
    g = c.groupby(["mx_host", "ip"], sort=False)
    out = pd.DataFrame({"fs_max_rank": g["fs_rank"].max(), "weak_cipher": g["weak"].any()})
    return out.reset_index()


def host_frame(results: SurveyResults) -> pd.DataFrame:
    """Per unique MX host (hosts seen in ``hosts`` or named in ``mx``), ranks included.

    Columns: ``mx_host``, ``status`` (the IPs' common status, ``mixed`` or ``not_scanned``),
    ``statuses``, ``ip_rows``, ``ip_rows_reached``, every feature of :data:`FEATURES` (``bool``,
    lifted as the module doc says), ``max_rank``/``min_rank`` and their labels
    ``max_version``/``min_version``, ``fs_max_rank``, ``domains`` (mail domains naming it as an
    MX) and ``provider``. Sorted by host name.
    """
    ip = ip_frame(results)
    mx = mx_rows(results)
    names = sorted(set(ip["mx_host"].dropna()) | set(mx["mx_host"]))
    out = pd.DataFrame(index=pd.Index(names, name="mx_host", dtype="string"))
    g = ip.groupby("mx_host", sort=True)
    out["status"] = g["status"].agg(_common_status)
    out["statuses"] = g["status"].agg(lambda s: ", ".join(sorted(set(s.dropna()))))
    out["ip_rows"] = g.size()
    out["ip_rows_reached"] = g["reached"].sum()
    out["reached"] = g["reached"].any()
    for f in _ALL_IP_FEATURES:
        out[f] = g[f].all()
    out["weak_cipher"] = g["weak_cipher"].any()
    out["max_rank"] = g["max_rank"].min()  # -1 on any IP propagates: "every IP reaches"
    out["min_rank"] = g["min_rank"].agg(_lowest_rank)
    out["fs_max_rank"] = g["fs_max_rank"].min()
    unscanned = out["ip_rows"].isna()
    out.loc[unscanned, "status"] = LiftedStatus.NOT_SCANNED
    out = out.fillna({"statuses": "", "ip_rows": 0, "ip_rows_reached": 0,
                      "max_rank": _NO_RANK, "min_rank": _NO_RANK, "fs_max_rank": _NO_RANK})
    for f in FEATURES:
        out[f] = out[f].astype("boolean").fillna(False).astype(bool)
    for col in ("ip_rows", "ip_rows_reached", "max_rank", "min_rank", "fs_max_rank"):
        out[col] = out[col].astype("int64")
    out["status"] = out["status"].astype("string")
    out["statuses"] = out["statuses"].astype("string")
    out["max_version"] = _labels(out["max_rank"])
    out["min_version"] = _labels(out["min_rank"])
    out["domains"] = mx.groupby("mx_host")["domain"].nunique().reindex(out.index).fillna(0)
    out["domains"] = out["domains"].astype("int64")
    out["provider"] = pd.Series([provider_of(h) for h in out.index], index=out.index,
                                dtype="string")
    return out.reset_index()


def _common_status(statuses: pd.Series) -> str:
    values = set(statuses.dropna())
    return values.pop() if len(values) == 1 else LiftedStatus.MIXED


def _lowest_rank(ranks: pd.Series) -> int:
    known = ranks[ranks > _NO_RANK]
    return int(known.min()) if len(known) else _NO_RANK


def host_summary(results: SurveyResults) -> pd.DataFrame:
    """Per unique MX host: status, IP counts, lifted features, min/max version, provider.

    The unit is the MX host name (see the module doc for how IPs are combined). Returns the
    columns of :func:`host_frame` without the internal rank columns.
    """
    return host_frame(results).drop(columns=["max_rank", "min_rank", "fs_max_rank"])


def domain_frame(results: SurveyResults) -> pd.DataFrame:
    """Per input domain, with internal rank columns; see :func:`domain_verdicts`."""
    domains = table(results, "domains")
    base = domains[["domain", "rank", "dns_status"]].copy().reset_index(drop=True)
    hosts = host_frame(results)
    m = mx_rows(results).merge(hosts, on="mx_host", how="left")
    verdicts = _lift_to_domains(m)
    out = base.merge(verdicts, on="domain", how="left")
    is_mail = out["dns_status"].isin(MAIL_DNS_STATUSES).fillna(False).astype(bool)
    for f in FEATURES:
        for view in VIEWS:
            col = f"{f}_{view}"
            # A mail domain with no MX row has nothing that works; other domains stay null.
            out[col] = out[col].astype("boolean").mask(is_mail & out[col].isna(), False)
    for col in _RANK_COLUMNS:
        out[col] = out[col].astype("Int64").mask(is_mail & out[col].isna(), _NO_RANK)
        out[col.replace("_rank", "_version")] = _labels(out[col])
    out["mx_count"] = out["mx_count"].fillna(0).astype("int64")
    for col in ("mx_hosts", "preferred_mx", "preferred_status"):
        out[col] = out[col].astype("string")
    out["category"] = _categories(out)
    ordered = ["domain", "rank", "dns_status", "category", "mx_count", "mx_hosts", "preferred_mx",
               "preferred_status"]
    rest = [c for c in out.columns if c not in ordered]
    out = out[ordered + rest]
    return out.sort_values(["rank", "domain"], na_position="last").reset_index(drop=True)


_RANK_COLUMNS = ("max_rank_all", "max_rank_any", "max_rank_preferred", "min_rank_any",
                 "min_rank_preferred")


def _lift_to_domains(m: pd.DataFrame) -> pd.DataFrame:
    """Combine the MX rows (already joined to hosts) of each domain into one verdict row."""
    cols = ["domain", "mx_count", "mx_hosts", "preferred_mx", "preferred_status",
            *(f"{f}_{v}" for f in FEATURES for v in VIEWS), *_RANK_COLUMNS]
    if m.empty:
        return pd.DataFrame({c: pd.Series(dtype="string" if c == "domain" else "object")
                             for c in cols})
    m = m.copy()
    m["preferred"] = m["preference"] == m.groupby("domain")["preference"].transform("min")
    g = m.groupby("domain", sort=False)
    pref = m[m["preferred"]].groupby("domain", sort=False)
    out = pd.DataFrame(index=pd.Index(m["domain"].unique(), name="domain"))
    out["mx_count"] = g["mx_host"].nunique()
    m["entry"] = m["preference"].astype(str) + " " + m["mx_host"].astype(str)
    out["mx_hosts"] = m.groupby("domain", sort=False)["entry"].agg(", ".join)
    out["preferred_mx"] = pref["mx_host"].agg(lambda s: ", ".join(s))
    out["preferred_status"] = pref["status"].agg(lambda s: ", ".join(dict.fromkeys(s.dropna())))
    for f in FEATURES:
        out[f"{f}_all"] = g[f].all()
        out[f"{f}_any"] = g[f].any()
        out[f"{f}_preferred"] = pref[f].all()
    out["max_rank_all"] = g["max_rank"].min()
    out["max_rank_any"] = g["max_rank"].max()
    out["max_rank_preferred"] = pref["max_rank"].min()
    out["min_rank_any"] = g["min_rank"].agg(_lowest_rank)
    out["min_rank_preferred"] = pref["min_rank"].agg(_lowest_rank)
    return out.reset_index()


def dns_category(dns_status: object) -> DomainCategory:
    """The category of a domain whose DNS gave no MX hosts, from its ``dns_status``
    (:data:`~research.store.schema.DNS_CATEGORIES`; ``unknown DNS status`` for anything else)."""
    if isinstance(dns_status, str):
        return DNS_CATEGORIES.get(dns_status, DomainCategory.UNKNOWN_DNS)
    return DomainCategory.UNKNOWN_DNS


def _categories(d: pd.DataFrame) -> pd.Series:
    status = d["dns_status"].astype("string")
    dns: pd.Series = status.map(dns_category)
    is_mail = status.isin(MAIL_DNS_STATUSES).fillna(False).astype(bool)
    reached, starttls = flag(d["reached_any"]), flag(d["starttls_any"])
    best = d["max_rank_any"].astype("Int64").fillna(_NO_RANK)
    worst = d["max_rank_all"].astype("Int64").fillna(_NO_RANK)
    cats = pd.Series(DomainCategory.TLS12_SOME, index=d.index, dtype="string")
    # Later assignments override earlier ones, so the most basic failure is applied last.
    cats[(worst >= TLS12_RANK).to_numpy(dtype=bool)] = DomainCategory.TLS12_ALL
    cats[(best < TLS12_RANK).to_numpy(dtype=bool)] = DomainCategory.NO_TLS12
    cats[~starttls] = DomainCategory.NO_STARTTLS
    cats[~reached] = DomainCategory.UNREACHABLE
    cats[~is_mail] = dns[~is_mail]
    return cats


def domain_verdicts(results: SurveyResults) -> pd.DataFrame:
    """One row per input domain: what its MX set supports, every view named in the column.

    Columns: ``domain``, ``rank``, ``dns_status``, ``category`` (one of :data:`CATEGORIES`),
    ``mx_count``, ``mx_hosts`` (``"PREF host"`` in preference order), ``preferred_mx`` (the
    host(s) at the lowest preference), ``preferred_status``; for every feature ``f`` in
    :data:`FEATURES` the nullable booleans ``f_all``, ``f_any``, ``f_preferred``; and
    ``max_version_all``, ``max_version_any``, ``max_version_preferred``, ``min_version_any``,
    ``min_version_preferred`` (labels, null when no TLS). Verdicts are null for domains without
    MX hosts (see ``category``). Sorted by rank, then name.
    """
    return domain_frame(results).drop(columns=list(_RANK_COLUMNS))


def provider_table(results: SurveyResults, top: int | None = None) -> pd.DataFrame:
    """Per provider (:func:`provider_of` of the MX host names): what its MX hosts accept.

    Index ``provider``; columns ``domains`` (mail domains with an MX host of the provider),
    ``hosts`` (its unique MX hosts), and the share of those hosts with ``starttls`` and with each
    version column (``ssl_2_0`` … ``tls_1_3``). Most domains first (then most hosts, then name);
    ``top`` keeps only the first rows.
    """
    hosts = host_frame(results)
    mx = mx_rows(results)
    served = mx.assign(provider=mx["mx_host"].map(provider_of)).groupby("provider")["domain"]
    g = hosts.groupby("provider")
    out = pd.DataFrame({"domains": served.nunique(), "hosts": g.size()})
    for col in ("starttls", *VERSION_COLUMNS):
        out[col] = g[col].mean()
    out = out.fillna({"domains": 0, "hosts": 0}).astype({"domains": "int64", "hosts": "int64"})
    out.index.name = "provider"
    out = out.reset_index().sort_values(["domains", "hosts", "provider"],
                                        ascending=[False, False, True])
    out = out.set_index("provider")
    return out if top is None else out.head(top)


def scan_date(meta: dict[str, Any]) -> str | None:
    """The scan's start as ``YYYY-MM-DD`` (UTC) from ``meta["started_at"]``; the raw value if it
    is not ISO 8601; None when absent."""
    started = meta.get("started_at")
    if not started:
        return None
    try:
        return datetime.fromisoformat(str(started).replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        return str(started)
