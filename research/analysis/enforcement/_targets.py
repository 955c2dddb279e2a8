"""What each enforcing sender does per (domain, MX host, IP), and per MX host over its IPs.

The per-domain verdicts of :mod:`~research.analysis.enforcement.mta_sts` and
:mod:`~research.analysis.enforcement.dane` are built from these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pandas as pd

from research.analysis.core import mx_rows, table
from research.analysis.enforcement._shared import by_key, items, text
from research.analysis.enforcement.webpki import first_failure
from research.policy.dane import match_chain, parse_tlsa
from research.policy.pki import chain_from_rows
from research.store.results import SurveyResults
from research.store.schema import (
    ACCEPTING,
    ENFORCEABLE_MODES,
    NOT_COVERED,
    NOT_REACHED,
    REFUSING,
    DaneState,
    DnssecStatus,
    HostStatus,
    LiftedOutcome,
    PolicyStatus,
    StsMode,
    TlsaStatus,
    TlsResult,
)

Outcome = tuple[str, LiftedOutcome, str | None]
"""(MX host, outcome, first failure) of one MX host of a domain."""


def ip_dane_matches(results: SurveyResults) -> pd.DataFrame:
    """Per scanned (MX host, IP) with STARTTLS and TLSA records: whether the presented chain
    matches them. Columns ``mx_host``, ``ip``, ``dane_match`` (bool), ``dane_usage`` (3, 2 or
    null), ``dane_reason``. Dates are judged at the IP's ``scanned_at``."""
    hosts = table(results, "hosts")
    dane = table(results, "dane")
    records_of = {str(h): items(r) for h, r in zip(dane["mx_host"], dane["tlsa_records"],
                                                   strict=True)}
    certs = table(results, "certificates")
    chains = {key: chain_from_rows(group.to_dict("records"))
              for key, group in certs.groupby(["mx_host", "ip"], sort=False)}
    rows = []
    for h in hosts.itertuples(index=False):
        texts = records_of.get(str(h.mx_host), [])
        if h.status != HostStatus.STARTTLS or not texts:
            continue
        records = [parse_tlsa(t) for t in texts]
        when = h.scanned_at.to_pydatetime() if isinstance(h.scanned_at, pd.Timestamp) else None
        match = match_chain(records, chains.get((h.mx_host, h.ip), []), str(h.mx_host),
                            now=when or dt.datetime.now(dt.UTC))
        rows.append({"mx_host": h.mx_host, "ip": h.ip, "dane_match": match.matched,
                     "dane_usage": match.usage, "dane_reason": match.reason})
    return pd.DataFrame(rows, columns=["mx_host", "ip", "dane_match", "dane_usage",
                                       "dane_reason"]).astype(
        {"mx_host": "string", "ip": "string", "dane_usage": "Int64", "dane_reason": "string"})


def dane_matched_hosts(matches: pd.DataFrame) -> set[str]:
    """MX hosts every IP of which matched its TLSA records (of :func:`ip_dane_matches`)."""
    return {str(h) for h, g in matches.groupby("mx_host") if g["dane_match"].all()}


_TARGET_COLUMNS = ["domain", "mx_host", "ip", "reached", "webpki_result", "sts_mode", "covered",
                   "sts_failure", "dane_state", "dane_failure"]


def targets(results: SurveyResults) -> pd.DataFrame:
    """Per (mail domain, MX host, IP): ``reached``, ``webpki_result``, ``sts_mode`` (the mode
    of a valid MTA-STS policy, else null), ``covered`` (an ``mx`` pattern covers the host; null
    without a policy), ``sts_failure`` (why an MTA-STS sender in that mode refuses the target,
    as an RFC 8460 type or :data:`~research.store.schema.NOT_COVERED`; null if it accepts or
    there is no policy), ``dane_state`` (``opportunistic`` when DANE does not apply, else
    ``required``) and ``dane_failure`` (the RFC 8460 type a DANE sender refuses the target
    with, or null). Unreached targets carry no failures: a sender just moves on."""
    mx = mx_rows(results)
    hosts = table(results, "hosts")
    sts = by_key(table(results, "mta_sts"), "domain")
    dane = {(str(r["domain"]), str(r["mx_host"])): r
            for r in table(results, "dane").to_dict("records")}
    m = ip_dane_matches(results)
    matches = {(str(h), text(ip)): bool(ok)
               for h, ip, ok in zip(m["mx_host"], m["ip"], m["dane_match"], strict=True)}
    by_host = {str(h): g for h, g in hosts.groupby("mx_host", sort=False)}
    rows = []
    for r in mx.itertuples(index=False):
        domain, host = str(r.domain), str(r.mx_host)
        mode, covered = _sts_mode(sts, domain, host)
        d = dane.get((domain, host))
        ips = by_host.get(host)
        ip_rows = ips.to_dict("records") if ips is not None else [{"ip": None, "status": None}]
        for ip in ip_rows:
            status = text(ip.get("status"))
            reached = status is not None and status not in NOT_REACHED
            webpki = text(ip.get("webpki_result"))
            sts_failure = None
            if mode in ENFORCEABLE_MODES and reached:
                if covered is False:
                    sts_failure = NOT_COVERED
                elif webpki != TlsResult.OK:
                    sts_failure = webpki or TlsResult.VALIDATION_FAILURE
            state, dane_failure = _dane_ip(d, status, reached, matches, host, text(ip.get("ip")))
            rows.append({"domain": domain, "mx_host": host, "ip": text(ip.get("ip")),
                         "reached": reached, "webpki_result": webpki, "sts_mode": mode,
                         "covered": covered, "sts_failure": sts_failure, "dane_state": state,
                         "dane_failure": dane_failure})
    return pd.DataFrame(rows, columns=_TARGET_COLUMNS).astype(
        {"domain": "string", "mx_host": "string", "ip": "string", "reached": "bool",
         "webpki_result": "string", "sts_mode": "string", "covered": "boolean",
         "sts_failure": "string", "dane_state": "string", "dane_failure": "string"})


def _sts_mode(sts: dict[str, dict[Any, Any]], domain: str, host: str
              ) -> tuple[str | None, bool | None]:
    row = sts.get(domain)
    if row is None:
        return None, None
    if row["policy_status"] != PolicyStatus.VALID or not isinstance(row["mode"], str):
        return None, None
    if row["mode"] == StsMode.NONE:
        return StsMode.NONE, None
    return str(row["mode"]), host not in set(items(row["mx_not_covered"]))


def _dane_state(d: Mapping[Any, Any] | None) -> tuple[DaneState, str | None]:
    """What DANE asks for one (domain, host), and the failure when that is ``bogus``."""
    if d is None:
        return DaneState.OPPORTUNISTIC, None
    if d["mx_dnssec"] == DnssecStatus.BOGUS:
        return DaneState.BOGUS, TlsResult.DNSSEC_INVALID
    if d["mx_dnssec"] != DnssecStatus.SECURE:
        return DaneState.OPPORTUNISTIC, None
    if d["tlsa_status"] == TlsaStatus.DNS_ERROR:
        return DaneState.BOGUS, TlsResult.DNSSEC_INVALID
    if d["tlsa_status"] != TlsaStatus.FOUND:
        return DaneState.OPPORTUNISTIC, None
    if d["tlsa_dnssec"] == DnssecStatus.BOGUS:
        return DaneState.BOGUS, TlsResult.DNSSEC_INVALID
    if d["tlsa_dnssec"] != DnssecStatus.SECURE:
        return DaneState.OPPORTUNISTIC, None
    usable = d["usable_records"]
    return (DaneState.REQUIRED if pd.notna(usable) and int(usable) > 0
            else DaneState.ENCRYPT), None


def _dane_ip(d: Mapping[Any, Any] | None, status: str | None, reached: bool,
             matches: dict[tuple[str, str | None], bool], host: str, ip: str | None
             ) -> tuple[DaneState, str | None]:
    """(``opportunistic`` or ``required``, the failure a DANE sender refuses the IP with)."""
    state, failure = _dane_state(d)
    if state == DaneState.OPPORTUNISTIC:
        return state, None
    if state == DaneState.BOGUS:
        # The MX or TLSA lookup fails validation: no connection is even attempted.
        return DaneState.REQUIRED, failure
    if not reached:
        return DaneState.REQUIRED, None
    if status != HostStatus.STARTTLS:
        return DaneState.REQUIRED, TlsResult.STARTTLS_NOT_SUPPORTED
    if state == DaneState.ENCRYPT:
        return DaneState.REQUIRED, None
    matched = matches.get((host, ip), False)
    return DaneState.REQUIRED, None if matched else TlsResult.TLSA_INVALID


def lift(group: pd.DataFrame, failure: str) -> tuple[LiftedOutcome, str | None]:
    """(outcome, first failure) of one MX host's targets (its IPs), ``failure`` naming the
    mechanism's failure column (``sts_failure`` or ``dane_failure``)."""
    reached = group[group["reached"]]
    failures = [str(f) for f in reached[failure].dropna()]
    passing = int(reached[failure].isna().sum())
    if not len(reached):
        return LiftedOutcome.UNREACHABLE, None
    if not failures:
        return LiftedOutcome.ACCEPTED, None
    why = NOT_COVERED if NOT_COVERED in failures else first_failure(failures)
    return (LiftedOutcome.PARTIAL if passing else LiftedOutcome.REFUSED), why


def outcomes(t: pd.DataFrame, failure: str) -> list[Outcome]:
    """(MX host, outcome, failure) in MX preference order for one domain's targets."""
    out = []
    for host, group in t.groupby("mx_host", sort=False):
        outcome, why = lift(group, failure)
        out.append((str(host), outcome, why))
    return out


def refused_accepted(found: list[Outcome]) -> tuple[bool, bool]:
    """Whether a sender refuses some MX host, and whether it delivers to some MX host."""
    return (any(o in REFUSING for _, o, _ in found), any(o in ACCEPTING for _, o, _ in found))
