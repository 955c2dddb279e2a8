"""Could a sender enforce TLS to each domain, and what would break? MTA-STS, DANE and WebPKI
together, per input domain (:class:`~research.store.schema.Readiness`)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from research.analysis.core import mx_rows, table
from research.analysis.enforcement._shared import all_known, by_key, items, text
from research.analysis.enforcement.dane import dane_verdicts
from research.analysis.enforcement.mta_sts import mta_sts_verdicts
from research.analysis.enforcement.webpki import certificate_names, host_webpki
from research.store.results import SurveyResults
from research.store.schema import (
    MAIL_DNS_STATUSES,
    DaneVerdict,
    Readiness,
    StsVerdict,
    TlsResult,
)

READINESS: tuple[Readiness, ...] = tuple(Readiness)
"""Every value of :func:`enforcement_readiness`'s ``readiness``, best first."""

_STS_ENFORCED: dict[str, Readiness] = {
    StsVerdict.ENFORCE_OK: Readiness.ENFORCED_OK,
    StsVerdict.ENFORCE_DEGRADED: Readiness.ENFORCED_DEGRADED,
    StsVerdict.ENFORCE_BREAKS: Readiness.ENFORCED_LOSING}
"""MTA-STS verdicts with a policy in force, and what they make of the domain."""
_DANE_ENFORCED: dict[str, Readiness] = {
    DaneVerdict.OK: Readiness.ENFORCED_OK, DaneVerdict.UNUSABLE: Readiness.ENFORCED_OK,
    DaneVerdict.DEGRADED: Readiness.ENFORCED_DEGRADED,
    DaneVerdict.BREAKS: Readiness.ENFORCED_LOSING, DaneVerdict.MX_BOGUS: Readiness.ENFORCED_LOSING}
"""DANE verdicts with DANE in force, and what they make of the domain."""

_READINESS_COLUMNS = ["domain", "rank", "dns_status", "readiness", "mx_hosts", "webpki_ready",
                      "webpki_failures", "cert_matches_mx", "cert_matches_domain",
                      "mta_sts_verdict", "mta_sts_mode", "mta_sts_refused",
                      "mta_sts_would_lose_mail", "tlsrpt_status", "tlsrpt_rua", "dane_verdict",
                      "dane_coverage", "dane_refused", "dane_would_lose_mail"]


def enforcement_readiness(results: SurveyResults) -> pd.DataFrame:
    """Per input domain (rank order): could a sender enforce TLS to it, and what would break?

    ``readiness`` is one of :data:`READINESS`: with MTA-STS in enforce mode or DANE in force,
    whether that loses mail, refuses some MX hosts, or passes them all; otherwise whether every
    answering MX host passes WebPKI (``webpki_ready``: an MTA-STS policy in enforce mode that
    covers the MX set would lose nothing) or not (``webpki_failures``: ``"host: result"``).
    ``cert_matches_mx``/``cert_matches_domain``: every MX host's certificate is valid for its
    own name / for the domain (null when none was seen). The MTA-STS, TLS-RPT and DANE columns
    come from :func:`mta_sts_verdicts`, the ``tlsrpt`` table and :func:`dane_verdicts`.
    Domains without MX hosts are kept, with ``readiness`` ``no MX hosts``.
    """
    domains = table(results, "domains").sort_values(["rank", "domain"]).reset_index(drop=True)
    sts = by_key(mta_sts_verdicts(results), "domain")
    dane = by_key(dane_verdicts(results), "domain")
    report = by_key(table(results, "tlsrpt"), "domain")
    names = certificate_names(results)
    webpki = host_webpki(results)
    web = {str(h): text(r) for h, r in zip(webpki["mx_host"], webpki["webpki_result"],
                                           strict=True)}
    reached = {str(h) for h, k in zip(webpki["mx_host"], webpki["ips_answered"], strict=True)
               if k > 0}
    mx = mx_rows(results)
    hosts_of = {str(d): list(dict.fromkeys(g["mx_host"])) for d, g in mx.groupby("domain")}
    rows = []
    for dom in domains.itertuples(index=False):
        name = str(dom.domain)
        hosts = hosts_of.get(name, [])
        mail = dom.dns_status in MAIL_DNS_STATUSES and bool(hosts)
        results_of = {h: web.get(h) for h in hosts}
        answered = {h: r for h, r in results_of.items() if r is not None}
        failures = [f"{h}: {r}" for h, r in answered.items() if r != TlsResult.OK]
        n = names[names["domain"] == name]
        s, d, r = sts.get(name), dane.get(name), report.get(name)
        row = {
            "domain": name, "rank": dom.rank, "dns_status": dom.dns_status,
            "mx_hosts": hosts,
            "webpki_ready": (bool(answered) and not failures) if mail else None,
            "webpki_failures": failures,
            "cert_matches_mx": all_known(n["matches_mx"]),
            "cert_matches_domain": all_known(n["matches_domain"]),
            "mta_sts_verdict": None if s is None else s["verdict"],
            "mta_sts_mode": None if s is None else s["mode"],
            "mta_sts_refused": [] if s is None else list(s["refused"]),
            "mta_sts_would_lose_mail": None if s is None else bool(s["would_lose_mail"]),
            "tlsrpt_status": None if r is None else text(r["status"]),
            "tlsrpt_rua": [] if r is None else items(r["rua"]),
            "dane_verdict": None if d is None else d["verdict"],
            "dane_coverage": math.nan if d is None else d["coverage"],
            "dane_refused": [] if d is None else list(d["refused"]),
            "dane_would_lose_mail": None if d is None else bool(d["would_lose_mail"]),
        }
        row["readiness"] = _readiness(row, mail, bool(answered),
                                      any(h in reached for h in hosts))
        rows.append(row)
    return pd.DataFrame(rows, columns=_READINESS_COLUMNS).astype(
        {"domain": "string", "rank": "Int64", "dns_status": "string", "readiness": "string",
         "webpki_ready": "boolean", "cert_matches_mx": "boolean",
         "cert_matches_domain": "boolean", "mta_sts_verdict": "string",
         "mta_sts_mode": "string", "mta_sts_would_lose_mail": "boolean",
         "tlsrpt_status": "string", "dane_verdict": "string", "dane_coverage": "float64",
         "dane_would_lose_mail": "boolean"})


def _readiness(row: dict[str, Any], mail: bool, answered: bool, reached: bool) -> Readiness:
    if not mail:
        return Readiness.NO_MAIL
    enforced = [found for found in (_STS_ENFORCED.get(row["mta_sts_verdict"]),
                                    _DANE_ENFORCED.get(row["dane_verdict"])) if found]
    if enforced:
        # The worst of the two mechanisms decides: a sender may honour either.
        return max(enforced, key=READINESS.index)
    if not reached:
        return Readiness.UNREACHABLE
    if not answered:
        return Readiness.NOT_MEASURED
    return Readiness.NOT_ENFORCED_OK if row["webpki_ready"] else Readiness.NOT_ENFORCED_FAILING
