"""The caller's handle on a running testbed: servers in a child process, stopped reliably.

The servers run in a child (``python -m research.testbed serve ...``) so that a scanner's
threads in this process and the servers do not share one GIL. The child reports readiness by
writing a JSON file with its ports; it exits on SIGTERM, and also when its stdin (a pipe from
this process) closes, so even a SIGKILLed parent leaves no orphan behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from research.errors import TestbedError
from research.settings import SurveySettings
from research.testbed.ca import write_certificates
from research.testbed.dnssec_zone import anchor_path
from research.testbed.runtime import DEFAULT_DNS_HOST, Endpoints, check_loopback
from research.testbed.scenario import Scenario, load_scenario, write_domain_list
from research.testbed.smtp_server import TargetStats

START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
_POLL = 0.01


class Testbed:
    """A running testbed; create with :meth:`Testbed.start`, use as a context manager."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, scenario: Scenario, process: subprocess.Popen[bytes], workdir: Path,
                 endpoints: Endpoints, ca_cert_pem: bytes) -> None:
        """Internal; use :meth:`start`."""
        self._scenario = scenario
        self._process = process
        self._workdir = workdir
        self._endpoints = endpoints
        self._ca_cert_pem = ca_cert_pem
        self._last_stats: dict[str, Any] | None = None
        """The server's last report of its counters (after stop(), its final one)."""
        self._stats_seq = 0
        # Runs at stop(), garbage collection or interpreter exit, whichever comes first.
        self._finalizer = weakref.finalize(self, _shut_down, process, workdir)

    @classmethod
    def start(
        cls,
        scenario: str | Path | Scenario,
        *,
        dns_host: str = DEFAULT_DNS_HOST,
        dns_port: int = 0,
        smtp_port: int | None = None,
        timeout: float = START_TIMEOUT,
        rtt_ms: float | None = None,
    ) -> Testbed:
        """Start the servers of ``scenario`` (a name, a path or a Scenario) and wait for them.

        Returns once DNS (UDP and TCP) and every SMTP listener accept connections.
        ``dns_port`` 0 picks a free port; ``smtp_port`` None means 2525 unless that is taken on
        one of the scenario's addresses, then any free port; an explicit port must be free.
        ``rtt_ms`` replaces the scenario's round-trip delay (``[scenario] rtt_ms``; hosts with
        their own ``rtt_ms`` keep it): the servers answer as if that many milliseconds away.

        Raises ScenarioError for an unknown or malformed scenario, TestbedError if the servers
        cannot start (busy explicit port, non-loopback ``dns_host``, child died or timed out).
        """
        if not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario)
        check_loopback(dns_host)
        workdir = Path(tempfile.mkdtemp(prefix="starttls-testbed-"))
        process: subprocess.Popen[bytes] | None = None
        try:
            ca_path = write_certificates(scenario, workdir / "certs")
            ready_file = workdir / "ready.json"
            log_path = workdir / "server.log"
            command = [
                sys.executable, "-m", "research.testbed", "serve",
                "--scenario", str(scenario.path.resolve()),  # the child runs elsewhere
                "--cert-dir", str(workdir / "certs"),
                "--dns-host", dns_host,
                "--dns-port", str(dns_port),
                "--smtp-port", "auto" if smtp_port is None else str(smtp_port),
                "--ready-file", str(ready_file),
                "--stats-file", str(workdir / "stats.json"),
                "--watch-stdin",
                "--orphan-cleanup", str(workdir),
            ]
            if rtt_ms is not None:
                command += ["--rtt-ms", repr(float(rtt_ms))]
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    command, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                    cwd=workdir, env=_child_env(),
                )
            endpoints = _wait_until_ready(process, ready_file, log_path, timeout)
            return cls(scenario, process, workdir, endpoints, ca_path.read_bytes())
        except BaseException:
            if process is not None:
                _shut_down(process, workdir)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
            raise

    # -- what the scanner needs -------------------------------------------------------------

    @property
    def scenario(self) -> Scenario:
        return self._scenario

    @property
    def resolver(self) -> str:
        """``IP:PORT`` of the DNS server, as the scanner's ``--resolver`` takes it."""
        return self._endpoints.resolver

    @property
    def dns_host(self) -> str:
        return self._endpoints.dns_host

    @property
    def dns_port(self) -> int:
        return self._endpoints.dns_port

    @property
    def smtp_port(self) -> int:
        """The one TCP port every SMTP host listens on."""
        return self._endpoints.smtp_port

    @property
    def mta_sts_port(self) -> int | None:
        """The one HTTPS port every MTA-STS policy host listens on; None if there are none."""
        return self._endpoints.https_port

    @property
    def dnssec_anchor_path(self) -> Path:
        """The DS record of the signed ``test.`` zone, the trust anchor to validate it with
        (``--dnssec-anchor``; :meth:`settings` passes it); removed by :meth:`stop`."""
        return anchor_path(self._workdir / "certs")

    @property
    def ca_cert_pem(self) -> bytes:
        """The testbed CA's certificate (PEM); stays available after :meth:`stop`."""
        return self._ca_cert_pem

    @property
    def ca_cert_path(self) -> Path:
        """The CA certificate as a file; removed by :meth:`stop`."""
        return self._workdir / "certs" / "ca.pem"

    @property
    def log_path(self) -> Path:
        """The server process's output; removed by :meth:`stop`."""
        return self._workdir / "server.log"

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._finalizer.alive and self._process.poll() is None

    def settings(self, **options: Any) -> SurveySettings:
        """Survey settings that point at this testbed: its resolver and SMTP port, its CA among
        the trusted roots, its zone's trust anchor for DNSSEC and its MTA-STS port; ``options``
        (any :meth:`SurveySettings.build` name) change the rest, or these."""
        mine: dict[str, Any] = {
            "resolvers": [self.resolver], "port": self.smtp_port,
            "trust_ca": self.ca_cert_path, "dnssec_anchor": self.dnssec_anchor_path,
        }
        if self.mta_sts_port is not None:
            mine["mta_sts_port"] = self.mta_sts_port
        return SurveySettings.build(**{**mine, **options})

    def domains(self) -> list[tuple[int, str]]:
        """(rank, domain) in rank order: the domain list to scan."""
        return self._scenario.domain_list()

    def write_domain_list(self, path: str | Path) -> Path:
        """Write the domain list as CSV (``rank,domain``) to ``path``; raises OSError."""
        return write_domain_list(self._scenario, Path(path))

    def stats(self, timeout: float = 5.0) -> dict[tuple[str, str], TargetStats]:
        """What each (host, address) served so far: sessions, completed TLS handshakes,
        connections refused by a limit, the most connections open at once, pregreet drops.
        Hosts that share an address share its counters (one server answers for them).

        After :meth:`stop`, the final counts. Raises TestbedError if the server does not
        report within ``timeout`` seconds.
        """
        return {(host, ip): stats for ip, (hosts, stats) in self._snapshot(timeout).items()
                for host in hosts}

    def address_stats(self, timeout: float = 5.0) -> dict[str, TargetStats]:
        """:meth:`stats` per address: each address's counters once, however many names."""
        return {ip: stats for ip, (_, stats) in self._snapshot(timeout).items()}

    def group_stats(self, timeout: float = 5.0) -> dict[str, TargetStats]:
        """The counters of each ``[[shared_limits]]`` entry, by name, across its addresses:
        sessions, connections it refused, the most open at once across them."""
        self._snapshot(timeout)
        return {name: _counts(found) for name, found in (self._last_stats or {}).get(
            "groups", {}).items()}

    def _snapshot(self, timeout: float) -> dict[str, tuple[list[str], TargetStats]]:
        if self.running:
            self._last_stats = self._fetch_stats(timeout)
        data = self._last_stats or {"addresses": []}
        return {a["ip"]: (a["hosts"], _counts(a)) for a in data["addresses"]}

    def _fetch_stats(self, timeout: float) -> dict[str, Any]:
        self._process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = _read_json(self._workdir / "stats.json")
            if data is not None and data["seq"] > self._stats_seq:
                self._stats_seq = data["seq"]
                found: dict[str, Any] = data
                return found
            time.sleep(_POLL)
        raise TestbedError("the testbed server did not report its statistics")

    # -- life cycle -------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the servers and remove the temporary files; safe to call more than once."""
        if not self._finalizer.alive:
            return
        _terminate(self._process)
        self._last_stats = _read_json(self._workdir / "stats.json")
        self._finalizer()

    def __enter__(self) -> Testbed:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (f"<Testbed {self._scenario.name!r} {state} dns={self.resolver} "
                f"smtp_port={self.smtp_port}>")


def _child_env() -> dict[str, str]:
    # The child imports the package as this interpreter does (sys.executable, installed or
    # editable): no clone on its path, and its own temporary directory as working directory.
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _wait_until_ready(process: subprocess.Popen[bytes], ready_file: Path, log_path: Path,
                      timeout: float) -> Endpoints:
    deadline = time.monotonic() + timeout
    while True:
        data = _read_json(ready_file)
        if data is not None:
            return Endpoints(data["dns_host"], data["dns_port"], data["smtp_port"],
                             data.get("https_port"))
        code = process.poll()
        if code is not None:
            raise TestbedError(f"testbed server exited (code {code}): {_last_line(log_path)}")
        if time.monotonic() > deadline:
            raise TestbedError(f"testbed server not ready after {timeout:g} s: "
                               f"{_last_line(log_path)}")
        time.sleep(_POLL)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _counts(found: dict[str, Any]) -> TargetStats:
    return TargetStats(**{k: found.get(k, 0) for k in TargetStats().exported()})


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    return lines[-1] if lines else "no output"


def _terminate(process: subprocess.Popen[bytes]) -> None:
    stdin: IO[bytes] | None = process.stdin
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if stdin is not None:
        stdin.close()


def _shut_down(process: subprocess.Popen[bytes], workdir: Path) -> None:
    _terminate(process)
    shutil.rmtree(workdir, ignore_errors=True)
