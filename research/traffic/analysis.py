"""Your own mail server's traffic: what its real peers negotiate, and what a policy would break.

Pure functions of a ``sessions`` table (:mod:`research.traffic.reader`).
The unit is named in every output: a *session* (one row), or a *peer*: for outbound sessions the
recipient's mail domain where the log names it (that is what a sender's policy loses), else the
peer's provider (registrable domain of its host name), else its address; for inbound sessions the
provider, else the host name, else the address (:func:`with_peer`).

The policy questions reuse :mod:`research.analysis.policy`: the observed sessions are turned into a
survey-shaped :class:`~research.store.results.SurveyResults` (:func:`observed_results`) in which
each peer is a "domain" whose "MX hosts" are the hosts and addresses it was seen at, a host
"accepts" exactly the versions sessions negotiated with it, and "offers STARTTLS" if any session
used TLS. :func:`traffic_policy_sweep` then runs :func:`~research.analysis.policy.policy_sweep` on
that. Negotiated versions are a lower bound on what a peer supports (the newest version both sides
share), so "would fail" means: never negotiated anything at or above the minimum with this server.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from research.analysis.core import AnalysisError, check_version, version_label, version_rank
from research.analysis.policy import Policy, policy_impact, policy_sweep
from research.policy.ciphers import traits
from research.store.results import SurveyResults, make_table
from research.store.schema import (
    TLS_VERSIONS,
    Direction,
    DnsStatus,
    HostStatus,
    SessionSource,
    Unit,
    Verification,
)
from research.traffic.sessions import cast_sessions

CLEAR_TEXT = "no TLS"
"""The ``tls_version`` label of sessions without TLS in the distributions."""
_DIRECTIONS = tuple(Direction)


def _check_direction(direction: str | None) -> None:
    if direction is not None and direction not in _DIRECTIONS:
        raise AnalysisError(f"direction must be None or one of {', '.join(_DIRECTIONS)}, "
                            f"not {direction!r}")


def with_peer(sessions: pd.DataFrame) -> pd.DataFrame:
    """``sessions`` (cast to the schema) with ``peer`` (see the module doc) and ``version``
    (``tls_version``, or :data:`CLEAR_TEXT`) added."""
    s = cast_sessions(sessions)
    outbound = s["direction"] == Direction.OUTBOUND
    first_choice = s["mail_domain"].where(outbound.fillna(False).astype(bool))
    s["peer"] = (first_choice.fillna(s["peer_domain"]).fillna(s["peer_host"])
                 .fillna(s["peer_ip"]).fillna("unknown").astype("string"))
    s["version"] = s["tls_version"].where(s["tls"].fillna(False).astype(bool), CLEAR_TEXT)
    s["version"] = s["version"].fillna(CLEAR_TEXT).astype("string")
    return s


def _select(sessions: pd.DataFrame, direction: str | None) -> pd.DataFrame:
    _check_direction(direction)
    s = with_peer(sessions)
    if direction is not None:
        s = s[s["direction"] == direction]
    return s.reset_index(drop=True)


def _version_order(labels: Iterable[str]) -> list[str]:
    return sorted(set(labels), key=lambda v: (v != CLEAR_TEXT, version_rank(v), v))


def version_distribution(sessions: pd.DataFrame, by: Sequence[str] = ("direction",)
                         ) -> pd.DataFrame:
    """Sessions per negotiated version within each group of ``by`` (columns of ``sessions``
    or ``peer``). Columns: ``by``…, ``version`` (labels oldest first, :data:`CLEAR_TEXT` for
    sessions without TLS), ``sessions``, ``share`` (of the group's sessions), ``unit``
    (``session``)."""
    s = with_peer(sessions)
    keys = [*by, "version"]
    if s.empty:
        return pd.DataFrame(columns=[*keys, "sessions", "share", "unit"])
    counts = s.groupby(keys, dropna=False, observed=True).size().rename("sessions").reset_index()
    totals = counts.groupby(list(by), dropna=False)["sessions"].transform("sum") if by else (
        counts["sessions"].sum())
    counts["share"] = counts["sessions"] / totals
    order = {v: i for i, v in enumerate(_version_order(counts["version"]))}
    counts["_order"] = counts["version"].map(order)
    counts = counts.sort_values([*by, "_order"]).drop(columns="_order")
    counts["unit"] = Unit.SESSION
    return counts.reset_index(drop=True)


def cipher_distribution(sessions: pd.DataFrame, by: Sequence[str] = ("direction",)
                        ) -> pd.DataFrame:
    """Sessions per (version, cipher suite) within each group of ``by``, TLS sessions only.

    Columns: ``by``…, ``version``, ``cipher``, ``forward_secrecy`` and ``aead`` (from the IANA
    name; null for a name that is not one), ``sessions``, ``share`` (of the group's TLS
    sessions), ``unit``. Most used first within each group."""
    s = with_peer(sessions)
    s = s[s["tls"].fillna(False).astype(bool)]
    keys = [*by, "version", "cipher"]
    cols = [*keys, "forward_secrecy", "aead", "sessions", "share", "unit"]
    if s.empty:
        return pd.DataFrame(columns=cols)
    counts = s.groupby(keys, dropna=False, observed=True).size().rename("sessions").reset_index()
    totals = counts.groupby(list(by), dropna=False)["sessions"].transform("sum") if by else (
        counts["sessions"].sum())
    counts["share"] = counts["sessions"] / totals
    facts = [traits(c) if isinstance(c, str) and c.startswith("TLS_") else None
             for c in counts["cipher"]]
    counts["forward_secrecy"] = pd.array([f.forward_secrecy if f else None for f in facts],
                                         dtype="boolean")
    counts["aead"] = pd.array([f.aead if f else None for f in facts], dtype="boolean")
    counts["unit"] = Unit.SESSION
    counts = counts.sort_values([*by, "sessions", "cipher"],
                                ascending=[True] * len(by) + [False, True])
    return counts[cols].reset_index(drop=True)


def peer_table(sessions: pd.DataFrame, direction: str | None = None) -> pd.DataFrame:
    """One row per (direction, peer): ``sessions``, ``tls_sessions``, ``clear_text``
    (sessions without TLS), ``versions`` (negotiated, oldest first, joined by ", "),
    ``newest``/``oldest`` version negotiated (null without TLS), ``verified`` (sessions whose
    certificate check was ``verified``), ``hosts`` (distinct host names or addresses),
    ``first_seen``, ``last_seen``. Unit: peer. Peers with the oldest newest version first
    (the ones a policy would lose), then by sessions.

    Raises AnalysisError for an unknown ``direction``.
    """
    s = _select(sessions, direction)
    cols = ["direction", "peer", "sessions", "tls_sessions", "clear_text", "versions", "newest",
            "oldest", "verified", "hosts", "first_seen", "last_seen"]
    if s.empty:
        return pd.DataFrame(columns=cols)
    s["rank"] = s["tls_version"].map(version_rank).where(s["tls"].fillna(False).astype(bool), -1)
    s["host"] = s["peer_host"].fillna(s["peer_ip"])
    s["is_verified"] = (s["verification"] == Verification.VERIFIED).fillna(False)
    g = s.groupby(["direction", "peer"], dropna=False, sort=False)
    out = pd.DataFrame({
        "sessions": g.size(),
        "tls_sessions": g["tls"].sum(),
        "versions": g["tls_version"].agg(lambda v: ", ".join(_version_order(v.dropna()))),
        "newest_rank": g["rank"].max(),
        "oldest_rank": g["rank"].agg(lambda r: r[r >= 0].min() if (r >= 0).any() else -1),
        "verified": g["is_verified"].sum(),
        "hosts": g["host"].nunique(),
        "first_seen": g["time"].min(),
        "last_seen": g["time"].max(),
    }).reset_index()
    out["clear_text"] = out["sessions"] - out["tls_sessions"]
    out["newest"] = pd.array([version_label(int(r)) for r in out["newest_rank"]], dtype="string")
    out["oldest"] = pd.array([version_label(int(r)) for r in out["oldest_rank"]], dtype="string")
    out = out.sort_values(["newest_rank", "sessions", "peer"], ascending=[True, False, True])
    return out[cols].astype({"sessions": "int64", "tls_sessions": "int64",
                             "clear_text": "int64", "verified": "int64"}).reset_index(drop=True)


def observed_results(sessions: pd.DataFrame, direction: str | None = Direction.OUTBOUND
                     ) -> SurveyResults:
    """The sessions as a survey (see the module doc): one "domain" per peer, its hosts and
    addresses as "MX hosts", versions negotiated as versions accepted, TLS sessions' suites as
    accepted suites, ``cert_matches_mx`` true where a session's certificate was ``verified``
    (false where checked and not verified, null where never logged).

    Raises AnalysisError for an unknown ``direction``.
    """
    s = _select(sessions, direction)
    s["host"] = s["peer_host"].fillna(s["peer_ip"]).fillna(s["peer"])
    peers = sorted(set(s["peer"]))
    domains = [{"domain": p, "rank": None, "input": p, "dns_status": DnsStatus.MX} for p in peers]
    mx = (s[["peer", "host"]].drop_duplicates()
          .rename(columns={"peer": "domain", "host": "mx_host"}).assign(preference=10))
    hosts, ciphers = [], []
    for (host, ip), g in s.groupby(["host", s["peer_ip"].fillna("")], sort=True):
        tls = g[g["tls"].fillna(False).astype(bool)]
        seen = set(tls["tls_version"].dropna())
        row: dict[str, object] = {"mx_host": host, "ip": ip or None,
                                  "port": g["peer_port"].dropna().iloc[0]
                                  if g["peer_port"].notna().any() else None}
        row["status"] = HostStatus.STARTTLS if len(tls) else HostStatus.NO_STARTTLS
        row["starttls_offered"] = bool(len(tls)) or None
        row["ehlo_extensions"] = ["STARTTLS"] if len(tls) else []
        row["cert_sans"] = []
        for v in TLS_VERSIONS:
            row[v.column] = True if v.label in seen else None
        ranks = sorted(version_rank(v) for v in seen)
        row["min_version"] = version_label(ranks[0]) if ranks else None
        row["max_version"] = version_label(ranks[-1]) if ranks else None
        checked = tls["verification"].dropna()
        row["cert_matches_mx"] = ((checked == Verification.VERIFIED).any()
                                  if len(checked) else None)
        hosts.append(row)
        for (version, cipher), _ in tls.groupby(["tls_version", "cipher"]):
            facts = traits(str(cipher)) if str(cipher).startswith("TLS_") else None
            ciphers.append({"mx_host": host, "ip": ip or None, "tls_version": version,
                            "cipher": cipher,
                            "key_exchange": facts.key_exchange if facts else None,
                            "forward_secrecy": facts.forward_secrecy if facts else None,
                            "aead": facts.aead if facts else None,
                            "anonymous": facts.anonymous if facts else None})
    return SurveyResults(
        domains=make_table("domains", domains),
        mx=make_table("mx", [{str(k): v for k, v in r.items()} for r in mx.to_dict("records")]),
        hosts=make_table("hosts", hosts),
        ciphers=make_table("ciphers", ciphers),
        meta={"source": "observed sessions", "direction": direction},
    )


def traffic_policy_sweep(sessions: pd.DataFrame, direction: str | None = Direction.OUTBOUND,
                         policies: Iterable[Policy | str | None] | None = None
                         ) -> pd.DataFrame:
    """:func:`~research.analysis.policy.policy_sweep` over the peers of ``sessions``.

    Its columns (its ``domains`` are peers here), plus ``sessions`` (all sessions of the
    direction), ``sessions_failing`` (sessions that would not have met the policy's TLS
    requirements: clear text, or negotiated below its minimum version) and
    ``lost_peer_sessions`` (sessions with the peers it loses). Default policies: STARTTLS
    required with no minimum and with each version from TLS 1.0 to 1.3.

    Raises AnalysisError for an unknown ``direction`` or version label.
    """
    chosen = list(policies) if policies is not None else [None, "TLS 1.0", "TLS 1.1",
                                                           "TLS 1.2", "TLS 1.3"]
    s = _select(sessions, direction)
    sweep = policy_sweep(observed_results(sessions, direction), chosen)
    per_peer = s.groupby("peer").size()
    rank = s["tls_version"].map(version_rank).where(s["tls"].fillna(False).astype(bool), -1)
    failing, lost_sessions = [], []
    for row in sweep.to_dict("records"):
        minimum = check_version(row["min_version"]) if isinstance(row["min_version"], str) else 0
        requires_tls = bool(row["require_starttls"]) or isinstance(row["min_version"], str)
        failing.append(int(((rank < minimum) | (rank < 0)).sum()) if requires_tls else 0)
        lost = [str(p) for p in row["lost_domains"]]
        lost_sessions.append(int(per_peer.reindex(lost).fillna(0).sum()))
    sweep["sessions"] = len(s)
    sweep["sessions_failing"] = failing
    sweep["lost_peer_sessions"] = lost_sessions
    sweep["unit"] = Unit.PEER
    return sweep


def peers_failing(sessions: pd.DataFrame, min_version: str = "TLS 1.2",
                  direction: str | None = Direction.OUTBOUND) -> pd.DataFrame:
    """The peers a server requiring STARTTLS with ``min_version`` would lose: every peer none
    of whose hosts ever negotiated ``min_version`` or newer with this server (or used TLS at
    all). Columns of :func:`peer_table` plus ``reason`` (from
    :func:`~research.analysis.policy.policy_impact`). Unit: peer.

    Raises AnalysisError for an unknown version label or ``direction``.
    """
    check_version(min_version)
    impact = policy_impact(observed_results(sessions, direction),
                           Policy(require_starttls=True, min_version=min_version))
    lost = impact.loc[~impact["reachable"], ["domain", "reason"]].rename(
        columns={"domain": "peer"})
    table = peer_table(sessions, direction)
    out = table.merge(lost, on="peer", how="inner")
    return out.reset_index(drop=True)


def without_duplicate_captures(sessions: pd.DataFrame) -> pd.DataFrame:
    """The log rows when there are any, else the capture rows.

    A capture taken on a server whose logs were read too records the same sessions again; the
    log rows are the ones to keep (they name the recipient domain and the certificate check).
    """
    logged = sessions["source"] != SessionSource.PCAP
    return sessions[logged] if logged.any() else sessions


def describe(sessions: pd.DataFrame) -> str:
    """One line: how many sessions, from how many files, per source and direction."""
    files = sessions["file"].nunique() if len(sessions) else 0
    sources = ", ".join(f"{k}: {v}" for k, v in sessions["source"].value_counts().items())
    directions = ", ".join(f"{k}: {v}" for k, v in
                           sessions["direction"].fillna("unknown").value_counts().items())
    return (f"{len(sessions)} session{'s' if len(sessions) != 1 else ''} from {files} "
            f"file{'s' if files != 1 else ''} (by source: {sources or 'none'}; "
            f"by direction: {directions or 'none'})")
