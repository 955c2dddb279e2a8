"""Cipher-suite views: what MX hosts accept per protocol version, and which suites are weak.

Unit: the MX host. A host *accepts* a suite only if every scanned IP row of it does (the rule of
:mod:`research.analysis.core`), except for weaknesses, where one IP accepting a weak suite is
enough (:func:`weak_suites`), because that is the exposure.
"""

from __future__ import annotations

import pandas as pd

from research.analysis.core import flag, table, version_rank
from research.policy.ciphers import classify_cipher
from research.store.results import SurveyResults
from research.store.schema import TLS_VERSIONS, SuiteClass

SUITE_CLASSES: tuple[SuiteClass, ...] = tuple(SuiteClass)
"""Classes of :func:`suite_class`, strongest first (:class:`SuiteClass`)."""

_KEY = ["mx_host", "tls_version", "cipher"]
_ATTRS = ["key_exchange", "forward_secrecy", "aead", "anonymous", "key_bits"]


def suite_class(forward_secrecy: bool, aead: bool, weak: bool) -> SuiteClass:
    """``weak`` if weak, else the class by forward secrecy and AEAD."""
    if weak:
        return SuiteClass.WEAK
    if forward_secrecy:
        return SuiteClass.FS_AEAD if aead else SuiteClass.FS_NO_AEAD
    return SuiteClass.AEAD_NO_FS if aead else SuiteClass.NO_FS_NO_AEAD


def _weakness(ciphers: pd.DataFrame) -> pd.Series:
    """Weakness tags of each row, comma-joined; the table's ``anonymous`` flag counts as anon."""
    tags = []
    for name, anon in zip(ciphers["cipher"], flag(ciphers["anonymous"]), strict=True):
        found = list(classify_cipher(name)) if isinstance(name, str) else []
        if anon and "anon" not in found:
            found.insert(0, "anon")
        tags.append(", ".join(found))
    return pd.Series(tags, index=ciphers.index, dtype="string")


def host_ciphers(results: SurveyResults) -> pd.DataFrame:
    """Suites each MX host accepts on every one of its scanned IPs.

    Columns: ``mx_host``, ``tls_version``, ``cipher``, ``key_exchange``, ``forward_secrecy``,
    ``aead``, ``anonymous``, ``key_bits`` (as in ``ciphers``), ``weaknesses`` (comma-joined
    tags of :func:`~research.policy.ciphers.classify_cipher`, empty if none), ``weak``, ``class``
    (:func:`suite_class`). Sorted by host, newest version first, suite name.
    """
    ciphers = table(results, "ciphers").drop_duplicates(["mx_host", "ip", "tls_version", "cipher"])
    ip_rows = table(results, "hosts").groupby("mx_host").size()
    grouped = ciphers.groupby(_KEY, sort=False)
    out = grouped[_ATTRS].first()
    out["ips"] = grouped["ip"].nunique()
    out = out.reset_index()
    out = out[out["ips"].to_numpy() == out["mx_host"].map(ip_rows).fillna(0).to_numpy()]
    out = out.drop(columns="ips")
    return _finish(out)


def _finish(out: pd.DataFrame) -> pd.DataFrame:
    out = out.copy()
    out["weaknesses"] = _weakness(out)
    out["weak"] = out["weaknesses"].str.len().fillna(0).astype("int64") > 0
    out["class"] = pd.Series(
        [suite_class(fs, ae, wk) for fs, ae, wk in
         zip(flag(out["forward_secrecy"]), flag(out["aead"]), out["weak"], strict=True)],
        index=out.index, dtype="string")
    out["_rank"] = out["tls_version"].map(version_rank)
    out = out.sort_values(["mx_host", "_rank", "cipher"], ascending=[True, False, True])
    return out.drop(columns="_rank").reset_index(drop=True)


def cipher_summary(results: SurveyResults) -> pd.DataFrame:
    """Per (version, suite): how many MX hosts accept it.

    Columns: ``tls_version``, ``cipher``, ``hosts``, ``share`` (of the MX hosts accepting any
    suite at that version), ``key_exchange``, ``forward_secrecy``, ``aead``, ``weaknesses``,
    ``class``. Newest version first, then most common suite.
    """
    hc = host_ciphers(results)
    per_version = hc.groupby("tls_version")["mx_host"].nunique()
    g = hc.groupby(["tls_version", "cipher"], sort=False)
    out = g[["key_exchange", "forward_secrecy", "aead", "weaknesses", "class"]].first()
    out.insert(0, "hosts", g["mx_host"].nunique())
    out = out.reset_index()
    out.insert(3, "share", out["hosts"] / out["tls_version"].map(per_version).astype(float))
    out["_rank"] = out["tls_version"].map(version_rank)
    out = out.sort_values(["_rank", "hosts", "cipher"], ascending=[False, False, True])
    return out.drop(columns="_rank").reset_index(drop=True)


def cipher_version_summary(results: SurveyResults) -> pd.DataFrame:
    """Per protocol version (oldest first, all six listed): suites, forward secrecy and AEAD.

    Columns: ``tls_version``; ``hosts`` (MX hosts accepting at least one suite at it);
    ``suites`` (distinct suites); ``host_suites`` (accepted host × suite pairs);
    ``fs_share``, ``aead_share``, ``weak_share`` (shares of those pairs); ``hosts_fs_share``,
    ``hosts_aead_share``, ``hosts_weak_share`` (shares of ``hosts`` with at least one such suite).
    Shares are NaN where the denominator is 0.
    """
    hc = host_ciphers(results)
    rows = []
    for v in TLS_VERSIONS:
        at = hc[hc["tls_version"] == v.label]
        hosts = at["mx_host"].nunique()
        fs, aead = flag(at["forward_secrecy"]), flag(at["aead"])

        def host_share(mask: pd.Series, at: pd.DataFrame = at, hosts: int = hosts) -> float:
            return at.loc[mask, "mx_host"].nunique() / hosts if hosts else float("nan")

        def pair_share(mask: pd.Series, n: int = len(at)) -> float:
            return float(mask.sum()) / n if n else float("nan")

        rows.append({"tls_version": v.label, "hosts": hosts, "suites": at["cipher"].nunique(),
                     "host_suites": len(at), "fs_share": pair_share(fs),
                     "aead_share": pair_share(aead), "weak_share": pair_share(at["weak"]),
                     "hosts_fs_share": host_share(fs), "hosts_aead_share": host_share(aead),
                     "hosts_weak_share": host_share(at["weak"])})
    return pd.DataFrame(rows)


def suite_class_counts(results: SurveyResults) -> pd.DataFrame:
    """Accepted host × suite pairs per version and :data:`SUITE_CLASSES` class.

    A wide table: index the six version labels (oldest first), one ``int`` column per class.
    """
    hc = host_ciphers(results)
    counts = pd.crosstab(hc["tls_version"], hc["class"]) if len(hc) else pd.DataFrame()
    labels = [v.label for v in TLS_VERSIONS]
    out = counts.reindex(index=labels, columns=list(SUITE_CLASSES)).fillna(0).astype("int64")
    out.index.name = "tls_version"
    out.columns.name = None
    return out


def weak_suites(results: SurveyResults) -> pd.DataFrame:
    """Weak suites accepted by an MX host on at least one of its IPs.

    Columns: ``mx_host``, ``tls_version``, ``cipher``, ``weaknesses`` (tags, comma-joined),
    ``ips`` (how many of the host's IPs accept it). Sorted by host, newest version first.
    """
    ciphers = table(results, "ciphers").drop_duplicates(["mx_host", "ip", "tls_version", "cipher"])
    g = ciphers.groupby(_KEY, sort=False)
    out = g[_ATTRS].first()
    out["ips"] = g["ip"].nunique()
    out = _finish(out.reset_index())
    return out.loc[out["weak"], [*_KEY, "weaknesses", "ips"]].reset_index(drop=True)


def weak_hosts(results: SurveyResults) -> pd.DataFrame:
    """Per MX host with any weak suite: ``weak_suites`` (count of version × suite pairs),
    ``weaknesses`` (the distinct tags) and ``suites`` (the suite names, comma-joined)."""
    weak = weak_suites(results)
    rows = []
    for host, rows_of in weak.groupby("mx_host", sort=True):
        tags = dict.fromkeys(t for w in rows_of["weaknesses"] for t in str(w).split(", "))
        rows.append({"mx_host": host, "weak_suites": len(rows_of),
                     "weaknesses": ", ".join(tags),
                     "suites": ", ".join(dict.fromkeys(rows_of["cipher"].astype(str)))})
    return pd.DataFrame(rows, columns=["mx_host", "weak_suites", "weaknesses", "suites"])
