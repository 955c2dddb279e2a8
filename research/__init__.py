"""starttls-survey: measure STARTTLS and TLS on mail servers, and reproduce the 2019 survey.

The public API, re-exported here::

    from research import SurveySettings, load_results, read_domain_list, run_survey
    settings = SurveySettings.build(resolvers=["127.0.0.1:5300"], port=2525)
    results = run_survey(read_domain_list("domains.csv"), "results/x", settings)
    results.hosts  # one row per (MX host, IP); columns in research.store.schema, data/README.md

The package is laid out along its pipeline, each layer importing only those below it:
``scan`` (inputs, DNS, SMTP, TLS, the runner) → ``store`` (raw log, tables, schema) →
``analysis`` → ``plots`` → ``report``; ``policy`` holds the standards' rules all of them judge
by, ``traffic`` your own server's logs and captures, ``testbed`` the loopback servers, and
``cli`` the command. Nothing heavy is imported until a name below is first used, so
``import research`` and ``starttls-survey --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "InputError": "research.errors",
    "InvalidDomainError": "research.errors",
    "ResultsError": "research.errors",
    "ScenarioError": "research.errors",
    "SurveyError": "research.errors",
    "TestbedError": "research.errors",
    "ProbeSettings": "research.settings",
    "SurveySettings": "research.settings",
    "TLS_VERSIONS": "research.store.schema",
    "DnsStatus": "research.store.schema",
    "Engine": "research.store.schema",
    "HostStatus": "research.store.schema",
    "SurveyResults": "research.store.results",
    "load_results": "research.store.results",
    "save_results": "research.store.results",
    "DomainList": "research.scan.inputs",
    "from_arguments": "research.scan.inputs",
    "normalize_domain": "research.scan.inputs",
    "read_domain_list": "research.scan.inputs",
    "make_resolver": "research.scan.resolver",
    "resolve_addresses": "research.scan.mx",
    "resolve_mx": "research.scan.mx",
    "SmtpProbe": "research.scan.smtp",
    "probe_smtp": "research.scan.smtp",
    "run_survey": "research.scan.survey",
}

__all__ = [
    "TLS_VERSIONS",
    "DnsStatus",
    "DomainList",
    "Engine",
    "HostStatus",
    "InputError",
    "InvalidDomainError",
    "ProbeSettings",
    "ResultsError",
    "ScenarioError",
    "SmtpProbe",
    "SurveyError",
    "SurveyResults",
    "SurveySettings",
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


def __getattr__(name: str) -> Any:
    if name == "__version__":
        # One source: the version pyproject.toml gave the installed distribution.
        provenance = importlib.import_module("research.store.provenance")
        value: Any = provenance.tool_version()["version"] or "unknown"
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'research' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:
    from research.errors import (
        InputError,
        InvalidDomainError,
        ResultsError,
        ScenarioError,
        SurveyError,
        TestbedError,
    )
    from research.scan.inputs import DomainList, from_arguments, normalize_domain, read_domain_list
    from research.scan.mx import resolve_addresses, resolve_mx
    from research.scan.resolver import make_resolver
    from research.scan.smtp import SmtpProbe, probe_smtp
    from research.scan.survey import run_survey
    from research.settings import ProbeSettings, SurveySettings
    from research.store.results import SurveyResults, load_results, save_results
    from research.store.schema import TLS_VERSIONS, DnsStatus, Engine, HostStatus
