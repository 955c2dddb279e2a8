"""The enforcement findings of a whole survey: shares as a tidy table, how sessions would end
by RFC 8460 result type, and plain sentences."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pandas as pd

from research.analysis.core import table
from research.analysis.enforcement._targets import lift, targets
from research.analysis.enforcement.dane import dane_verdicts
from research.analysis.enforcement.mta_sts import mta_sts_verdicts
from research.analysis.enforcement.readiness import READINESS, enforcement_readiness
from research.analysis.enforcement.webpki import RESULT_ORDER, certificate_names, host_webpki
from research.store.results import SurveyResults
from research.store.schema import (
    DANE_IN_FORCE,
    STS_NO_POLICY,
    WEBPKI_FAILURES,
    DaneState,
    DaneVerdict,
    DnssecStatus,
    LiftedOutcome,
    Readiness,
    RecordStatus,
    StsMode,
    StsVerdict,
    TlsaStatus,
    TlsResult,
    Unit,
)

SUMMARY_COLUMNS = ["metric", "unit", "count", "total", "share"]


def readiness_summary(results: SurveyResults) -> pd.DataFrame:
    """Enforcement shares as a tidy table (``metric, unit, count, total, share``), per mail
    domain (``domain with MX hosts``) and per unique MX host (``MX host``, over the hosts that
    answered SMTP). ``share`` is NaN when ``total`` is 0."""
    ready = enforcement_readiness(results)
    mail = ready[ready["readiness"] != Readiness.NO_MAIL]
    sts = mta_sts_verdicts(results)
    dane = dane_verdicts(results)
    report = table(results, "tlsrpt")
    n = len(mail)
    rows = [_summary_row(f"readiness: {c}", Unit.MAIL_DOMAIN,
                         int((mail["readiness"] == c).sum()), n) for c in READINESS[:-1]]
    sts_rows: list[tuple[str, Any]] = [
        ("MTA-STS record published (valid)", sts["txt_status"] == RecordStatus.VALID),
        ("MTA-STS policy fetched and valid", ~sts["verdict"].isin(STS_NO_POLICY)),
        ("MTA-STS mode enforce", sts["mode"] == StsMode.ENFORCE),
        ("MTA-STS mode testing", sts["mode"] == StsMode.TESTING),
        ("MTA-STS enforce, every MX host passes", sts["verdict"] == StsVerdict.ENFORCE_OK),
        ("MTA-STS enforce loses mail", sts["would_lose_mail"]),
        ("MTA-STS policy would lose mail if enforced", sts["breaks_if_enforced"]),
        ("TLS-RPT record valid", report["status"] == RecordStatus.VALID),
        ("DANE in force", dane["verdict"].isin(DANE_IN_FORCE)),
        ("DANE authenticates, nothing refused", dane["verdict"] == DaneVerdict.OK),
        ("DANE loses mail", dane["would_lose_mail"]),
        ("every MX host passes WebPKI", mail["webpki_ready"]),
        ("certificate valid for the MX host name (all MX hosts)", mail["cert_matches_mx"]),
        ("certificate valid for the recipient domain (all MX hosts)",
         mail["cert_matches_domain"]),
    ]
    for metric, mask in sts_rows:
        rows.append(_summary_row(metric, Unit.MAIL_DOMAIN,
                                 int(mask.astype("boolean").fillna(False).sum()), n))
    hosts = host_webpki(results)
    answered = hosts[hosts["webpki_result"].notna()]
    h = len(answered)
    rows.append(_summary_row("passes WebPKI", Unit.MX_HOST,
                             int((answered["webpki_result"] == TlsResult.OK).sum()), h))
    for metric, column in (("certificate valid for the MX host name", "cert_matches_mx"),
                           ("chain trusted (names aside)", "cert_chain_trusted"),
                           ("certificate expired", "cert_expired")):
        rows.append(_summary_row(metric, Unit.MX_HOST,
                                 int(answered[column].fillna(False).astype(bool).sum()), h))
    dane_table = table(results, "dane").drop_duplicates("mx_host")
    scanned = dane_table[dane_table["mx_host"].isin(answered["mx_host"])]
    found = scanned["tlsa_status"] == TlsaStatus.FOUND
    rows.append(_summary_row("TLSA records published", Unit.MX_HOST, int(found.sum()), h))
    rows.append(_summary_row("TLSA records DNSSEC-secure", Unit.MX_HOST,
                             int((found & (scanned["tlsa_dnssec"] == DnssecStatus.SECURE)).sum()),
                             h))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS).astype(
        {"metric": "string", "unit": "string", "count": "int64", "total": "int64",
         "share": "float64"})


def _summary_row(metric: str, unit: str, count: int, total: int) -> dict[str, Any]:
    return {"metric": metric, "unit": unit, "count": count, "total": total,
            "share": count / total if total else math.nan}


BREAKDOWN_COLUMNS = ["unit", "result", "count", "total", "share"]


def failure_types(results: SurveyResults) -> pd.DataFrame:
    """How sessions would end, by RFC 8460 result type, per unit (tidy: ``unit, result, count,
    total, share``):

    * ``MX host``: each answering MX host's lifted ``webpki_result`` (``ok`` included);
    * ``MX host with DANE in force (per domain)``: (domain, MX host) pairs with DANE in force,
      ``ok`` or the DANE failure (``tlsa-invalid``, ``dnssec-invalid``,
      ``starttls-not-supported``);
    * ``domain with an MTA-STS record``: domains with a valid MTA-STS record, ``ok`` when the
      policy was fetched and valid, else its ``sts-*`` failure.

    Only result types that occur are listed, in :data:`RESULT_ORDER`."""
    rows: list[dict[str, Any]] = []
    hosts = host_webpki(results)
    rows += _counts(Unit.MX_HOST, [str(r) for r in hosts["webpki_result"].dropna()])
    t = targets(results)
    dane_pairs = t[t["dane_state"] == DaneState.REQUIRED]
    outcomes = [w or TlsResult.OK
                for _, g in dane_pairs.groupby(["domain", "mx_host"], sort=False)
                for _, o, w in [("", *lift(g, "dane_failure"))]
                if o != LiftedOutcome.UNREACHABLE]
    rows += _counts(Unit.DANE_HOST, outcomes)
    sts = table(results, "mta_sts")
    valid = sts[sts["txt_status"] == RecordStatus.VALID]
    rows += _counts(Unit.STS_DOMAIN, [str(r) if isinstance(r, str) else TlsResult.OK
                                      for r in valid["policy_result"]])
    return pd.DataFrame(rows, columns=BREAKDOWN_COLUMNS).astype(
        {"unit": "string", "result": "string", "count": "int64", "total": "int64",
         "share": "float64"})


def _counts(unit: str, values: list[str]) -> list[dict[str, Any]]:
    total = len(values)
    present = sorted(set(values), key=lambda r: RESULT_ORDER.index(r) if r in RESULT_ORDER
                     else len(RESULT_ORDER))
    return [{"unit": unit, "result": r, "count": values.count(r), "total": total,
             "share": values.count(r) / total if total else math.nan} for r in present]


def describe(results: SurveyResults) -> str:
    """The enforcement findings as plain sentences, one a line, saying "none published" where a
    mechanism is absent (e.g. on a survey from before MTA-STS and DANE were looked up)."""
    ready = enforcement_readiness(results)
    mail = ready[ready["readiness"] != Readiness.NO_MAIL]
    n = len(mail)
    if not n:
        return "No domain with MX hosts: nothing to enforce TLS to."
    hosts = host_webpki(results)
    answered = hosts[hosts["webpki_result"].notna()]
    ok = int((answered["webpki_result"] == TlsResult.OK).sum())
    failures = Counter(str(r) for r in answered["webpki_result"] if r != TlsResult.OK)
    reached = int((hosts["ips_answered"] > 0).sum())
    lines = [
        f"{n} domains with MX hosts; {reached} unique MX hosts answered SMTP"
        + ("." if len(answered) == reached else
           f", {len(answered)} of them with certificate verdicts (the others were surveyed "
           "before these were measured)."),
        f"WebPKI (what MTA-STS demands: STARTTLS, trusted chain, unexpired, name of the MX "
        f"host): {ok} of {len(answered)} MX hosts pass"
        + (": failures " + ", ".join(f"{r} {failures[r]}" for r in WEBPKI_FAILURES
                                     if failures[r]) + "." if failures else "."),
    ]
    names = certificate_names(results)
    seen = names[names["matches_mx"].notna()]
    lines.append(f"Certificates valid for the MX host name: {int(seen['matches_mx'].sum())} of "
                 f"{len(seen)} (domain, MX host) pairs; for the recipient domain: "
                 f"{int(seen['matches_domain'].sum())} of {len(seen)}.")
    sts = mta_sts_verdicts(results)
    published = sts[sts["txt_status"] == RecordStatus.VALID]
    looked_up = not table(results, "mta_sts").empty
    if not looked_up:
        lines.append("MTA-STS, TLS-RPT, DANE: not looked up in this survey (it predates them).")
    elif published.empty:
        lines.append(f"MTA-STS: none published (0 of {n} domains have a valid _mta-sts "
                     "record).")
    else:
        modes = Counter(str(m) for m in sts["mode"].dropna())
        verdicts = Counter(str(v) for v in published["verdict"])
        losing = [str(d) for d in sts.loc[sts["would_lose_mail"], "domain"]]
        lines.append(
            f"MTA-STS: {len(published)} of {n} domains publish a valid record; policies in "
            f"enforce mode {modes[StsMode.ENFORCE]}, testing {modes[StsMode.TESTING]}, none "
            f"{modes[StsMode.NONE]}; no usable policy behind the record: "
            f"{verdicts[StsVerdict.FETCH_FAILED]} fetch failed, "
            f"{verdicts[StsVerdict.INVALID_POLICY]} invalid. Enforce mode loses mail for "
            f"{len(losing)}: {', '.join(losing) or 'none'}.")
    report = table(results, "tlsrpt")
    valid = report[report["status"] == RecordStatus.VALID]
    if not looked_up:
        pass
    elif valid.empty:
        lines.append(f"TLS-RPT: none published (0 of {n} domains have a valid _smtp._tls "
                     "record).")
    else:
        ignored = int(report["status"].isin([RecordStatus.INVALID, RecordStatus.MULTIPLE]).sum())
        lines.append(f"TLS-RPT: {len(valid)} of {n} domains ask for reports; {ignored} publish "
                     "records senders must ignore (invalid or several).")
    dane = dane_verdicts(results)
    counts = Counter(str(v) for v in dane["verdict"])
    in_force = sum(counts[v] for v in DANE_IN_FORCE)
    if not looked_up:
        pass
    elif not sum(len(t) for t in dane["tlsa_hosts"]):
        lines.append(f"DANE: none published (no TLSA records at any MX host of the {n} "
                     "domains).")
    else:
        losing = [str(d) for d in dane.loc[dane["would_lose_mail"], "domain"]]
        lines.append(
            f"DANE: in force for {in_force} of {n} domains (ok {counts[DaneVerdict.OK]}, only "
            f"unusable records {counts[DaneVerdict.UNUSABLE]}, some MX hosts refused "
            f"{counts[DaneVerdict.DEGRADED]}); TLSA published but not applied: "
            f"{counts[DaneVerdict.INSECURE]} unsigned, {counts[DaneVerdict.MX_INSECURE]} with "
            f"an unsigned MX RRset. DANE loses mail for {len(losing)}: "
            f"{', '.join(losing) or 'none'}.")
    cats = Counter(str(c) for c in mail["readiness"])
    lines.append("Readiness: " + "; ".join(f"{c} {cats[c]}" for c in READINESS[:-1]
                                          if cats[c]) + ".")
    return "\n".join(lines)
