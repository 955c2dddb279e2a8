"""MTA-STS (RFC 8461 §5): what a sender that honours a domain's policy does with its MX hosts.

With a valid policy in ``enforce`` mode, the sender refuses an MX host that no ``mx`` pattern
covers or that fails WebPKI, and delivers to the others. Without a valid record and policy it
behaves as if there were no MTA-STS. ``testing`` mode delivers anyway; its verdict still lists
what ``enforce`` would refuse. Unit: the domain with MX hosts; the verdicts are
:class:`~research.store.schema.StsVerdict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from research.analysis.core import table
from research.analysis.enforcement._shared import by_key, ranked_mail_domains, text
from research.analysis.enforcement._targets import (
    Outcome,
    outcomes,
    refused_accepted,
    targets,
)
from research.store.results import SurveyResults
from research.store.schema import (
    ACCEPTING,
    ENFORCEABLE_MODES,
    REFUSING,
    FetchStatus,
    PolicyStatus,
    RecordStatus,
    StsMode,
    StsVerdict,
)

_RECORD_VERDICTS: dict[str, StsVerdict] = {
    RecordStatus.NONE: StsVerdict.NONE, RecordStatus.INVALID: StsVerdict.INVALID_RECORD,
    RecordStatus.MULTIPLE: StsVerdict.MULTIPLE_RECORDS,
    RecordStatus.DNS_ERROR: StsVerdict.DNS_ERROR}
_ENFORCE_VERDICTS: dict[tuple[bool, bool], StsVerdict] = {
    # (some MX host refused, some MX host accepted)
    (True, True): StsVerdict.ENFORCE_DEGRADED, (True, False): StsVerdict.ENFORCE_BREAKS,
    (False, True): StsVerdict.ENFORCE_OK, (False, False): StsVerdict.ENFORCE_UNREACHABLE}

_STS_COLUMNS = ["domain", "rank", "verdict", "mode", "txt_status", "fetch_status",
                "policy_result", "mx_hosts", "refused", "refused_reasons", "accepted",
                "would_lose_mail", "breaks_if_enforced"]


def mta_sts_verdicts(results: SurveyResults) -> pd.DataFrame:
    """Per mail domain (rank order): the MTA-STS verdict
    (:class:`~research.store.schema.StsVerdict`) and what an enforcing sender does.
    ``refused``/``accepted`` list MX hosts in preference order (for ``testing``, what enforce
    mode would do); ``refused_reasons`` says ``"host: reason"``; ``would_lose_mail`` is true for
    ``enforce-breaks``; ``breaks_if_enforced`` for a valid enforce or testing policy under which
    every answering MX host is refused."""
    domains = ranked_mail_domains(results)
    sts = by_key(table(results, "mta_sts"), "domain")
    t = targets(results)
    by_domain = {str(d): g for d, g in t.groupby("domain", sort=False)}
    rows = []
    for dom in domains.itertuples(index=False):
        name = str(dom.domain)
        group = by_domain.get(name, t.iloc[0:0])
        found = outcomes(group, "sts_failure")
        row = sts.get(name)
        verdict, mode = _sts_verdict(row, found)
        refused = [h for h, o, _ in found if o in REFUSING]
        accepted = [h for h, o, _ in found if o in ACCEPTING]
        enforceable = mode in ENFORCEABLE_MODES
        rows.append({
            "domain": name, "rank": dom.rank, "verdict": verdict, "mode": mode,
            "txt_status": None if row is None else text(row["txt_status"]),
            "fetch_status": None if row is None else text(row["fetch_status"]),
            "policy_result": None if row is None else text(row["policy_result"]),
            "mx_hosts": [h for h, _, _ in found],
            "refused": refused if enforceable else [],
            "refused_reasons": [f"{h}: {w}" for h, o, w in found if o in REFUSING]
            if enforceable else [],
            "accepted": accepted if enforceable else [],
            "would_lose_mail": verdict == StsVerdict.ENFORCE_BREAKS,
            "breaks_if_enforced": enforceable and bool(refused) and not accepted,
        })
    return pd.DataFrame(rows, columns=_STS_COLUMNS).astype(
        {"domain": "string", "rank": "Int64", "verdict": "string", "mode": "string",
         "txt_status": "string", "fetch_status": "string", "policy_result": "string",
         "would_lose_mail": "bool", "breaks_if_enforced": "bool"})


def _sts_verdict(row: Mapping[Any, Any] | None, found: list[Outcome]
                 ) -> tuple[StsVerdict, str | None]:
    if row is None:
        return StsVerdict.NONE, None
    txt = text(row["txt_status"]) or RecordStatus.NONE
    if txt != RecordStatus.VALID:
        return _RECORD_VERDICTS.get(txt, StsVerdict.NONE), None
    if row["fetch_status"] != FetchStatus.OK:
        return StsVerdict.FETCH_FAILED, None
    if row["policy_status"] != PolicyStatus.VALID:
        return StsVerdict.INVALID_POLICY, None
    mode = str(row["mode"])
    if mode == StsMode.NONE:
        return StsVerdict.MODE_NONE, mode
    if mode == StsMode.TESTING:
        return StsVerdict.TESTING, mode
    return _ENFORCE_VERDICTS[refused_accepted(found)], mode
