"""DANE for SMTP (RFC 7672): what a sender that validates DNSSEC does with a domain's MX hosts.

DANE applies only when the domain's MX RRset is DNSSEC-secure (``mx-bogus`` when its signatures
fail: a validating sender cannot even find the MX hosts). Per MX host: no TLSA records, or
unsigned ones → opportunistic TLS, as without DANE; bogus TLSA → refused (``dnssec-invalid``);
secure TLSA with usable records (DANE-TA/EE) → every answering IP must offer STARTTLS and present
a chain the records match (:func:`research.policy.dane.match_chain`, dates taken at the host's
scan time), else refused (``starttls-not-supported``, ``tlsa-invalid``); secure TLSA without
usable records → TLS required, not authenticated. Units: the (domain, MX host) pair
(:class:`~research.store.schema.DaneOutcome`) and the domain with MX hosts
(:class:`~research.store.schema.DaneVerdict`).
"""

from __future__ import annotations

import math

import pandas as pd

from research.analysis.core import table
from research.analysis.enforcement._shared import ranked_mail_domains, text
from research.analysis.enforcement._targets import (
    Outcome,
    dane_matched_hosts,
    ip_dane_matches,
    lift,
    outcomes,
    refused_accepted,
    targets,
)
from research.store.results import SurveyResults
from research.store.schema import (
    DANE_LOSES_MAIL,
    REFUSING,
    DaneOutcome,
    DaneState,
    DaneVerdict,
    DnssecStatus,
    LiftedOutcome,
    TlsaStatus,
)

_ENFORCE_VERDICTS: dict[tuple[bool, bool], DaneVerdict] = {
    # (some MX host refused, some MX host accepted)
    (True, True): DaneVerdict.DEGRADED, (True, False): DaneVerdict.BREAKS,
    (False, True): DaneVerdict.OK, (False, False): DaneVerdict.UNREACHABLE}


def dane_hosts(results: SurveyResults) -> pd.DataFrame:
    """Per (mail domain, MX host): what a DANE sender does with the host, as ``outcome`` (a
    :class:`~research.store.schema.DaneOutcome`): ``authenticated`` (every answering IP
    matched usable TLSA records), ``encrypted`` (secure TLSA, none usable: TLS without
    authentication), ``opportunistic`` (DANE does not apply: no or insecure TLSA, or an MX
    RRset that is not secure), ``unreachable``, or the RFC 8460 type it is refused with
    (``tlsa-invalid``, ``dnssec-invalid``, ``starttls-not-supported``)."""
    t = targets(results)
    matched = dane_matched_hosts(ip_dane_matches(results))
    rows = []
    for (domain, host), group in t.groupby(["domain", "mx_host"], sort=False):
        outcome, why = lift(group, "dane_failure")
        in_force = (group["dane_state"] == DaneState.REQUIRED).any()
        if outcome in REFUSING:
            label = str(why)
        elif outcome == LiftedOutcome.UNREACHABLE:
            label = DaneOutcome.UNREACHABLE
        elif not in_force:
            label = DaneOutcome.OPPORTUNISTIC
        else:
            label = DaneOutcome.AUTHENTICATED if str(host) in matched else DaneOutcome.ENCRYPTED
        rows.append({"domain": domain, "mx_host": host, "outcome": label})
    return pd.DataFrame(rows, columns=["domain", "mx_host", "outcome"]).astype("string")


_DANE_COLUMNS = ["domain", "rank", "verdict", "mx_dnssec", "dnssec_method", "mx_hosts",
                 "tlsa_hosts", "dane_hosts", "coverage", "authenticated", "refused",
                 "refused_reasons", "would_lose_mail"]


def dane_verdicts(results: SurveyResults) -> pd.DataFrame:
    """Per mail domain (rank order): the DANE verdict
    (:class:`~research.store.schema.DaneVerdict`). ``tlsa_hosts``: MX hosts with TLSA records
    (any DNSSEC state); ``dane_hosts``: those where DANE is in force (secure MX RRset and secure
    or bogus TLSA); ``coverage``: their share of the MX set (NaN when the MX RRset is not
    secure); ``authenticated``: MX hosts whose every answering IP matched usable records;
    ``refused``/``refused_reasons`` as for MTA-STS; ``would_lose_mail`` for ``breaks`` and
    ``mx-bogus``."""
    domains = ranked_mail_domains(results)
    dane = table(results, "dane")
    t = targets(results)
    by_domain = {str(d): g for d, g in t.groupby("domain", sort=False)}
    dane_by_domain = {str(d): g for d, g in dane.groupby("domain", sort=False)}
    matched_hosts = dane_matched_hosts(ip_dane_matches(results))
    rows = []
    for dom in domains.itertuples(index=False):
        name = str(dom.domain)
        group = by_domain.get(name, t.iloc[0:0])
        d = dane_by_domain.get(name, dane.iloc[0:0])
        mx_hosts = list(dict.fromkeys(str(h) for h in group["mx_host"]))
        mx_dnssec = text(d["mx_dnssec"].iloc[0]) if len(d) else None
        method = text(d["dnssec_method"].dropna().iloc[0]) if d["dnssec_method"].notna().any() \
            else None
        tlsa_hosts = [str(h) for h, s in zip(d["mx_host"], d["tlsa_status"], strict=True)
                      if s == TlsaStatus.FOUND]
        in_force = [str(h) for h in
                    group.loc[group["dane_state"] == DaneState.REQUIRED, "mx_host"]]
        dane_hosts = list(dict.fromkeys(in_force))
        found = outcomes(group, "dane_failure")
        refused = [(h, w) for h, o, w in found if o in REFUSING]
        authenticated = [h for h, o, _ in found if o == LiftedOutcome.ACCEPTED
                         and h in dane_hosts and h in matched_hosts and _usable(d, h)]
        verdict = _dane_verdict(mx_dnssec, tlsa_hosts, dane_hosts, found, authenticated)
        secure = mx_dnssec == DnssecStatus.SECURE
        rows.append({
            "domain": name, "rank": dom.rank, "verdict": verdict, "mx_dnssec": mx_dnssec,
            "dnssec_method": method, "mx_hosts": mx_hosts, "tlsa_hosts": tlsa_hosts,
            "dane_hosts": dane_hosts,
            "coverage": len(dane_hosts) / len(mx_hosts) if secure and mx_hosts else math.nan,
            "authenticated": authenticated, "refused": [h for h, _ in refused],
            "refused_reasons": [f"{h}: {w}" for h, w in refused],
            "would_lose_mail": verdict in DANE_LOSES_MAIL,
        })
    return pd.DataFrame(rows, columns=_DANE_COLUMNS).astype(
        {"domain": "string", "rank": "Int64", "verdict": "string", "mx_dnssec": "string",
         "dnssec_method": "string", "coverage": "float64", "would_lose_mail": "bool"})


def _usable(d: pd.DataFrame, host: str) -> bool:
    rows = d[d["mx_host"] == host]
    return bool(len(rows)) and pd.notna(rows["usable_records"].iloc[0]) and int(
        rows["usable_records"].iloc[0]) > 0


def _dane_verdict(mx_dnssec: str | None, tlsa_hosts: list[str], dane_hosts: list[str],
                  found: list[Outcome], authenticated: list[str]) -> DaneVerdict:
    if mx_dnssec == DnssecStatus.BOGUS:
        return DaneVerdict.MX_BOGUS
    if not tlsa_hosts and not dane_hosts:
        return DaneVerdict.NONE
    if mx_dnssec != DnssecStatus.SECURE:
        return DaneVerdict.MX_INSECURE
    if not dane_hosts:
        return DaneVerdict.INSECURE
    verdict = _ENFORCE_VERDICTS[refused_accepted(found)]
    if verdict == DaneVerdict.OK and not authenticated:
        return DaneVerdict.UNUSABLE
    return verdict
