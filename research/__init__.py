"""starttls-survey: measure STARTTLS and TLS on mail servers, and reproduce the 2019 survey.

The public API, re-exported here::

    from research import run_survey, load_results, read_domain_list
    results = run_survey(read_domain_list("domains.csv"), "results/x", resolver=["127.0.0.1:5300"])
    results.hosts  # one row per (MX host, IP); columns in research.store.schema / data/README.md

Submodules: ``inputs`` → ``dns`` → ``smtp`` → ``tls`` → ``survey`` → ``results`` →
``analysis`` → ``plots``/``report``; ``testbed`` beside them; ``cli`` on top.
"""

from __future__ import annotations

__version__ = "0.1.0"

from research.errors import (
    InputError,
    InvalidDomainError,
    ResultsError,
    ScenarioError,
    SurveyError,
    TestbedError,
)
from research.scan.inputs import DomainList, from_arguments, normalize_domain, read_domain_list
from research.scan.resolver import make_resolver, resolve_addresses, resolve_mx
from research.scan.smtp import SmtpProbe, probe_smtp
from research.scan.survey import run_survey
from research.store.results import SurveyResults, load_results, save_results
from research.store.schema import TLS_VERSIONS, DnsStatus, HostStatus

__all__ = [
    "TLS_VERSIONS",
    "DnsStatus",
    "DomainList",
    "HostStatus",
    "InputError",
    "InvalidDomainError",
    "ResultsError",
    "ScenarioError",
    "SmtpProbe",
    "SurveyError",
    "SurveyResults",
    "TestbedError",
    "__version__",
    "from_arguments",
    "load_results",
    "make_resolver",
    "normalize_domain",
    "probe_smtp",
    "read_domain_list",
    "resolve_addresses",
    "resolve_mx",
    "run_survey",
    "save_results",
]
