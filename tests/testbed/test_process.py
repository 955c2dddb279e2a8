"""The Testbed handle and its server process: attributes, start and stop, ports, the working
directory, and the foreground mode.
"""

from __future__ import annotations

import csv
import ipaddress
import os
import socket
import sys
from pathlib import Path

import pytest
from support.foreground import foreground, interrupt
from support.testbed_clients import (
    CASES,
    client_context,
    free_to_bind,
    process_gone,
    smtp,
)

from research.testbed import (
    DEFAULT_SMTP_PORT,
    Testbed,
    TestbedError,
)

# -- the Testbed handle and the process life cycle -------------------------------------------

def test_testbed_attributes(cases_testbed: Testbed, tmp_path: Path) -> None:
    tb = cases_testbed
    assert tb.running and tb.scenario.name == "cases"
    assert tb.resolver == f"{tb.dns_host}:{tb.dns_port}"
    assert ipaddress.ip_address(tb.dns_host).is_loopback
    assert tb.ca_cert_path.read_bytes() == tb.ca_cert_pem
    assert tb.domains() == CASES.domain_list()
    path = tb.write_domain_list(tmp_path / "sub" / "domains.csv")
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["rank", "domain"]
    assert rows[1:] == [[str(r), d] for r, d in CASES.domain_list()]


@pytest.mark.testbed
def test_stop_frees_everything(tiny_path: Path) -> None:
    tb = Testbed.start(tiny_path)
    pid, dns_port, smtp_port, workdir = tb.pid, tb.dns_port, tb.smtp_port, tb.ca_cert_path.parent
    with smtp(tb, "127.0.201.1") as client:
        client.ehlo()
        client.starttls(context=client_context())
        client.quit()
    assert tb.stats()[("mx.tiny.test", "127.0.201.1")].sessions == 1
    tb.stop()
    tb.stop()  # idempotent
    assert not tb.running and process_gone(pid)
    assert not workdir.exists()
    assert tb.ca_cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    final = tb.stats()[("mx.tiny.test", "127.0.201.1")]
    assert (final.sessions, final.tls_handshakes) == (1, 1)
    assert free_to_bind("127.0.201.1", smtp_port)
    assert free_to_bind(tb.dns_host, dns_port)
    assert free_to_bind(tb.dns_host, dns_port, socket.SOCK_DGRAM)


@pytest.mark.testbed
def test_context_exit_on_error_stops_the_server(tiny_path: Path) -> None:
    with pytest.raises(RuntimeError), Testbed.start(tiny_path) as tb:
        pid = tb.pid
        raise RuntimeError("boom")
    assert process_gone(pid)


@pytest.mark.testbed
def test_busy_smtp_port_falls_back_unless_explicit(tiny_path: Path) -> None:
    with Testbed.start(tiny_path) as first, Testbed.start(tiny_path) as second:
        assert first.smtp_port != second.smtp_port
        for tb in (first, second):
            with smtp(tb, "127.0.201.1") as client:
                assert client.ehlo()[0] == 250
                client.quit()
        with pytest.raises(TestbedError, match=f"port {first.smtp_port} is busy"):
            Testbed.start(tiny_path, smtp_port=first.smtp_port)
        with pytest.raises(TestbedError, match=f"DNS port {first.dns_port}"):
            Testbed.start(tiny_path, dns_port=first.dns_port)
    assert DEFAULT_SMTP_PORT == 2525


@pytest.mark.testbed
def test_dns_must_listen_on_loopback(tiny_path: Path) -> None:
    with pytest.raises(TestbedError, match="loopback"):
        Testbed.start(tiny_path, dns_host="192.0.2.1")


@pytest.mark.testbed
def test_server_process_runs_in_its_own_directory(tiny_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The child neither runs in nor imports from a clone: its working directory is the
    testbed's temporary one and its PYTHONPATH is the caller's; a scenario path relative to the
    caller's directory still reaches it."""
    monkeypatch.chdir(tiny_path.parent)
    with Testbed.start(tiny_path.name) as tb:
        workdir = tb.log_path.parent
        assert Path(os.readlink(f"/proc/{tb.pid}/cwd")) == workdir
        environ = Path(f"/proc/{tb.pid}/environ").read_bytes().split(b"\0")
        child_path = next((e for e in environ if e.startswith(b"PYTHONPATH=")), None)
        mine = os.environ.get("PYTHONPATH")
        assert child_path == (None if mine is None else f"PYTHONPATH={mine}".encode())
        assert tb.domains() == [(1, "tiny.test")]
        with smtp(tb, "127.0.201.1") as client:
            assert client.ehlo()[0] == 250


@pytest.mark.testbed
def test_foreground_mode_prints_how_to_scan_and_stops_on_ctrl_c(
    tiny_path: Path, tmp_path: Path
) -> None:
    domains = tmp_path / "domains.csv"
    with foreground([sys.executable, "-m", "research.testbed", "up", "--scenario", tiny_path,
                     "--dns-port", "0", "--smtp-port", "0", "--domain-list", domains],
                    cwd=tmp_path) as (proc, text):
        assert f"starttls-survey scan --domains {domains} --resolver 127.0.0.1:" in text
        assert domains.read_text().splitlines() == ["rank,domain", "1,tiny.test"]
        assert "stopped" in interrupt(proc)
