"""A testbed of real DNS and SMTP servers on loopback, reproducing known mail-server behaviours.

A scenario file (``research/testbed/scenarios/NAME.toml``, format in its ``README.md``) describes
domains, their MX hosts and how each host behaves, with the ground truth a scan must find::

    from research.testbed import Testbed
    with Testbed.start("isc-2019") as tb:
        tb.write_domain_list("domains.csv")
        # scan with --resolver tb.resolver --port tb.smtp_port

Everything listens on 127.0.0.0/8 or ::1 only.
"""

from research.errors import TestbedError
from research.testbed.process import Testbed
from research.testbed.runtime import Endpoints, run_foreground, serve_forever
from research.testbed.scenario import (
    Behaviour,
    Certificate,
    Counts,
    DnsMode,
    Domain,
    Host,
    Scenario,
    Throttle,
    list_scenarios,
    load_scenario,
    scenarios_dir,
    write_domain_list,
)
from research.testbed.smtp_server import DEFAULT_SMTP_PORT, TargetStats

__all__ = [
    "DEFAULT_SMTP_PORT",
    "Behaviour",
    "Certificate",
    "Counts",
    "DnsMode",
    "Domain",
    "Endpoints",
    "Host",
    "Scenario",
    "TargetStats",
    "Testbed",
    "TestbedError",
    "Throttle",
    "list_scenarios",
    "load_scenario",
    "run_foreground",
    "scenarios_dir",
    "serve_forever",
    "write_domain_list",
]
