"""Testbed scenarios: what the testbed serves, and the ground truth a scan of it must find.

:mod:`~research.testbed.scenario.model` is the data model, :mod:`~research.testbed.scenario.parser`
reads and checks a file, :mod:`~research.testbed.scenario.truth` derives what each setting
implies, and :mod:`~research.testbed.scenario.files` finds the shipped scenarios (package data in
``research/testbed/scenarios/``). The file format is documented in its ``README.md``.
"""

from __future__ import annotations

from research.testbed.scenario.files import (
    list_scenarios,
    load_scenario,
    scenarios_dir,
    write_domain_list,
)
from research.testbed.scenario.model import (
    DNS_RESERVED_ADDRESS,
    DNS_SERVING_RECORDS,
    IPV6_LOOPBACK,
    SLOW_ANSWER_S,
    TLD,
    TLS_VERSION_NAMES,
    Anvil,
    Behaviour,
    Certificate,
    CertificateKey,
    Counts,
    DnsMode,
    DnssecMode,
    Domain,
    DomainExpect,
    GreetAction,
    Host,
    MtaSts,
    PolicyServe,
    Postscreen,
    Scenario,
    SharedLimit,
    Throttle,
)

__all__ = [
    "DNS_RESERVED_ADDRESS",
    "DNS_SERVING_RECORDS",
    "IPV6_LOOPBACK",
    "SLOW_ANSWER_S",
    "TLD",
    "TLS_VERSION_NAMES",
    "Anvil",
    "Behaviour",
    "Certificate",
    "CertificateKey",
    "Counts",
    "DnsMode",
    "DnssecMode",
    "Domain",
    "DomainExpect",
    "GreetAction",
    "Host",
    "MtaSts",
    "PolicyServe",
    "Postscreen",
    "Scenario",
    "SharedLimit",
    "Throttle",
    "list_scenarios",
    "load_scenario",
    "scenarios_dir",
    "write_domain_list",
]
