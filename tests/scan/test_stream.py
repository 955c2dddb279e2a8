"""The survey as a stream: an address is probed as soon as an answer names it, not once every
domain has its answer; a name that points at an address only after the address was probed costs
one session (a follow-up), and a survey killed in between resumes to the same tables.

The ordering is forced, not timed: ``late.test``'s MX answer comes ``SLOW_ANSWER_S`` late
(``dns = "slow"``), so the raw log, written in the order work finishes, shows what the survey
did before it had that answer.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from support.groundtruth import assert_domains_match, assert_hosts_match, assert_webpki_match
from support.scanning import cli_scan

from research.scan.inputs import from_arguments
from research.scan.survey import run_survey
from research.store.files import RAW_LOG_NAME
from research.store.rawlog import read_records
from research.store.records import Record, RecordKind
from research.store.results import SurveyResults, load_results
from research.testbed import Testbed
from tests.support.scanning import started_testbed

pytestmark = pytest.mark.testbed

SHARED = "127.0.234.1"
SOLO = "127.0.234.2"
FIRST, LATE = "first.mx.shared.test", "late.mx.shared.test"
TIMEOUT = 8.0
"""Seconds per query: above the slow answer's delay, which must arrive, not time out."""
ENGINE = "versions"
"""The quick engine: its probe ends well within the slow answer's delay on a loaded machine."""
HANG_GUARD = 120.0
"""Seconds after which a test gives up on a process; a guard against hanging, not a bound."""

_TLS = '''tls_min = "1.2"
tls_max = "1.3"
ciphers = "ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA"
expect = { status = "starttls", versions = ["TLS 1.2", "TLS 1.3"], webpki = "ok" }'''

SCENARIO = f'''[scenario]
name = "stream"
description = "a late MX answer naming an address probed already"

[[hosts]]
name = "{FIRST}"
addresses = ["{SHARED}"]
{_TLS}

[[hosts]]
name = "{LATE}"
addresses = ["{SHARED}"]
{_TLS}

[[hosts]]
name = "mx.solo.test"
addresses = ["{SOLO}"]
{_TLS}

[[domains]]
name = "early.test"
mx = [[10, "{FIRST}"]]
expect = {{ dns_status = "mx" }}

[[domains]]
name = "solo.test"
mx = [[10, "mx.solo.test"]]
expect = {{ dns_status = "mx" }}

[[domains]]
name = "late.test"
dns = "slow"
mx = [[10, "{LATE}"]]
expect = {{ dns_status = "mx" }}
'''


@dataclass
class Streamed:
    tb: Testbed
    results: SurveyResults
    log: list[Record]
    sessions: dict[str, int]
    """Sessions each address served during the survey, as its server counted."""


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    with started_testbed(tmp_path_factory.mktemp("stream"), "stream", SCENARIO) as tb:
        yield tb


@pytest.fixture(scope="module")
def streamed(testbed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Streamed:
    out = tmp_path_factory.mktemp("streamed") / "out"
    before = testbed.address_stats()
    results = run_survey(from_arguments([name for _, name in testbed.domains()]), out,
                         testbed.settings(timeout=TIMEOUT, engine=ENGINE), progress=False)
    after = testbed.address_stats()
    return Streamed(testbed, results, list(read_records(out / RAW_LOG_NAME)),
                    {ip: s.sessions - before[ip].sessions for ip, s in after.items()})


def _at(log: list[Record], kind: RecordKind, **match: object) -> list[int]:
    return [i for i, r in enumerate(log)
            if r.get("kind") == kind and all(r.get(k) == v for k, v in match.items())]


def test_the_first_probe_is_done_before_the_last_mx_answer(streamed: Streamed) -> None:
    log = streamed.log
    last_answer = _at(log, RecordKind.DOMAIN, domain="late.test")[-1]
    first_probe = _at(log, RecordKind.ADDRESS_PROBE)[0]
    assert first_probe < last_answer
    # Both addresses named before it were probed (and their names recorded) before it.
    assert {log[i]["ip"] for i in _at(log, RecordKind.ADDRESS_PROBE)[:2]} == {SHARED, SOLO}
    assert all(i < last_answer for i in _at(log, RecordKind.HOST, mx_host=FIRST))


def test_a_late_name_costs_one_follow_up_session(streamed: Streamed) -> None:
    log = streamed.log
    probes = [log[i] for i in _at(log, RecordKind.ADDRESS_PROBE, ip=SHARED)]
    # Probed in full for the first name, then followed up for the late one: one session more.
    assert [p["mx_hosts"] for p in probes] == [[FIRST], [FIRST, LATE]]
    assert probes[1]["sessions"] == probes[0]["sessions"] + 1
    assert streamed.sessions[SHARED] == probes[1]["sessions"]
    # The late name's record comes after its domain's answer and holds its own certificate.
    assert _at(log, RecordKind.HOST, mx_host=LATE)[0] > _at(
        log, RecordKind.DOMAIN, domain="late.test")[0]
    hosts = streamed.results.hosts.set_index("mx_host")
    assert list(hosts.loc[LATE, "cert_sans"]) == [LATE]
    assert bool(hosts.loc[LATE, "cert_matches_mx"])
    row = streamed.results.addresses.set_index("ip").loc[SHARED]
    assert list(row["mx_hosts"]) == [FIRST, LATE]
    assert row["sessions"] == streamed.sessions[SHARED]
    assert streamed.results.meta["counts"]["sessions"] == sum(streamed.sessions.values())


def test_the_stream_meets_the_ground_truth(streamed: Streamed) -> None:
    scenario = streamed.tb.scenario
    assert_domains_match(scenario, streamed.results)
    assert_hosts_match(scenario, streamed.results)
    assert_webpki_match(scenario, streamed.results)
    assert len(streamed.results.addresses) == 2
    assert len(streamed.results.hosts) == 3


def test_killed_between_the_probe_and_the_late_answer_resumes_to_the_same_tables(
    streamed: Streamed, tmp_path: Path
) -> None:
    tb = streamed.tb
    out = tmp_path / "out"
    command = cli_scan(tb, tb.write_domain_list(tmp_path / "domains.csv"), out,
                       "--timeout", f"{TIMEOUT:g}", "--engine", ENGINE)
    before = tb.address_stats()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + HANG_GUARD
    while not _at(_log(out), RecordKind.ADDRESS_PROBE, ip=SHARED):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the shared address was never probed"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=HANG_GUARD)
    killed = _log(out)
    # Killed after the address's probe, before the late answer: its name is still to come.
    assert not _at(killed, RecordKind.DOMAIN, domain="late.test")
    assert not _at(killed, RecordKind.FINISH)

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True,
                             timeout=HANG_GUARD)
    assert resumed.returncode == 0, resumed.stderr
    log = _log(out)
    keys = [(r["mx_host"], r["ip"]) for r in log if r.get("kind") == RecordKind.HOST]
    assert len(keys) == len(set(keys)) == 3, "a host record is missing or appears twice"
    # The first name was not probed again: its record is the killed run's.
    assert _at(log, RecordKind.HOST, mx_host=FIRST) == _at(killed, RecordKind.HOST,
                                                           mx_host=FIRST)
    results = load_results(out)
    timing = ["scanned_at", "duration_s"]
    for name in ("domains", "mx"):
        pd.testing.assert_frame_equal(results.table(name), streamed.results.table(name))
    pd.testing.assert_frame_equal(results.hosts.drop(columns=timing),
                                  streamed.results.hosts.drop(columns=timing))
    # The address's row names both its names and counts every session of both runs.
    row = results.addresses.set_index("ip").loc[SHARED]
    assert list(row["mx_hosts"]) == [FIRST, LATE]
    assert row["sessions"] == tb.address_stats()[SHARED].sessions - before[SHARED].sessions
    assert results.meta["runs"] == 2


def _log(out: Path) -> list[Record]:
    path = out / RAW_LOG_NAME
    return list(read_records(path)) if path.exists() else []
