"""What a sending mail server's TLS policy would cost: which domains it could still deliver to.

The sender is modelled on RFC 5321 §5 and common MTAs (Postfix ``smtp_tls_security_level``):

* It tries the MX hosts in preference order (lowest first; equal preferences in host-name order,
  since any order is allowed), and each host's scanned IPs in address order.
* A target that could not be reached (timeout, refused, unresolved, SMTP error) or was not
  scanned is skipped: the sender moves on to the next one.
* With ``require_starttls`` (Postfix ``encrypt``), a target that fails the policy (no STARTTLS,
  version too old, certificate name mismatch, no forward-secret suite) is skipped too, and mail
  goes to the first target that satisfies it; if none does, the domain is unreachable.
* Without it (opportunistic, Postfix ``may``), the first reachable target gets the mail; the TLS
  knobs then only decide whether it travels encrypted. A target failing them receives it in
  clear text (MTAs retry without TLS after a failed handshake), so opportunistic TLS never
  loses a domain, it only loses encryption.
* A sender that honours MTA-STS (``honour_mta_sts``) or DANE (``honour_dane``) also refuses the
  targets those protocols forbid (see :mod:`research.analysis.enforcement`: an MX host outside
  an enforce-mode policy's patterns or failing WebPKI; a DANE host whose TLSA records do not
  match, or whose DNSSEC fails), whatever ``require_starttls`` says: for those domains there is
  no clear-text fallback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from research.analysis import enforcement
from research.analysis.core import (
    AnalysisError,
    dns_category,
    ip_frame,
    mx_rows,
    table,
    version_label,
    version_rank,
)
from research.store.results import SurveyResults
from research.store.schema import (
    MAIL_DNS_STATUSES,
    NOT_REACHED,
    HostStatus,
    PolicyReason,
    StsMode,
)

POLICY_VERSIONS: tuple[str, ...] = ("TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")
"""Allowed values of :attr:`Policy.min_version` (besides None)."""
BASELINE_LABEL = "opportunistic (no requirement)"

_STATUS_REASONS: dict[str, PolicyReason] = {
    HostStatus.NO_STARTTLS: PolicyReason.NO_STARTTLS,
    HostStatus.STARTTLS_REJECTED: PolicyReason.STARTTLS_REJECTED,
    HostStatus.TLS_FAILED: PolicyReason.TLS_FAILED,
    HostStatus.SMTP_ERROR: PolicyReason.SMTP_ERROR,
}


@dataclass(frozen=True)
class Policy:
    """A sending server's TLS requirements. ``Policy()`` is the opportunistic baseline.

    Raises :class:`~research.analysis.core.AnalysisError` if ``min_version`` is not None or one
    of :data:`POLICY_VERSIONS`.
    """

    require_starttls: bool = False
    """Refuse to send in clear text: skip MX targets that fail the policy."""
    min_version: str | None = None
    """Oldest acceptable protocol version, e.g. ``"TLS 1.2"``; None accepts any."""
    require_cert_match: bool = False
    """The certificate must be valid for the MX host name (``cert_matches_mx``)."""
    require_forward_secrecy: bool = False
    """The target must accept a forward-secret suite at a version ≥ ``min_version``."""
    honour_mta_sts: bool = False
    """Apply domains' MTA-STS policies in enforce mode (RFC 8461)."""
    honour_dane: bool = False
    """Apply DANE where the MX RRset and the TLSA records are DNSSEC-secure (RFC 7672)."""

    def __post_init__(self) -> None:
        if self.min_version is not None and self.min_version not in POLICY_VERSIONS:
            raise AnalysisError(f"min_version must be None or one of {', '.join(POLICY_VERSIONS)}"
                                f", not {self.min_version!r}")

    @property
    def label(self) -> str:
        """Short human description, e.g. ``"STARTTLS required, TLS ≥ 1.2"``."""
        reqs = []
        if self.min_version is not None:
            reqs.append(f"TLS ≥ {self.min_version.removeprefix('TLS ')}")
        if self.require_cert_match:
            reqs.append("cert matches MX")
        if self.require_forward_secrecy:
            reqs.append("forward secrecy")
        honours = [name for name, on in (("MTA-STS", self.honour_mta_sts),
                                         ("DANE", self.honour_dane)) if on]
        honour = f"; honours {' and '.join(honours)}" if honours else ""
        if self.require_starttls:
            return ", ".join(["STARTTLS required", *reqs]) + honour
        if not reqs:
            return BASELINE_LABEL + honour
        return "opportunistic, " + ", ".join(reqs) + " if possible" + honour


def default_policies() -> list[Policy]:
    """The sweep's default: every minimum version (none, TLS 1.0 … 1.3), opportunistic and with
    STARTTLS required; the first is the baseline."""
    versions: list[str | None] = [None, *POLICY_VERSIONS]
    return [Policy(require_starttls=req, min_version=v) for req in (False, True) for v in versions]


@dataclass(frozen=True)
class _Context:
    """What every policy evaluation needs, built once per survey."""

    domains: pd.DataFrame
    targets: dict[str, pd.DataFrame]


def _context(results: SurveyResults) -> _Context:
    domains = table(results, "domains")[["domain", "rank", "dns_status"]].reset_index(drop=True)
    targets = mx_rows(results).merge(ip_frame(results), on="mx_host", how="left")
    enforced = enforcement.targets(results)[["domain", "mx_host", "ip", "sts_mode",
                                             "sts_failure", "dane_failure"]]
    targets = targets.merge(enforced.astype(object), on=["domain", "mx_host", "ip"], how="left")
    targets = targets.sort_values(["domain", "preference", "mx_host", "ip"], na_position="last")
    return _Context(domains, {str(k): g for k, g in targets.groupby("domain", sort=False)})


IMPACT_COLUMNS = ["domain", "rank", "dns_status", "reachable", "encrypted", "mx_host", "ip",
                  "preference", "backup", "reason", "attempts"]


def policy_impact(results: SurveyResults, policy: Policy) -> pd.DataFrame:
    """Per input domain, whether a sender with ``policy`` can deliver, and where.

    Columns: ``domain``, ``rank``, ``dns_status``; ``reachable`` (bool); ``encrypted`` (bool:
    delivered over TLS meeting the policy's TLS requirements); ``mx_host``, ``ip``, ``preference``
    of the target delivered to (null if none); ``backup`` (that target is not at the domain's
    lowest preference); ``reason``: when unreachable, why (the distinct failures of the reachable
    targets in the order tried, e.g. ``"no STARTTLS"``, ``"max TLS 1.0 < TLS 1.2"``, or ``"no
    reachable MX"``, or the DNS outcome such as ``"null MX"``); when delivered in clear text
    under an opportunistic policy, why not encrypted; else null. ``attempts``: every target tried
    and its outcome, ``"host [ip]: reason"`` joined by ``"; "``. Rows in ``domains`` order.
    """
    return _impact(_context(results), policy)


def _impact(ctx: _Context, policy: Policy) -> pd.DataFrame:
    rows = []
    for dom in ctx.domains.itertuples(index=False):
        base = {"domain": dom.domain, "rank": dom.rank, "dns_status": dom.dns_status}
        status = dom.dns_status
        if not isinstance(status, str) or status not in MAIL_DNS_STATUSES:
            rows.append({**base, **_undelivered(dns_category(status), "")})
            continue
        rows.append({**base, **_walk(ctx.targets.get(str(dom.domain)), policy)})
    out = pd.DataFrame(rows, columns=IMPACT_COLUMNS)
    return out.astype({"domain": "string", "rank": "Int64", "dns_status": "string",
                       "reachable": "bool", "encrypted": "bool", "mx_host": "string",
                       "ip": "string", "preference": "Int64", "backup": "boolean",
                       "reason": "string", "attempts": "string"})


def _undelivered(reason: str, attempts: str) -> dict[str, Any]:
    return {"reachable": False, "encrypted": False, "mx_host": None, "ip": None,
            "preference": None, "backup": None, "reason": reason, "attempts": attempts}


def _walk(targets: pd.DataFrame | None, policy: Policy) -> dict[str, Any]:
    """Try the domain's targets in order, as the module doc describes."""
    if targets is None or targets.empty:
        return _undelivered(PolicyReason.NO_MX_HOST, "")
    min_rank = version_rank(policy.min_version)
    first_preference = targets["preference"].min()
    attempts: list[str] = []
    failures: list[str] = []
    for t in targets.itertuples(index=False):
        where = f"{t.mx_host} [{t.ip}]" if isinstance(t.ip, str) else str(t.mx_host)
        if not isinstance(t.status, str):
            attempts.append(f"{where}: {PolicyReason.NOT_SCANNED}")
            continue
        if t.status in NOT_REACHED:
            attempts.append(f"{where}: {_STATUS_REASONS.get(t.status, t.status)}")
            continue
        enforced = _enforced_failure(t, policy)
        failure = enforced or _tls_failure(t, policy, min_rank)
        attempts.append(f"{where}: {failure or PolicyReason.DELIVERED}")
        if failure is None or (enforced is None and not policy.require_starttls):
            return {"reachable": True, "encrypted": failure is None, "mx_host": t.mx_host,
                    "ip": t.ip if isinstance(t.ip, str) else None, "preference": t.preference,
                    "backup": bool(t.preference > first_preference), "reason": failure,
                    "attempts": "; ".join(attempts)}
        failures.append(failure)
    reason = "; ".join(dict.fromkeys(failures)) if failures else PolicyReason.NO_REACHABLE_MX
    return _undelivered(reason, "; ".join(attempts))


def _enforced_failure(t: Any, policy: Policy) -> str | None:
    """Why MTA-STS or DANE, if the policy honours them, forbids delivery to a reached target."""
    if (policy.honour_mta_sts and isinstance(t.sts_mode, str) and t.sts_mode == StsMode.ENFORCE
            and isinstance(t.sts_failure, str)):
        return f"MTA-STS: {t.sts_failure}"
    if policy.honour_dane and isinstance(t.dane_failure, str):
        return f"DANE: {t.dane_failure}"
    return None


def _tls_failure(t: Any, policy: Policy, min_rank: int) -> str | None:
    """Why a reachable target does not meet the policy's TLS requirements; None if it does."""
    if t.status != HostStatus.STARTTLS:
        return _STATUS_REASONS.get(t.status, f"status {t.status}")
    if min_rank >= 0 and t.max_rank < min_rank:
        newest = version_label(int(t.max_rank))
        return (f"max {newest} < {policy.min_version}" if newest
                else f"no accepted version ≥ {policy.min_version}")
    if policy.require_cert_match and not t.cert_matches_mx:
        return PolicyReason.CERT_MISMATCH if t.cert_checked else PolicyReason.CERT_NOT_CHECKED
    if policy.require_forward_secrecy and t.fs_max_rank < max(min_rank, 0):
        at = f" at ≥ {policy.min_version}" if policy.min_version else ""
        return f"no forward-secret suite{at}"
    return None


def rank_weights(ranks: pd.Series) -> pd.Series:
    """Zipf weights ``1/rank`` for a popularity rank (1 = most popular); NaN where there is no
    valid rank (null or < 1).

    Why Zipf: mail volume over providers is heavy-tailed, and with exponent 1 the top domain
    counts twice the second and ten times the tenth, which rewards keeping the big providers
    without letting them swamp the rest. The weights are not normalised; shares divide by their
    sum over the ranked domains.
    """
    r = pd.to_numeric(ranks, errors="coerce").astype("float64")
    return (1.0 / r).where(r >= 1)


SWEEP_COLUMNS = ["policy", "require_starttls", "min_version", "require_cert_match",
                 "require_forward_secrecy", "domains", "reachable", "reachable_share",
                 "weighted_reachable_share", "encrypted", "encrypted_share",
                 "weighted_encrypted_share", "lost", "lost_domains", "honour_mta_sts",
                 "honour_dane"]


def policy_sweep(results: SurveyResults,
                 policies: Iterable[Policy | str | None] | None = None) -> pd.DataFrame:
    """Domains still reachable under each policy, one row per policy.

    ``policies``: :class:`Policy` objects, or minimum-version labels (``"TLS 1.2"``) or None,
    each meaning STARTTLS required with that minimum; default :func:`default_policies`.
    Columns: the policy's ``label`` as ``policy`` and its four fields; ``domains`` (all input
    domains, the denominator of every share); ``reachable`` and ``reachable_share``;
    ``weighted_reachable_share`` (:func:`rank_weights`, over the domains with a rank; NaN
    without ranks); ``encrypted``, ``encrypted_share``, ``weighted_encrypted_share`` (delivered
    over TLS meeting the policy); ``lost`` and ``lost_domains`` (reachable under the
    opportunistic baseline but not under this policy, list in rank order); last
    ``honour_mta_sts`` and ``honour_dane``, the policy's two enforcement fields.
    Raises :class:`~research.analysis.core.AnalysisError` for an unknown version label.
    """
    chosen = [_as_policy(p) for p in (default_policies() if policies is None else policies)]
    ctx = _context(results)
    baseline = _impact(ctx, Policy())
    weights = rank_weights(baseline["rank"])
    rows = []
    for policy in chosen:
        impact = baseline if policy == Policy() else _impact(ctx, policy)
        lost = baseline["reachable"] & ~impact["reachable"]
        rows.append({
            "policy": policy.label,
            "require_starttls": policy.require_starttls,
            "min_version": policy.min_version,
            "require_cert_match": policy.require_cert_match,
            "require_forward_secrecy": policy.require_forward_secrecy,
            "domains": len(impact),
            "reachable": int(impact["reachable"].sum()),
            "reachable_share": _share(impact["reachable"]),
            "weighted_reachable_share": _weighted_share(impact["reachable"], weights),
            "encrypted": int(impact["encrypted"].sum()),
            "encrypted_share": _share(impact["encrypted"]),
            "weighted_encrypted_share": _weighted_share(impact["encrypted"], weights),
            "lost": int(lost.sum()),
            "lost_domains": [str(d) for d in impact.loc[lost, "domain"]],
            "honour_mta_sts": policy.honour_mta_sts,
            "honour_dane": policy.honour_dane,
        })
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS).astype(
        {"policy": "string", "min_version": "string"})


def _as_policy(p: Policy | str | None) -> Policy:
    if isinstance(p, Policy):
        return p
    return Policy(require_starttls=True, min_version=p)


def _share(mask: pd.Series) -> float:
    return float(mask.mean()) if len(mask) else float("nan")


def _weighted_share(mask: pd.Series, weights: pd.Series) -> float:
    known = weights.notna()
    total = float(weights[known].sum())
    if not total:
        return float("nan")
    return float(weights[known & mask].sum()) / total
