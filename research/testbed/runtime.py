"""Running a scenario's servers: in this process until told to stop (the server side).

:func:`serve_forever` is what the child process of :class:`research.testbed.Testbed` runs, and
:func:`run_foreground` is ``starttls-survey testbed up``: the same servers in the foreground,
with instructions for scanning them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import ssl
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from research.errors import TestbedError
from research.store.files import write_json
from research.testbed import dns_server, https_server, smtp_server
from research.testbed.ca import write_certificates
from research.testbed.dnssec_zone import anchor_path
from research.testbed.scenario import Scenario, load_scenario, write_domain_list

DEFAULT_DNS_HOST = "127.0.0.1"
FOREGROUND_DNS_PORT = 5300

_log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Endpoints:
    """Where a running testbed listens."""

    dns_host: str
    dns_port: int
    smtp_port: int
    https_port: int | None = None
    """Port of the MTA-STS policy hosts; None when the scenario has none."""

    @property
    def resolver(self) -> str:
        """``IP:PORT`` of the DNS server (``[IP]:PORT`` for IPv6), as ``--resolver`` takes it."""
        host = f"[{self.dns_host}]" if ":" in self.dns_host else self.dns_host
        return f"{host}:{self.dns_port}"


def check_loopback(address: str) -> str:
    """Return ``address`` if it is a loopback IP; raises TestbedError otherwise."""
    try:
        if ipaddress.ip_address(address).is_loopback:
            return address
    except ValueError:
        pass
    raise TestbedError(f"the testbed listens on loopback only; {address!r} is not a loopback IP")


def serve_forever(
    scenario: Scenario,
    *,
    cert_dir: Path,
    dns_host: str = DEFAULT_DNS_HOST,
    dns_port: int = 0,
    smtp_port: int | None = None,
    on_ready: Callable[[Endpoints], None] | None = None,
    stats_file: Path | None = None,
    watch_stdin: bool = False,
    rtt_ms: float | None = None,
    https_port: int | None = None,
) -> None:
    """Serve ``scenario`` until SIGINT or SIGTERM (or, with ``watch_stdin``, EOF on stdin).

    ``cert_dir`` must hold what :func:`research.testbed.ca.write_certificates` made for it.
    Port 0 picks a free port; ``smtp_port`` None means 2525 unless taken on an address, then
    any free one; ``https_port`` (MTA-STS policy hosts) likewise with 8443. ``on_ready`` gets
    the ports once everything accepts connections. With ``stats_file``, per-address counters
    are written there as JSON on SIGUSR1 and at the end. ``rtt_ms`` replaces the scenario-wide
    round-trip delay of the SMTP hosts.
    Must run in the main thread (it installs signal handlers).

    Raises TestbedError if a port is taken or an address or certificate cannot be used.
    """
    check_loopback(dns_host)
    try:
        dns = dns_server.DnsServers(scenario, dns_host, dns_port, cert_dir)
    except (OSError, ValueError) as err:
        text = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise TestbedError(f"cannot start DNS on {dns_host}: {text}") from err
    try:
        smtp = smtp_server.SmtpServers(scenario, smtp_port, cert_dir, rtt_ms=rtt_ms)
    except (OSError, ValueError) as err:
        dns.stop()
        text = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise TestbedError(f"cannot start SMTP: {text}") from err
    try:
        https = https_server.HttpsServers(scenario, https_port, cert_dir)
    except (OSError, ValueError) as err:
        smtp.close()
        dns.stop()
        text = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise TestbedError(f"cannot start the MTA-STS policy hosts: {text}") from err
    endpoints = Endpoints(dns_host, dns.port, smtp.port, https.port)
    try:
        asyncio.run(_serve(dns, smtp, endpoints, on_ready, stats_file, watch_stdin, https))
    finally:
        # Already done inside the loop, unless it failed to start; all are idempotent.
        https.close()
        smtp.close()
        dns.stop()


async def _serve(dns: dns_server.DnsServers, smtp: smtp_server.SmtpServers, endpoints: Endpoints,
                 on_ready: Callable[[Endpoints], None] | None, stats_file: Path | None,
                 watch_stdin: bool, https: https_server.HttpsServers | None = None) -> None:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_log_loop_error)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stats = _StatsWriter(smtp, stats_file)
    if stats_file is not None:
        loop.add_signal_handler(signal.SIGUSR1, stats.write)
    if watch_stdin:
        # The parent holds our stdin open; EOF means it is gone, maybe killed without cleanup.
        stdin = sys.stdin.fileno()
        loop.add_reader(stdin, _on_stdin, stdin, loop, stop)
    try:
        await smtp.start()
        if https is not None:
            await https.start()
        dns.start()
        if on_ready is not None:
            on_ready(endpoints)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
            loop.remove_signal_handler(sig)
        if https is not None:
            https.close()
        smtp.close()
        dns.stop()
        stats.write()


class _StatsWriter:
    def __init__(self, smtp: smtp_server.SmtpServers, path: Path | None) -> None:
        self._smtp = smtp
        self._path = path
        self._seq = 0

    def write(self) -> None:
        if self._path is None:
            return
        self._seq += 1
        by_ip: dict[str, dict[str, Any]] = {}
        for host, ip, stats in self._smtp.stats():
            entry = by_ip.setdefault(ip, {"ip": ip, "hosts": [], **stats.exported()})
            entry["hosts"].append(host)
        groups = {name: s.exported() for name, s in self._smtp.group_stats().items()}
        write_json(self._path, {"seq": self._seq, "addresses": list(by_ip.values()),
                                "groups": groups})


def _on_stdin(fd: int, loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    try:
        data = os.read(fd, 4096)
    except OSError:
        data = b""
    if not data:
        loop.remove_reader(fd)
        stop.set()


def _log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Clients that hang up mid-handshake surface here; they are routine for a scanner's target.
    error = context.get("exception")
    if isinstance(error, (ConnectionError, ssl.SSLError)):
        _log.debug("%s: %r", context.get("message"), error)
    else:
        loop.default_exception_handler(context)


def run_foreground(
    scenario: str | Path | Scenario,
    *,
    dns_host: str = DEFAULT_DNS_HOST,
    dns_port: int = FOREGROUND_DNS_PORT,
    smtp_port: int | None = None,
    domain_list_path: Path | None = None,
    out: TextIO | None = None,
    rtt_ms: float | None = None,
    https_port: int | None = None,
) -> int:
    """Run the testbed in this process until Ctrl-C, printing how to scan it; returns 0.

    The domain list goes to ``domain_list_path``, or to a temporary file removed at the end,
    as do the certificates. Raises ScenarioError for an unknown or malformed scenario and
    TestbedError when a port or address cannot be used.
    """
    out = out or sys.stdout
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    with tempfile.TemporaryDirectory(prefix="starttls-testbed-") as tmp:
        workdir = Path(tmp)
        ca_path = write_certificates(scenario, workdir / "certs")
        list_path = write_domain_list(
            scenario, domain_list_path or workdir / f"{scenario.name}-domains.csv")

        def announce(endpoints: Endpoints) -> None:
            out.write(describe(scenario, endpoints, list_path, ca_path))
            out.write("\nPress Ctrl-C to stop.\n")
            out.flush()

        serve_forever(scenario, cert_dir=workdir / "certs", dns_host=dns_host, dns_port=dns_port,
                      smtp_port=smtp_port, on_ready=announce, rtt_ms=rtt_ms,
                      https_port=https_port)
    out.write("Testbed stopped.\n")
    return 0


def describe(scenario: Scenario, endpoints: Endpoints, domain_list: Path, ca_path: Path) -> str:
    """Human summary of a running testbed and the command that scans it."""
    addresses = sorted({ip for h in scenario.hosts for ip in h.addresses},
                       key=lambda a: (":" in a, int(ipaddress.ip_address(a))))
    policy = []
    if endpoints.https_port is not None:
        policy = [f"  MTA-STS  HTTPS port {endpoints.https_port} "
                  f"({len(scenario.policy_hosts())} policy hosts)"]
        mta_sts = f" --mta-sts-port {endpoints.https_port}"
    else:
        mta_sts = ""
    return "\n".join([
        f"Testbed {scenario.name!r} is up: {len(scenario.domains)} domains, "
        f"{len(scenario.hosts)} MX hosts on {len(addresses)} addresses.",
        f"  DNS      {endpoints.resolver} (UDP and TCP)",
        f"  SMTP     port {endpoints.smtp_port} on {_ranges(addresses)}",
        *policy,
        f"  CA       {ca_path}",
        f"  DNSSEC   trust anchor {anchor_path(ca_path.parent)}",
        f"  Domains  {domain_list}",
        "Scan it with:",
        f"  starttls-survey scan --domains {domain_list} --resolver {endpoints.resolver} "
        f"--port {endpoints.smtp_port} --trust-ca {ca_path} --dnssec-anchor "
        f"{anchor_path(ca_path.parent)}{mta_sts} --out results/testbed-{scenario.name}",
    ])


def _ranges(addresses: list[str]) -> str:
    if len(addresses) <= 4:
        return ", ".join(addresses) or "no addresses"
    return f"{addresses[0]} ... {addresses[-1]} ({len(addresses)} addresses)"
