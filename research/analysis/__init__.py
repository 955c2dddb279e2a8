"""Analysis of a survey's tables: pure functions of :class:`~research.store.results.SurveyResults`.

No I/O. Every output names its unit of analysis (MX host, domain and which view of its MX set);
:mod:`research.analysis.core` explains how IPs are combined into hosts and hosts into domains.
The vocabularies of the outputs (units, views, categories, verdicts, readiness) are the enums of
:mod:`research.store.schema`.

* :mod:`~research.analysis.core` — per-host and per-domain verdicts, domain categories.
* :mod:`~research.analysis.headline` — the headline table and the 2019 diary's summary.
* :mod:`~research.analysis.policy` — what a sender's TLS policy would cost.
* :mod:`~research.analysis.enforcement` — MTA-STS, DANE and WebPKI: could a sender enforce TLS?
* :mod:`~research.analysis.ciphers` — cipher suites (name facts live in
  :mod:`research.policy.ciphers`).
* :mod:`~research.analysis.compare` — what changed between two surveys.
* :mod:`~research.analysis.summary` — a plain-text summary for the terminal.
"""

from __future__ import annotations

from research.analysis.ciphers import (
    SUITE_CLASSES,
    cipher_summary,
    cipher_version_summary,
    host_ciphers,
    suite_class,
    suite_class_counts,
    weak_hosts,
    weak_suites,
)
from research.analysis.compare import Comparison, compare
from research.analysis.core import (
    CATEGORIES,
    FEATURE_LABELS,
    FEATURES,
    VIEWS,
    AnalysisError,
    domain_verdicts,
    host_summary,
    provider_of,
    provider_table,
    scan_date,
)
from research.analysis.enforcement import (
    READINESS,
    certificate_names,
    dane_hosts,
    dane_verdicts,
    enforcement_readiness,
    failure_types,
    host_webpki,
    mta_sts_verdicts,
    readiness_summary,
)
from research.analysis.headline import (
    UNIT_DOMAIN,
    UNIT_HOST,
    UNITS,
    diary_summary,
    domains_lacking_version,
    domains_without_starttls,
    headline,
    headline_wide,
)
from research.analysis.policy import (
    BASELINE_LABEL,
    POLICY_VERSIONS,
    Policy,
    default_policies,
    policy_impact,
    policy_sweep,
    rank_weights,
)
from research.analysis.summary import format_summary
from research.policy.ciphers import WEAKNESSES, classify_cipher, is_weak_cipher
from research.store.schema import UNIT_BY_VIEW

__all__ = [
    "BASELINE_LABEL",
    "CATEGORIES",
    "FEATURES",
    "FEATURE_LABELS",
    "POLICY_VERSIONS",
    "READINESS",
    "SUITE_CLASSES",
    "UNITS",
    "UNIT_BY_VIEW",
    "UNIT_DOMAIN",
    "UNIT_HOST",
    "VIEWS",
    "WEAKNESSES",
    "AnalysisError",
    "Comparison",
    "Policy",
    "certificate_names",
    "cipher_summary",
    "cipher_version_summary",
    "classify_cipher",
    "compare",
    "dane_hosts",
    "dane_verdicts",
    "default_policies",
    "diary_summary",
    "domain_verdicts",
    "domains_lacking_version",
    "domains_without_starttls",
    "enforcement_readiness",
    "failure_types",
    "format_summary",
    "headline",
    "headline_wide",
    "host_ciphers",
    "host_summary",
    "host_webpki",
    "is_weak_cipher",
    "mta_sts_verdicts",
    "policy_impact",
    "policy_sweep",
    "provider_of",
    "provider_table",
    "rank_weights",
    "readiness_summary",
    "scan_date",
    "suite_class",
    "suite_class_counts",
    "weak_hosts",
    "weak_suites",
]
