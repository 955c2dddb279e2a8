"""What the MTA log and capture tests expect: the shipped samples and, from the ``mta`` scenario
and the workload, the versions each session must have negotiated."""

from __future__ import annotations

from collections import Counter

from research.testbed import Host, load_scenario
from research.traffic.reader import samples_dir
from support.postfix_harness import (
    FAILED_HANDSHAKE_CLIENT_VERSION,
    FAILED_HANDSHAKE_DOMAIN,
    WORKLOAD,
)

SAMPLES = samples_dir()
POSTFIX_SAMPLE = SAMPLES / "postfix-maillog.log"
EXIM_SAMPLE = SAMPLES / "exim-mainlog.log"
SENDMAIL_SAMPLE = SAMPLES / "sendmail-maillog.log"
MTA = load_scenario("mta")
REFUSED_DOMAIN = "refuses.mta.test"
LOG_VERSIONS = ["TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"]


def relay_host(domain: str) -> Host:
    return MTA.host(MTA.domain(domain).mail_hosts[0])


def expected_outbound(failed_handshake: bool = False) -> dict[str, str | None]:
    """Recipient domain -> the version its testbed host negotiates (its newest), None w/o TLS.

    ``failed_handshake``: the workload included the delivery to the host that answers STARTTLS
    with garbage (the Postfix runs; the Exim and Sendmail samples predate it).
    """
    domains = [*WORKLOAD.values(), REFUSED_DOMAIN]
    if failed_handshake:
        domains.append(FAILED_HANDSHAKE_DOMAIN)
    return {d: (relay_host(d).versions[-1] if relay_host(d).serves_tls else None)
            for d in domains}


def expected_inbound_versions(failed_handshake: bool = False) -> Counter[str]:
    """Versions the clients used: one message per workload version, plus the refused one (and
    the one whose delivery's handshake fails, in the Postfix runs)."""
    extra = [FAILED_HANDSHAKE_CLIENT_VERSION] if failed_handshake else []
    return Counter([v for v in WORKLOAD if v != "plain"] + ["TLS 1.3", *extra])
