"""A few lines of plain text summing a survey up, for the terminal (the CLI prints it)."""

from __future__ import annotations

from research.analysis.core import CATEGORIES, domain_frame, host_frame, scan_date
from research.analysis.headline import domains_lacking_version, domains_without_starttls
from research.analysis.policy import Policy, policy_sweep
from research.store.results import SurveyResults

_MAX_LISTED = 12


def _pct(count: int, total: int) -> str:
    return f"{count}/{total} ({count / total:.0%})" if total else f"{count}/{total}"


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", … (+{len(items) - _MAX_LISTED})" if len(items) > _MAX_LISTED else "")


def format_summary(results: SurveyResults) -> str:
    """The headline in a few lines of text: domains by category, STARTTLS per domain and per MX
    host, the domains without STARTTLS or TLS ≥ 1.2, and what requiring STARTTLS with TLS 1.2
    would cost. Returns ``"No data: ..."`` for a survey without domains."""
    domains = domain_frame(results)
    if domains.empty:
        return "No data: the survey has no domains."
    hosts = host_frame(results)
    n = len(domains)
    date = scan_date(results.meta)
    lines = [f"Survey of {n} domains" + (f", scanned {date}" if date else "") + "."]
    counts = domains["category"].value_counts()
    lines.append("Domains by category: " + "; ".join(
        f"{cat} {int(counts[cat])}" for cat in CATEGORIES if cat in counts.index) + ".")
    starttls_any = int(domains["starttls_any"].astype("boolean").fillna(False).sum())
    starttls_all = int(domains["starttls_all"].astype("boolean").fillna(False).sum())
    lines.append(f"STARTTLS: {_pct(starttls_any, n)} domains on at least one MX host, "
                 f"{_pct(starttls_all, n)} on all; {_pct(int(hosts['starttls'].sum()), len(hosts))}"
                 " unique MX hosts (every IP).")
    without = domains_without_starttls(results)
    lines.append(f"Domains without STARTTLS ({len(without)}): {_listing(without) or '-'}.")
    lacking = domains_lacking_version(results, "TLS 1.2", starttls_only=True)
    lines.append(f"STARTTLS domains without TLS ≥ 1.2 on any MX host ({len(lacking)}): "
                 f"{_listing(lacking) or '-'}.")
    sweep = policy_sweep(results, [Policy(), Policy(require_starttls=True, min_version="TLS 1.2")])
    strict = sweep.iloc[1]
    lines.append(f"Requiring STARTTLS with TLS ≥ 1.2: {_pct(int(strict['reachable']), n)} domains "
                 f"reachable (opportunistic: {int(sweep.iloc[0]['reachable'])}); lost "
                 f"{int(strict['lost'])}: {_listing(list(strict['lost_domains'])) or '-'}.")
    return "\n".join(lines)
