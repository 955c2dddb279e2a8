"""Could a sender enforce TLS to these domains, and what would break? MTA-STS, DANE, WebPKI.

Pure functions of the survey's tables (``hosts``, ``certificates``, ``mx``, ``mta_sts``,
``tlsrpt``, ``dane``). Every output names its unit. The sender is modelled on the RFCs:

* **WebPKI** (what an MTA-STS sender demands of each MX host, RFC 8461 §4.1): STARTTLS, a chain
  to a trusted root, unexpired, valid for the MX host name: ``hosts.webpki_result == "ok"``.
  An MX host passes when every IP that answered SMTP passes; one that no IP answered is
  ``unreachable``, neither passing nor refused.
* Senders judge each IP they connect to. An MX host whose answering IPs are all refused is
  *refused*; one with some refused and some accepted IPs appears in both ``refused`` and
  ``accepted`` lists (a sender trying its IPs in turn still delivers, so the domain is
  ``degraded``, not lost).
* **MTA-STS** (RFC 8461 §5): with a valid policy in ``enforce`` mode, the sender refuses an MX
  host that no ``mx`` pattern covers or that fails WebPKI, and delivers to the others. Without
  a valid record and policy it behaves as if there were no MTA-STS. ``testing`` mode delivers
  anyway; its verdict still lists what ``enforce`` would refuse.
* **DANE** (RFC 7672): applies only when the domain's MX RRset is DNSSEC-secure (``mx-bogus``
  when its signatures fail: a validating sender cannot even find the MX hosts). Per MX host:
  no TLSA records, or unsigned ones → opportunistic TLS, as without DANE; bogus TLSA → refused
  (``dnssec-invalid``); secure TLSA with usable records (DANE-TA/EE) → every answering IP must
  offer STARTTLS and present a chain the records match (:func:`research.policy.dane.match_chain`,
  dates taken at the host's scan time), else refused (``starttls-not-supported``,
  ``tlsa-invalid``); secure TLSA without usable records → TLS required, not authenticated.

Verdicts per domain: MTA-STS ``none``, ``invalid-record``, ``multiple-records``, ``dns-error``
(no policy: the record), ``fetch-failed``, ``invalid-policy`` (no policy: the fetch or the
body), ``mode-none``, ``testing``, and in enforce mode ``enforce-ok`` (no MX host refused),
``enforce-degraded`` (some refused, some accepted), ``enforce-breaks`` (every MX host that
answers is refused: the domain loses mail), ``enforce-unreachable`` (none answers). DANE:
``none`` (no TLSA at any MX host), ``mx-insecure`` (TLSA, but the MX RRset is not signed),
``mx-bogus``, ``insecure`` (TLSA only without valid signatures), then with DANE in force ``ok``
(nothing refused, at least one MX host authenticated), ``unusable`` (nothing refused, none
authenticated: only unusable records), ``degraded``, ``breaks``, ``unreachable`` as above.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from research.analysis.core import MAIL_DNS_STATUSES, UNREACHED_STATUSES, mx_rows, table
from research.policy.dane import match_chain, parse_tlsa
from research.policy.pki import chain_from_rows
from research.store.results import SurveyResults
from research.store.schema import DnssecStatus, HostStatus, TlsaStatus, TlsResult

UNIT_HOST = "MX host"
UNIT_MAIL_DOMAIN = "domain with MX hosts"
UNIT_DANE_HOST = "MX host with DANE in force (per domain)"
UNIT_STS_DOMAIN = "domain with an MTA-STS record"

UNREACHABLE = "unreachable"
AUTHENTICATED = "authenticated"
ENCRYPTED = "encrypted"
OPPORTUNISTIC = "opportunistic"
NOT_COVERED = "not covered by the policy's mx patterns"

WEBPKI_FAILURES: tuple[str, ...] = (
    TlsResult.STARTTLS_NOT_SUPPORTED.value, TlsResult.CERTIFICATE_NOT_TRUSTED.value,
    TlsResult.CERTIFICATE_EXPIRED.value, TlsResult.CERTIFICATE_HOST_MISMATCH.value,
    TlsResult.VALIDATION_FAILURE.value)
"""WebPKI result types, most basic first: an MX host with several failing IPs reports the first."""
RESULT_ORDER: tuple[str, ...] = (TlsResult.OK.value, *WEBPKI_FAILURES,
                                 TlsResult.TLSA_INVALID.value, TlsResult.DNSSEC_INVALID.value,
                                 TlsResult.STS_POLICY_FETCH_ERROR.value,
                                 TlsResult.STS_WEBPKI_INVALID.value,
                                 TlsResult.STS_POLICY_INVALID.value)
"""Every result type the breakdown counts, in display order."""

_RECORD_VERDICTS = {"none": "none", "invalid": "invalid-record", "multiple": "multiple-records",
                    "dns_error": "dns-error"}

READY_ENFORCED_LOSING = "enforced: would lose mail"
READY_ENFORCED_DEGRADED = "enforced: some MX hosts refused"
READY_ENFORCED_OK = "enforced: every MX host passes"
READY_NOT_ENFORCED_OK = "not enforced: every MX host passes WebPKI"
READY_NOT_ENFORCED_FAILING = "not enforced: some MX host fails WebPKI"
READY_UNREACHABLE = "no reachable MX host"
READY_NOT_MEASURED = "not measured (no certificate verdicts)"
READY_NO_MAIL = "no MX hosts"
READINESS: tuple[str, ...] = (READY_ENFORCED_OK, READY_ENFORCED_DEGRADED, READY_ENFORCED_LOSING,
                              READY_NOT_ENFORCED_OK, READY_NOT_ENFORCED_FAILING,
                              READY_NOT_MEASURED, READY_UNREACHABLE, READY_NO_MAIL)
"""Every value of :func:`enforcement_readiness`'s ``readiness``, best first."""


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) or hasattr(value, "tolist") else []


def _first_failure(results: Iterable[str]) -> str:
    found = list(results)
    return min(found, key=lambda r: RESULT_ORDER.index(r) if r in RESULT_ORDER else 99)


# --- per IP and per MX host --------------------------------------------------------------------

def ip_dane_matches(results: SurveyResults) -> pd.DataFrame:
    """Per scanned (MX host, IP) with STARTTLS and TLSA records: whether the presented chain
    matches them. Columns ``mx_host``, ``ip``, ``dane_match`` (bool), ``dane_usage`` (3, 2 or
    null), ``dane_reason``. Dates are judged at the IP's ``scanned_at``."""
    hosts = table(results, "hosts")
    dane = table(results, "dane")
    records_of = {str(h): _list(r) for h, r in zip(dane["mx_host"], dane["tlsa_records"],
                                                    strict=True)}
    certs = table(results, "certificates")
    chains = {key: chain_from_rows(group.to_dict("records"))
              for key, group in certs.groupby(["mx_host", "ip"], sort=False)}
    rows = []
    for h in hosts.itertuples(index=False):
        texts = records_of.get(str(h.mx_host), [])
        if h.status != HostStatus.STARTTLS.value or not texts:
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


def host_webpki(results: SurveyResults) -> pd.DataFrame:
    """Per unique MX host: ``webpki_result`` lifted over its IPs (``ok`` when every answering IP
    is ok, else the most basic failure of :data:`WEBPKI_FAILURES`; null when no IP answered),
    ``ips``, ``ips_answered``, ``failures`` (``"ip: result"`` of failing IPs), and the
    certificate columns ``cert_matches_mx``, ``cert_chain_trusted``, ``cert_expired`` (all
    answering IPs), ``cert_key`` (e.g. ``RSA 2048``) of the first IP with a certificate."""
    hosts = table(results, "hosts")
    rows = []
    for name, group in hosts.groupby("mx_host", sort=True):
        answered = group[~group["status"].isin(UNREACHED_STATUSES).fillna(True).astype(bool)]
        verdicts = [str(r) for r in answered["webpki_result"].dropna()]
        failing = [(ip, r) for ip, r in zip(answered["ip"], answered["webpki_result"],
                                            strict=True) if isinstance(r, str) and r != "ok"]
        result = None
        if verdicts:
            result = _first_failure(r for _, r in failing) if failing else TlsResult.OK.value
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
            "cert_matches_mx": _all_known(with_cert["cert_matches_mx"]),
            "cert_chain_trusted": _all_known(with_cert["cert_chain_trusted"]),
            "cert_expired": _any_known(with_cert["cert_expired"]),
            "cert_key": key,
        })
    return pd.DataFrame(rows, columns=["mx_host", "webpki_result", "ips", "ips_answered",
                                       "failures", "cert_matches_mx", "cert_chain_trusted",
                                       "cert_expired", "cert_key"]).astype(
        {"mx_host": "string", "webpki_result": "string", "cert_matches_mx": "boolean",
         "cert_chain_trusted": "boolean", "cert_expired": "boolean", "cert_key": "string"})


def _all_known(values: pd.Series) -> bool | None:
    known = values.dropna()
    return bool(known.astype(bool).all()) if len(known) else None


def _any_known(values: pd.Series) -> bool | None:
    known = values.dropna()
    return bool(known.astype(bool).any()) if len(known) else None


def certificate_names(results: SurveyResults) -> pd.DataFrame:
    """Per (domain, MX host) of the mail domains: is the certificate valid for the MX host name
    (``matches_mx``) and for the recipient domain (``matches_domain``)? True when every leaf the
    host's IPs presented covers the name (RFC 6125 rules); null when no leaf was seen.
    Senders check the MX host name (RFC 7672, RFC 8461); a certificate for the domain is what a
    sender without the MX name's authentication (DNSSEC or MTA-STS) would need."""
    from research.policy.certs import name_matches

    mx = mx_rows(results)
    certs = table(results, "certificates")
    leaves = certs[certs["position"] == 0]
    names = {str(h): [_list(s) for s in g["sans"]] for h, g in leaves.groupby("mx_host")}
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


# --- per (domain, MX host, IP): what each enforcing sender does ---------------------------------

_TARGET_COLUMNS = ["domain", "mx_host", "ip", "reached", "webpki_result", "sts_mode", "covered",
                   "sts_failure", "dane_state", "dane_failure"]


def targets(results: SurveyResults) -> pd.DataFrame:
    """Per (mail domain, MX host, IP): ``reached``, ``webpki_result``, ``sts_mode`` (the mode
    of a valid MTA-STS policy, else null), ``covered`` (an ``mx`` pattern covers the host; null
    without a policy), ``sts_failure`` (why an MTA-STS sender in that mode refuses the target,
    as an RFC 8460 type or :data:`NOT_COVERED`; null if it accepts or there is no policy),
    ``dane_state`` (:data:`OPPORTUNISTIC` when DANE does not apply, else ``required``) and
    ``dane_failure`` (the RFC 8460 type a DANE sender refuses the target with, or null).
    Unreached targets carry no failures: a sender just moves on."""
    mx = mx_rows(results)
    hosts = table(results, "hosts")
    sts = _by_key(table(results, "mta_sts"), "domain")
    dane = {(str(r["domain"]), str(r["mx_host"])): r
            for r in table(results, "dane").to_dict("records")}
    m = ip_dane_matches(results)
    matches = {(str(h), _str(ip)): bool(ok)
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
            status = _str(ip.get("status"))
            reached = status is not None and status not in UNREACHED_STATUSES
            webpki = _str(ip.get("webpki_result"))
            sts_failure = None
            if mode in ("enforce", "testing") and reached:
                if covered is False:
                    sts_failure = NOT_COVERED
                elif webpki != TlsResult.OK.value:
                    sts_failure = webpki or TlsResult.VALIDATION_FAILURE.value
            state, dane_failure = _dane_ip(d, status, reached, matches, host, _str(ip.get("ip")))
            rows.append({"domain": domain, "mx_host": host, "ip": _str(ip.get("ip")),
                         "reached": reached, "webpki_result": webpki, "sts_mode": mode,
                         "covered": covered, "sts_failure": sts_failure, "dane_state": state,
                         "dane_failure": dane_failure})
    return pd.DataFrame(rows, columns=_TARGET_COLUMNS).astype(
        {"domain": "string", "mx_host": "string", "ip": "string", "reached": "bool",
         "webpki_result": "string", "sts_mode": "string", "covered": "boolean",
         "sts_failure": "string", "dane_state": "string", "dane_failure": "string"})


def _by_key(frame: pd.DataFrame, key: str) -> dict[str, dict[Any, Any]]:
    """Rows as dicts by the string value of ``key`` (the last row wins on repeats)."""
    return {str(r[key]): r for r in frame.to_dict("records")}


def _sts_mode(sts: dict[str, dict[Any, Any]], domain: str, host: str
              ) -> tuple[str | None, bool | None]:
    row = sts.get(domain)
    if row is None:
        return None, None
    if row["policy_status"] != "valid" or not isinstance(row["mode"], str):
        return None, None
    if row["mode"] == "none":
        return "none", None
    return str(row["mode"]), host not in set(_list(row["mx_not_covered"]))


def _dane_state(d: Mapping[Any, Any] | None) -> tuple[str, str | None]:
    """(``opportunistic``/``required``/``bogus``/``encrypt``, failure) for one (domain, host)."""
    if d is None:
        return OPPORTUNISTIC, None
    if d["mx_dnssec"] == DnssecStatus.BOGUS.value:
        return "bogus", TlsResult.DNSSEC_INVALID.value
    if d["mx_dnssec"] != DnssecStatus.SECURE.value:
        return OPPORTUNISTIC, None
    if d["tlsa_status"] == TlsaStatus.DNS_ERROR.value:
        return "bogus", TlsResult.DNSSEC_INVALID.value
    if d["tlsa_status"] != TlsaStatus.FOUND.value:
        return OPPORTUNISTIC, None
    if d["tlsa_dnssec"] == DnssecStatus.BOGUS.value:
        return "bogus", TlsResult.DNSSEC_INVALID.value
    if d["tlsa_dnssec"] != DnssecStatus.SECURE.value:
        return OPPORTUNISTIC, None
    usable = d["usable_records"]
    return ("required" if pd.notna(usable) and int(usable) > 0 else "encrypt"), None


def _dane_ip(d: Mapping[Any, Any] | None, status: str | None, reached: bool,
             matches: dict[tuple[str, str | None], bool], host: str, ip: str | None
             ) -> tuple[str, str | None]:
    state, failure = _dane_state(d)
    if state == OPPORTUNISTIC:
        return state, None
    if state == "bogus":
        # The MX or TLSA lookup fails validation: no connection is even attempted.
        return "required", failure
    if not reached:
        return "required", None
    if status != HostStatus.STARTTLS.value:
        return "required", TlsResult.STARTTLS_NOT_SUPPORTED.value
    if state == "encrypt":
        return "required", None
    matched = matches.get((host, ip), False)
    return "required", None if matched else TlsResult.TLSA_INVALID.value


# --- per domain ----------------------------------------------------------------------------------

def _lift(group: pd.DataFrame, failure: str) -> tuple[str, str | None]:
    """(outcome, first failure) of one MX host's targets (its IPs). The outcome is
    ``accepted`` (every answering IP passes), ``refused`` (every answering IP fails),
    ``partial`` (some of each: a sender trying the IPs in turn still delivers) or
    ``unreachable`` (no IP answered)."""
    reached = group[group["reached"]]
    failures = [str(f) for f in reached[failure].dropna()]
    passing = int(reached[failure].isna().sum())
    if not len(reached):
        return UNREACHABLE, None
    if not failures:
        return "accepted", None
    why = NOT_COVERED if NOT_COVERED in failures else _first_failure(failures)
    return ("partial" if passing else "refused"), why


_REFUSED = ("refused", "partial")
_ACCEPTED = ("accepted", "partial")


def _outcomes(t: pd.DataFrame, failure: str) -> list[tuple[str, str, str | None]]:
    """(MX host, outcome, failure) in MX preference order for one domain's targets."""
    out = []
    for host, group in t.groupby("mx_host", sort=False):
        outcome, why = _lift(group, failure)
        out.append((str(host), outcome, why))
    return out


_STS_COLUMNS = ["domain", "rank", "verdict", "mode", "txt_status", "fetch_status",
                "policy_result", "mx_hosts", "refused", "refused_reasons", "accepted",
                "would_lose_mail", "breaks_if_enforced"]


def mta_sts_verdicts(results: SurveyResults) -> pd.DataFrame:
    """Per mail domain (rank order): the MTA-STS verdict (module doc) and what an enforcing
    sender does. ``refused``/``accepted`` list MX hosts in preference order (for ``testing``,
    what enforce mode would do); ``refused_reasons`` says ``"host: reason"``;
    ``would_lose_mail`` is true for ``enforce-breaks``; ``breaks_if_enforced`` for a valid
    enforce or testing policy under which every answering MX host is refused."""
    domains = _mail_domains(results)
    sts = _by_key(table(results, "mta_sts"), "domain")
    t = targets(results)
    by_domain = {str(d): g for d, g in t.groupby("domain", sort=False)}
    rows = []
    for dom in domains.itertuples(index=False):
        name = str(dom.domain)
        group = by_domain.get(name, t.iloc[0:0])
        outcomes = _outcomes(group, "sts_failure")
        row = sts.get(name)
        verdict, mode = _sts_verdict(row, outcomes)
        refused = [h for h, o, _ in outcomes if o in _REFUSED]
        accepted = [h for h, o, _ in outcomes if o in _ACCEPTED]
        enforceable = mode in ("enforce", "testing")
        rows.append({
            "domain": name, "rank": dom.rank, "verdict": verdict, "mode": mode,
            "txt_status": None if row is None else _str(row["txt_status"]),
            "fetch_status": None if row is None else _str(row["fetch_status"]),
            "policy_result": None if row is None else _str(row["policy_result"]),
            "mx_hosts": [h for h, _, _ in outcomes],
            "refused": refused if enforceable else [],
            "refused_reasons": [f"{h}: {w}" for h, o, w in outcomes if o in _REFUSED]
            if enforceable else [],
            "accepted": accepted if enforceable else [],
            "would_lose_mail": verdict == "enforce-breaks",
            "breaks_if_enforced": enforceable and bool(refused) and not accepted,
        })
    return pd.DataFrame(rows, columns=_STS_COLUMNS).astype(
        {"domain": "string", "rank": "Int64", "verdict": "string", "mode": "string",
         "txt_status": "string", "fetch_status": "string", "policy_result": "string",
         "would_lose_mail": "bool", "breaks_if_enforced": "bool"})


def _sts_verdict(row: Mapping[Any, Any] | None, outcomes: list[tuple[str, str, str | None]]
                 ) -> tuple[str, str | None]:
    if row is None:
        return "none", None
    txt = _str(row["txt_status"]) or "none"
    if txt != "valid":
        return _RECORD_VERDICTS.get(txt, "none"), None
    if row["fetch_status"] != "ok":
        return "fetch-failed", None
    if row["policy_status"] != "valid":
        return "invalid-policy", None
    mode = str(row["mode"])
    if mode == "none":
        return "mode-none", mode
    if mode == "testing":
        return "testing", mode
    return _enforce_verdict(outcomes, "enforce-"), mode


def _enforce_verdict(outcomes: list[tuple[str, str, str | None]], prefix: str) -> str:
    refused = any(o in _REFUSED for _, o, _ in outcomes)
    accepted = any(o in _ACCEPTED for _, o, _ in outcomes)
    if refused:
        return prefix + ("degraded" if accepted else "breaks")
    return prefix + ("ok" if accepted else UNREACHABLE)


def dane_hosts(results: SurveyResults) -> pd.DataFrame:
    """Per (mail domain, MX host): what a DANE sender does with the host. ``outcome`` is
    ``authenticated`` (every answering IP matched usable TLSA records), ``encrypted`` (secure
    TLSA, none usable: TLS without authentication), ``opportunistic`` (DANE does not apply: no
    or insecure TLSA, or an MX RRset that is not secure), ``unreachable``, or the RFC 8460 type
    it is refused with (``tlsa-invalid``, ``dnssec-invalid``, ``starttls-not-supported``)."""
    t = targets(results)
    matches = ip_dane_matches(results)
    matched = {str(h) for h, g in matches.groupby("mx_host") if g["dane_match"].all()}
    rows = []
    for (domain, host), group in t.groupby(["domain", "mx_host"], sort=False):
        outcome, why = _lift(group, "dane_failure")
        state = "required" if (group["dane_state"] == "required").any() else OPPORTUNISTIC
        if outcome in _REFUSED:
            label = str(why)
        elif outcome == UNREACHABLE:
            label = UNREACHABLE
        elif state == OPPORTUNISTIC:
            label = OPPORTUNISTIC
        else:
            label = AUTHENTICATED if str(host) in matched else ENCRYPTED
        rows.append({"domain": domain, "mx_host": host, "outcome": label})
    return pd.DataFrame(rows, columns=["domain", "mx_host", "outcome"]).astype("string")


_DANE_COLUMNS = ["domain", "rank", "verdict", "mx_dnssec", "dnssec_method", "mx_hosts",
                 "tlsa_hosts", "dane_hosts", "coverage", "authenticated", "refused",
                 "refused_reasons", "would_lose_mail"]


def dane_verdicts(results: SurveyResults) -> pd.DataFrame:
    """Per mail domain (rank order): the DANE verdict (module doc). ``tlsa_hosts``: MX hosts
    with TLSA records (any DNSSEC state); ``dane_hosts``: those where DANE is in force
    (secure MX RRset and secure or bogus TLSA); ``coverage``: their share of the MX set (NaN
    when the MX RRset is not secure); ``authenticated``: MX hosts whose every answering IP
    matched usable records; ``refused``/``refused_reasons`` as for MTA-STS;
    ``would_lose_mail`` for ``breaks`` and ``mx-bogus``."""
    domains = _mail_domains(results)
    dane = table(results, "dane")
    t = targets(results)
    by_domain = {str(d): g for d, g in t.groupby("domain", sort=False)}
    dane_by_domain = {str(d): g for d, g in dane.groupby("domain", sort=False)}
    matches = ip_dane_matches(results)
    matched_hosts = {str(h) for h, g in matches.groupby("mx_host") if g["dane_match"].all()}
    rows = []
    for dom in domains.itertuples(index=False):
        name = str(dom.domain)
        group = by_domain.get(name, t.iloc[0:0])
        d = dane_by_domain.get(name, dane.iloc[0:0])
        mx_hosts = list(dict.fromkeys(str(h) for h in group["mx_host"]))
        mx_dnssec = _str(d["mx_dnssec"].iloc[0]) if len(d) else None
        method = _str(d["dnssec_method"].dropna().iloc[0]) if d["dnssec_method"].notna().any() \
            else None
        tlsa_hosts = [str(h) for h, s in zip(d["mx_host"], d["tlsa_status"], strict=True)
                      if s == TlsaStatus.FOUND.value]
        in_force = [str(h) for h in group.loc[group["dane_state"] == "required", "mx_host"]]
        dane_hosts = list(dict.fromkeys(in_force))
        outcomes = _outcomes(group, "dane_failure")
        refused = [(h, w) for h, o, w in outcomes if o in _REFUSED]
        authenticated = [h for h, o, _ in outcomes if o == "accepted" and h in dane_hosts
                         and h in matched_hosts and _usable(d, h)]
        verdict = _dane_verdict(mx_dnssec, tlsa_hosts, dane_hosts, d, outcomes, authenticated)
        secure = mx_dnssec == DnssecStatus.SECURE.value
        rows.append({
            "domain": name, "rank": dom.rank, "verdict": verdict, "mx_dnssec": mx_dnssec,
            "dnssec_method": method, "mx_hosts": mx_hosts, "tlsa_hosts": tlsa_hosts,
            "dane_hosts": dane_hosts,
            "coverage": len(dane_hosts) / len(mx_hosts) if secure and mx_hosts else math.nan,
            "authenticated": authenticated, "refused": [h for h, _ in refused],
            "refused_reasons": [f"{h}: {w}" for h, w in refused],
            "would_lose_mail": verdict in ("breaks", "mx-bogus"),
        })
    return pd.DataFrame(rows, columns=_DANE_COLUMNS).astype(
        {"domain": "string", "rank": "Int64", "verdict": "string", "mx_dnssec": "string",
         "dnssec_method": "string", "coverage": "float64", "would_lose_mail": "bool"})


def _usable(d: pd.DataFrame, host: str) -> bool:
    rows = d[d["mx_host"] == host]
    return bool(len(rows)) and pd.notna(rows["usable_records"].iloc[0]) and int(
        rows["usable_records"].iloc[0]) > 0


def _dane_verdict(mx_dnssec: str | None, tlsa_hosts: list[str], dane_hosts: list[str],
                  d: pd.DataFrame, outcomes: list[tuple[str, str, str | None]],
                  authenticated: list[str]) -> str:
    if mx_dnssec == DnssecStatus.BOGUS.value:
        return "mx-bogus"
    if not tlsa_hosts and not dane_hosts:
        return "none"
    if mx_dnssec != DnssecStatus.SECURE.value:
        return "mx-insecure"
    if not dane_hosts:
        return "insecure"
    verdict = _enforce_verdict(outcomes, "")
    if verdict == "ok" and not authenticated:
        return "unusable"
    return verdict


def _mail_domains(results: SurveyResults) -> pd.DataFrame:
    domains = table(results, "domains")
    mail = domains["dns_status"].isin(MAIL_DNS_STATUSES).fillna(False).astype(bool)
    return domains[mail].sort_values(["rank", "domain"]).reset_index(drop=True)


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
    sts = _by_key(mta_sts_verdicts(results), "domain")
    dane = _by_key(dane_verdicts(results), "domain")
    report = _by_key(table(results, "tlsrpt"), "domain")
    names = certificate_names(results)
    webpki = host_webpki(results)
    web = {str(h): _str(r) for h, r in zip(webpki["mx_host"], webpki["webpki_result"],
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
        failures = [f"{h}: {r}" for h, r in answered.items() if r != TlsResult.OK.value]
        n = names[names["domain"] == name]
        s, d, r = sts.get(name), dane.get(name), report.get(name)
        row = {
            "domain": name, "rank": dom.rank, "dns_status": dom.dns_status,
            "mx_hosts": hosts,
            "webpki_ready": (bool(answered) and not failures) if mail else None,
            "webpki_failures": failures,
            "cert_matches_mx": _all_known(n["matches_mx"]),
            "cert_matches_domain": _all_known(n["matches_domain"]),
            "mta_sts_verdict": None if s is None else s["verdict"],
            "mta_sts_mode": None if s is None else s["mode"],
            "mta_sts_refused": [] if s is None else list(s["refused"]),
            "mta_sts_would_lose_mail": None if s is None else bool(s["would_lose_mail"]),
            "tlsrpt_status": None if r is None else _str(r["status"]),
            "tlsrpt_rua": [] if r is None else _list(r["rua"]),
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


_ENFORCED = {"enforce-ok": READY_ENFORCED_OK, "enforce-degraded": READY_ENFORCED_DEGRADED,
             "enforce-breaks": READY_ENFORCED_LOSING, "ok": READY_ENFORCED_OK,
             "unusable": READY_ENFORCED_OK, "degraded": READY_ENFORCED_DEGRADED,
             "breaks": READY_ENFORCED_LOSING, "mx-bogus": READY_ENFORCED_LOSING}


def _readiness(row: dict[str, Any], mail: bool, answered: bool, reached: bool) -> str:
    if not mail:
        return READY_NO_MAIL
    enforced = [_ENFORCED[v] for v in (row["mta_sts_verdict"], row["dane_verdict"])
                if v in _ENFORCED]
    if enforced:
        # The worst of the two mechanisms decides: a sender may honour either.
        return max(enforced, key=READINESS.index)
    if not reached:
        return READY_UNREACHABLE
    if not answered:
        return READY_NOT_MEASURED
    return READY_NOT_ENFORCED_OK if row["webpki_ready"] else READY_NOT_ENFORCED_FAILING


SUMMARY_COLUMNS = ["metric", "unit", "count", "total", "share"]


def readiness_summary(results: SurveyResults) -> pd.DataFrame:
    """Enforcement shares as a tidy table (``metric, unit, count, total, share``), per mail
    domain (:data:`UNIT_MAIL_DOMAIN`) and per unique MX host (:data:`UNIT_HOST`, over the hosts
    that answered SMTP). ``share`` is NaN when ``total`` is 0."""
    ready = enforcement_readiness(results)
    mail = ready[ready["readiness"] != READY_NO_MAIL]
    sts = mta_sts_verdicts(results)
    dane = dane_verdicts(results)
    report = table(results, "tlsrpt")
    n = len(mail)
    rows = [_summary_row(f"readiness: {c}", UNIT_MAIL_DOMAIN, int((mail["readiness"] == c).sum()),
                         n) for c in READINESS[:-1]]
    sts_rows: list[tuple[str, Any]] = [
        ("MTA-STS record published (valid)", sts["txt_status"] == "valid"),
        ("MTA-STS policy fetched and valid", ~sts["verdict"].isin(
            ["none", "invalid-record", "multiple-records", "dns-error", "fetch-failed",
             "invalid-policy"])),
        ("MTA-STS mode enforce", sts["mode"] == "enforce"),
        ("MTA-STS mode testing", sts["mode"] == "testing"),
        ("MTA-STS enforce, every MX host passes", sts["verdict"] == "enforce-ok"),
        ("MTA-STS enforce loses mail", sts["would_lose_mail"]),
        ("MTA-STS policy would lose mail if enforced", sts["breaks_if_enforced"]),
        ("TLS-RPT record valid", report["status"] == "valid"),
        ("DANE in force", dane["verdict"].isin(["ok", "unusable", "degraded", "breaks",
                                                 "mx-bogus"])),
        ("DANE authenticates, nothing refused", dane["verdict"] == "ok"),
        ("DANE loses mail", dane["would_lose_mail"]),
        ("every MX host passes WebPKI", mail["webpki_ready"]),
        ("certificate valid for the MX host name (all MX hosts)", mail["cert_matches_mx"]),
        ("certificate valid for the recipient domain (all MX hosts)",
         mail["cert_matches_domain"]),
    ]
    for metric, mask in sts_rows:
        rows.append(_summary_row(metric, UNIT_MAIL_DOMAIN,
                                 int(mask.astype("boolean").fillna(False).sum()), n))
    hosts = host_webpki(results)
    answered = hosts[hosts["webpki_result"].notna()]
    h = len(answered)
    rows.append(_summary_row("passes WebPKI", UNIT_HOST,
                             int((answered["webpki_result"] == "ok").sum()), h))
    for metric, column in (("certificate valid for the MX host name", "cert_matches_mx"),
                           ("chain trusted (names aside)", "cert_chain_trusted"),
                           ("certificate expired", "cert_expired")):
        rows.append(_summary_row(metric, UNIT_HOST,
                                 int(answered[column].fillna(False).astype(bool).sum()), h))
    dane_table = table(results, "dane").drop_duplicates("mx_host")
    scanned = dane_table[dane_table["mx_host"].isin(answered["mx_host"])]
    found = scanned["tlsa_status"] == TlsaStatus.FOUND.value
    rows.append(_summary_row("TLSA records published", UNIT_HOST, int(found.sum()), h))
    rows.append(_summary_row("TLSA records DNSSEC-secure", UNIT_HOST,
                             int((found & (scanned["tlsa_dnssec"] == "secure")).sum()), h))
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

    * :data:`UNIT_HOST`: each answering MX host's lifted ``webpki_result`` (``ok`` included);
    * :data:`UNIT_DANE_HOST`: (domain, MX host) pairs with DANE in force, ``ok`` or the DANE
      failure (``tlsa-invalid``, ``dnssec-invalid``, ``starttls-not-supported``);
    * :data:`UNIT_STS_DOMAIN`: domains with a valid MTA-STS record, ``ok`` when the policy was
      fetched and valid, else its ``sts-*`` failure.

    Only result types that occur are listed, in :data:`RESULT_ORDER`."""
    rows: list[dict[str, Any]] = []
    hosts = host_webpki(results)
    rows += _counts(UNIT_HOST, [str(r) for r in hosts["webpki_result"].dropna()])
    t = targets(results)
    dane_pairs = t[t["dane_state"] == "required"]
    outcomes = [w or TlsResult.OK.value
                for _, g in dane_pairs.groupby(["domain", "mx_host"], sort=False)
                for _, o, w in [("", *_lift(g, "dane_failure"))] if o != UNREACHABLE]
    rows += _counts(UNIT_DANE_HOST, outcomes)
    sts = table(results, "mta_sts")
    valid = sts[sts["txt_status"] == "valid"]
    rows += _counts(UNIT_STS_DOMAIN, [str(r) if isinstance(r, str) else TlsResult.OK.value
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
    mail = ready[ready["readiness"] != READY_NO_MAIL]
    n = len(mail)
    if not n:
        return "No domain with MX hosts: nothing to enforce TLS to."
    hosts = host_webpki(results)
    answered = hosts[hosts["webpki_result"].notna()]
    ok = int((answered["webpki_result"] == "ok").sum())
    failures = Counter(str(r) for r in answered["webpki_result"] if r != "ok")
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
    published = sts[sts["txt_status"] == "valid"]
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
            f"enforce mode {modes['enforce']}, testing {modes['testing']}, none {modes['none']}"
            f"; no usable policy behind the record: {verdicts['fetch-failed']} fetch failed, "
            f"{verdicts['invalid-policy']} invalid. Enforce mode loses mail for "
            f"{len(losing)}: {', '.join(losing) or 'none'}.")
    report = table(results, "tlsrpt")
    valid = report[report["status"] == "valid"]
    if not looked_up:
        pass
    elif valid.empty:
        lines.append(f"TLS-RPT: none published (0 of {n} domains have a valid _smtp._tls "
                     "record).")
    else:
        ignored = int(report["status"].isin(["invalid", "multiple"]).sum())
        lines.append(f"TLS-RPT: {len(valid)} of {n} domains ask for reports; {ignored} publish "
                     "records senders must ignore (invalid or several).")
    dane = dane_verdicts(results)
    counts = Counter(str(v) for v in dane["verdict"])
    in_force = sum(counts[v] for v in ("ok", "unusable", "degraded", "breaks", "mx-bogus"))
    if not looked_up:
        pass
    elif not sum(len(t) for t in dane["tlsa_hosts"]):
        lines.append(f"DANE: none published (no TLSA records at any MX host of the {n} "
                     "domains).")
    else:
        losing = [str(d) for d in dane.loc[dane["would_lose_mail"], "domain"]]
        lines.append(
            f"DANE: in force for {in_force} of {n} domains (ok {counts['ok']}, only unusable "
            f"records {counts['unusable']}, some MX hosts refused {counts['degraded']}); TLSA "
            f"published but not applied: {counts['insecure']} unsigned, "
            f"{counts['mx-insecure']} with an unsigned MX RRset. DANE loses mail for "
            f"{len(losing)}: {', '.join(losing) or 'none'}.")
    cats = Counter(str(c) for c in mail["readiness"])
    lines.append("Readiness: " + "; ".join(f"{c} {cats[c]}" for c in READINESS[:-1]
                                          if cats[c]) + ".")
    return "\n".join(lines)
