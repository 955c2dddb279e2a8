"""A dying scan loses nothing: ``kill -9`` then ``--resume``, and Ctrl-C, on the real CLI.

Each test runs ``starttls-survey scan`` as a subprocess against a running testbed, watches the
raw log grow, and interrupts the process at a known point of the scan.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from support.scanning import TimedScan, cli_scan

from research.store.files import RAW_LOG_NAME
from research.store.rawlog import read_records
from research.store.records import Record
from research.store.results import load_results
from research.store.schema import TABLES
from research.testbed import Testbed

HANG_GUARD = 120.0
"""Seconds after which a test gives up on a process; a guard against hanging, not a bound."""


def host_records(out: Path) -> list[Record]:
    return [r for r in read_records(out / RAW_LOG_NAME) if r.get("kind") == "host"]


def wait_for_log(proc: subprocess.Popen[str], out: Path,
                 ready: Callable[[list[Record]], bool]) -> list[Record]:
    """Poll the raw log until ``ready`` says yes; fails if the scan ends first."""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        records = host_records(out)
        if ready(records):
            assert proc.poll() is None, "the scan finished before it could be interrupted"
            return records
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.02)
    proc.kill()
    pytest.fail("the raw log never reached the expected state")


def probed(records: list[Record]) -> list[Record]:
    """Records of hosts that were actually connected to (not unresolved)."""
    return [r for r in records if r["ip"] is not None]


def assert_one_line_interrupt(proc: subprocess.Popen[str], stderr: str, out: Path, *,
                              code: int = 130, word: str = "interrupted") -> None:
    assert proc.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert word in lines[0] and str(out) in lines[0] and "--resume" in lines[0]


def assert_tables_hold_the_raw_log(out: Path) -> None:
    """The Parquet tables were written, and hold exactly the hosts the raw log finished."""
    for name in TABLES:
        assert (out / f"{name}.parquet").is_file(), name
    results = load_results(out)
    logged = {(r["mx_host"], r["ip"]) for r in host_records(out)}
    tabled = {(host, None if pd.isna(ip) else ip)
              for host, ip in zip(results.hosts["mx_host"], results.hosts["ip"], strict=True)}
    assert tabled == logged
    assert results.meta["finished_at"] is None


def test_kill_9_then_resume_loses_nothing_and_repeats_nothing(
    hostile_testbed: Testbed, hostile_scan: TimedScan, tmp_path: Path
) -> None:
    tb = hostile_testbed
    domain_list = tb.write_domain_list(tmp_path / "domains.csv")
    out = tmp_path / "out"
    command = cli_scan(tb, domain_list, out)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_log(proc, out, lambda records: len(probed(records)) >= 3)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=HANG_GUARD)
    assert proc.returncode == -signal.SIGKILL
    assert not any(r.get("kind") == "finish" for r in read_records(out / RAW_LOG_NAME))
    # As if the kill had landed mid-write: a torn last line must be dropped, not be fatal.
    with (out / RAW_LOG_NAME).open("a") as log:
        log.write('{"kind":"host","mx_host":"mx.tarpit.hostile.te')
    finished = {(r["mx_host"], r["ip"]) for r in host_records(out)}
    time.sleep(0.2)  # let the servers account for connections the dead scan had opened
    sessions_before = tb.stats()

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True,
                             timeout=HANG_GUARD * 5)
    assert resumed.returncode == 0, resumed.stderr

    keys = [(r["mx_host"], r["ip"]) for r in host_records(out)]
    assert len(keys) == len(set(keys)), "a host record appears twice"
    assert finished <= set(keys)
    # Not scanned again, as the servers saw it: no new session to a host finished before.
    sessions_after = tb.stats()
    for host, ip in finished:
        if ip is not None:
            assert sessions_after[(host, ip)] == sessions_before[(host, ip)], host

    results = load_results(out)
    full = hostile_scan.results
    for name in ("domains", "mx", "ciphers"):
        pd.testing.assert_frame_equal(results.table(name), full.table(name))
    timing = ["scanned_at", "duration_s"]
    pd.testing.assert_frame_equal(results.hosts.drop(columns=timing),
                                  full.hosts.drop(columns=timing))
    assert results.meta["runs"] == 2 and results.meta["finished_at"] is not None


@pytest.mark.parametrize(("sent", "code", "word"), [
    (signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_writes_the_tables_and_exits(
    hostile_testbed: Testbed, tmp_path: Path, sent: signal.Signals, code: int, word: str
) -> None:
    """Interrupted while a slow host is being probed: the scan must not wait for it, and
    records what the addresses being probed had taught it."""
    greeting_timeout = 30.0  # the slow-banner host holds its probe that long
    domain_list = tmp_path / "domains.txt"
    domain_list.write_text("refused.hostile.test\ngreylist-421.hostile.test\n"
                           "slow-banner.hostile.test\nhelo-only.hostile.test\n")
    out = tmp_path / "out"
    command = cli_scan(hostile_testbed, domain_list, out)
    command[command.index("--greeting-timeout") + 1] = f"{greeting_timeout:g}"
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_log(proc, out, lambda records: len(probed(records)) >= 3)
    started = time.monotonic()
    proc.send_signal(sent)
    _, stderr = proc.communicate(timeout=HANG_GUARD)
    elapsed = time.monotonic() - started
    print(f"{word} during the SMTP probes: exit {elapsed:.2f} s after the signal")

    assert_one_line_interrupt(proc, stderr, out, code=code, word=word)
    assert_tables_hold_the_raw_log(out)
    results = load_results(out)
    hosts = set(results.hosts["mx_host"])
    assert "mx.slow-banner.hostile.test" not in hosts
    assert {"mx.refused.hostile.test", "mx.greylist-421.hostile.test"} <= hosts
    # "Promptly": well before the slow host's probe could have ended by itself.
    assert elapsed < greeting_timeout / 2
    # The address being probed is recorded as unfinished, for --resume to start from.
    slow_ip = hostile_testbed.scenario.host("mx.slow-banner.hostile.test").addresses[0]
    unfinished = results.addresses.set_index("ip").loc[slow_ip]
    assert not bool(unfinished["finished"]) and unfinished["sessions"] == 1


def test_ctrl_c_during_the_tls_scan_ends_promptly(isc_testbed: Testbed, tmp_path: Path) -> None:
    """Interrupted inside sslyze's threads, with most TLS scans still to run."""
    domain_list = isc_testbed.write_domain_list(tmp_path / "domains.csv")
    out = tmp_path / "out"
    command = cli_scan(isc_testbed, domain_list, out)
    command[command.index("--concurrency") + 1] = "2"
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_log(proc, out, lambda records: any(r["status"] == "starttls" for r in records))
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=HANG_GUARD)
    elapsed = time.monotonic() - started
    print(f"Ctrl-C during the TLS scan: exit {elapsed:.2f} s after SIGINT")

    assert_one_line_interrupt(proc, stderr, out)
    assert_tables_hold_the_raw_log(out)
    scanned = (load_results(out).hosts["status"] == "starttls").sum()
    expected = sum(len(h.addresses) for h in isc_testbed.scenario.hosts if h.serves_tls)
    assert 1 <= scanned < expected, "the TLS scan ran to its end instead of stopping"


def test_interrupt_before_any_work_is_still_one_line(tmp_path: Path) -> None:
    """SIGINT while the scan waits on a resolver that never answers (nothing finished yet)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        out = tmp_path / "out"
        proc = subprocess.Popen(
            [sys.executable, "-m", "research", "scan", "a.example", "--out", str(out),
             "--resolver", f"127.0.0.1:{silent.getsockname()[1]}", "--timeout", "30",
             "--no-progress"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + HANG_GUARD
        while not (out / RAW_LOG_NAME).exists() or not (out / RAW_LOG_NAME).stat().st_size:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        time.sleep(0.2)  # into the DNS lookup
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=HANG_GUARD)
    assert_one_line_interrupt(proc, stderr, out)
    assert_tables_hold_the_raw_log(out)
    assert load_results(out).domains.empty
