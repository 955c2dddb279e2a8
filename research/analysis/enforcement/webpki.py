"""WebPKI: what an MTA-STS sender demands of each MX host (RFC 8461 §4.1), and whose name the
certificates carry.

A host passes when it offers STARTTLS and presents a chain to a trusted root, unexpired and
valid for the MX host name: ``hosts.webpki_result == "ok"``. Unit: the unique MX host, which
passes when every IP that answered SMTP passes; one that no IP answered has no verdict.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from research.analysis.core import mx_rows, table
from research.analysis.enforcement._shared import all_known, any_known, items
from research.policy.certs import name_matches
from research.store.results import SurveyResults
from research.store.schema import NOT_REACHED, WEBPKI_FAILURES, TlsResult

RESULT_ORDER: tuple[TlsResult, ...] = (TlsResult.OK, *WEBPKI_FAILURES, TlsResult.TLSA_INVALID,
                                       TlsResult.DNSSEC_INVALID, TlsResult.STS_POLICY_FETCH_ERROR,
                                       TlsResult.STS_WEBPKI_INVALID, TlsResult.STS_POLICY_INVALID)
"""Every result type the breakdown counts, in display order."""


def first_failure(results: Iterable[str]) -> str:
    """The first of ``results`` in :data:`RESULT_ORDER` (anything else after them)."""
    found = list(results)
    return min(found, key=lambda r: RESULT_ORDER.index(r) if r in RESULT_ORDER else 99)


def host_webpki(results: SurveyResults) -> pd.DataFrame:
    """Per unique MX host: ``webpki_result`` lifted over its IPs (``ok`` when every answering IP
    is ok, else the most basic failure of
    :data:`~research.store.schema.WEBPKI_FAILURES`; null when no IP answered),
    ``ips``, ``ips_answered``, ``failures`` (``"ip: result"`` of failing IPs), and the
    certificate columns ``cert_matches_mx``, ``cert_chain_trusted``, ``cert_expired`` (all
    answering IPs), ``cert_key`` (e.g. ``RSA 2048``) of the first IP with a certificate."""
    hosts = table(results, "hosts")
    rows = []
    for name, group in hosts.groupby("mx_host", sort=True):
        answered = group[~group["status"].isin(NOT_REACHED).fillna(True).astype(bool)]
        verdicts = [str(r) for r in answered["webpki_result"].dropna()]
        failing = [(ip, r) for ip, r in zip(answered["ip"], answered["webpki_result"],
                                            strict=True)
                   if isinstance(r, str) and r != TlsResult.OK]
        result = None
        if verdicts:
            result = first_failure(r for _, r in failing) if failing else TlsResult.OK
        with_cert = answered[answered["cert_key_type"].notna()]
        key = None
        if len(with_cert):
            first = with_cert.iloc[0]
            bits = first["cert_key_bits"]
            key = f"{first['cert_key_type']} {int(bits)}" if pd.notna(bits) else str(
                first["cert_key_type"])
        rows.append({
            "mx_host": name, "webpki_result": result, "ips": len(group),
            "ips_answered": len(answered), "failures": [f"{ip}: {r}" for ip, r in failing],
            "cert_matches_mx": all_known(with_cert["cert_matches_mx"]),
            "cert_chain_trusted": all_known(with_cert["cert_chain_trusted"]),
            "cert_expired": any_known(with_cert["cert_expired"]),
            "cert_key": key,
        })
    return pd.DataFrame(rows, columns=["mx_host", "webpki_result", "ips", "ips_answered",
                                       "failures", "cert_matches_mx", "cert_chain_trusted",
                                       "cert_expired", "cert_key"]).astype(
        {"mx_host": "string", "webpki_result": "string", "cert_matches_mx": "boolean",
         "cert_chain_trusted": "boolean", "cert_expired": "boolean", "cert_key": "string"})


def certificate_names(results: SurveyResults) -> pd.DataFrame:
    """Per (domain, MX host) of the mail domains: is the certificate valid for the MX host name
    (``matches_mx``) and for the recipient domain (``matches_domain``)? True when every leaf the
    host's IPs presented covers the name (RFC 6125 rules); null when no leaf was seen.
    Senders check the MX host name (RFC 7672, RFC 8461); a certificate for the domain is what a
    sender without the MX name's authentication (DNSSEC or MTA-STS) would need."""
    mx = mx_rows(results)
    certs = table(results, "certificates")
    leaves = certs[certs["position"] == 0]
    names = {str(h): [items(s) for s in g["sans"]] for h, g in leaves.groupby("mx_host")}
    rows = []
    for r in mx.itertuples(index=False):
        sans = names.get(str(r.mx_host))
        rows.append({
            "domain": r.domain, "mx_host": r.mx_host, "preference": r.preference,
            "matches_mx": None if not sans else all(name_matches(str(r.mx_host), s)
                                                    for s in sans),
            "matches_domain": None if not sans else all(name_matches(str(r.domain), s)
                                                        for s in sans),
        })
    return pd.DataFrame(rows, columns=["domain", "mx_host", "preference", "matches_mx",
                                       "matches_domain"]).astype(
        {"domain": "string", "mx_host": "string", "matches_mx": "boolean",
         "matches_domain": "boolean"})
