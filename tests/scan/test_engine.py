"""The probe engine against sslyze's own per-suite scan, on real testbed servers.

The equality tests survey the ``cases`` and ``isc-2019`` scenarios three times — with sslyze's
scan (``engine="sslyze"``), with the engine's ``full`` mode and with ``versions`` — and compare
the tables; the sessions each run cost are the testbed servers' own counts. The throttle tests
use hosts that answer 421, and check that what they leave unanswered is reported as undecided,
never as rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from sslyze.plugins.openssl_cipher_suites._tls12_workaround import (
    WorkaroundForTls12ForCipherSuites,
)
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuitesRepository
from sslyze.server_connectivity import TlsVersionEnum
from support.groundtruth import assert_hosts_match

from research.scan.engine import lanes, parse_ssl2_server_hello, ssl2_client_hello
from research.scan.inputs import from_arguments
from research.scan.survey import run_survey
from research.store.results import SurveyResults
from research.store.schema import TLS_VERSIONS, VERSION_COLUMNS, Engine
from research.testbed import DnsMode, Testbed, load_scenario
from tests.support.scanning import started_testbed

TIMEOUT = 2.0
EHLO = "engine-test.example"
STABLE_HOST_COLUMNS = ["mx_host", "ip", "status", *VERSION_COLUMNS, "min_version", "max_version",
                       "cert_sha256", "cert_matches_mx", "cert_self_signed", "cert_trusted_mozilla"]


@dataclass
class Run:
    results: SurveyResults
    sessions: dict[tuple[str, str], int]
    """SMTP sessions per (host, address), as the testbed server counted them."""


def survey(tb: Testbed, out: Path, engine: str, **options: object) -> Run:
    """Survey every host of the scenario with ``engine``; count the sessions it cost."""
    # A domain whose DNS never answers has no host to compare, and costs the resolver's full
    # retry schedule (seconds) on every run.
    quiet = {d.name for d in tb.scenario.domains if d.dns is DnsMode.TIMEOUT}
    domains = from_arguments([name for _, name in tb.domains() if name not in quiet])
    before = tb.stats()
    settings = tb.settings(timeout=TIMEOUT, greeting_timeout=TIMEOUT, engine=engine,
                           ehlo_name=EHLO, **options)
    results = run_survey(domains, out / engine, settings, progress=False)
    after = tb.stats()
    return Run(results, {key: after[key].sessions - before[key].sessions for key in after})


@pytest.fixture(scope="module", params=["cases", "isc-2019"])
def three_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> tuple[Testbed, dict[str, Run]]:
    tb: Testbed = request.getfixturevalue(
        "cases_testbed" if request.param == "cases" else "isc_testbed")
    out = tmp_path_factory.mktemp(f"engines-{request.param}")
    return tb, {engine: survey(tb, out, engine) for engine in ("sslyze", "full", "versions")}


def _sorted_ciphers(results: SurveyResults) -> pd.DataFrame:
    keys = ["mx_host", "ip", "tls_version", "cipher"]
    return results.ciphers.sort_values(keys).reset_index(drop=True)


@pytest.mark.testbed
def test_full_engine_answers_exactly_as_sslyze(three_runs: tuple[Testbed, dict[str, Run]]) -> None:
    tb, runs = three_runs
    sslyze, full = runs["sslyze"].results, runs["full"].results
    pd.testing.assert_frame_equal(full.hosts[STABLE_HOST_COLUMNS],
                                  sslyze.hosts[STABLE_HOST_COLUMNS])
    assert len(sslyze.ciphers) > 20
    pd.testing.assert_frame_equal(_sorted_ciphers(full), _sorted_ciphers(sslyze))
    assert full.hosts["undecided"].map(len).sum() == 0
    assert_hosts_match(tb.scenario, full)
    assert full.meta["options"]["engine"] == "full"
    assert sslyze.meta["options"]["engine"] == "sslyze"


@pytest.mark.testbed
def test_full_engine_needs_a_tenth_of_sslyzes_sessions(
    three_runs: tuple[Testbed, dict[str, Run]]
) -> None:
    tb, runs = three_runs
    tls_targets = [(h.name, ip) for h in tb.scenario.hosts if h.serves_tls for ip in h.addresses]
    assert tls_targets
    for target in tls_targets:
        sslyze, full = runs["sslyze"].sessions[target], runs["full"].sessions[target]
        assert sslyze > 500, target
        assert full * 10 <= sslyze, (target, full, sslyze)


@pytest.mark.testbed
def test_versions_only_answers_versions_in_seven_sessions(
    three_runs: tuple[Testbed, dict[str, Run]]
) -> None:
    tb, runs = three_runs
    versions, sslyze = runs["versions"].results, runs["sslyze"].results
    columns = ["mx_host", "ip", "status", *VERSION_COLUMNS, "cert_sha256"]
    pd.testing.assert_frame_equal(versions.hosts[columns], sslyze.hosts[columns])
    # No suites are enumerated, and the survey says so.
    assert versions.ciphers.empty
    assert versions.meta["options"]["engine"] == "versions"
    assert max(runs["versions"].sessions.values()) <= 7
    tls_targets = [(h.name, ip) for h in tb.scenario.hosts if h.serves_tls for ip in h.addresses]
    assert all(runs["versions"].sessions[t] == 7 for t in tls_targets)


@pytest.mark.testbed
def test_engine_sessions_are_polite(three_runs: tuple[Testbed, dict[str, Run]]) -> None:
    tb, _ = three_runs
    log = tb.log_path.read_text()
    assert f"EHLO {EHLO}" in log
    # Every accepted handshake of the engine ends with QUIT over TLS.
    assert log.count(": QUIT") >= 20
    for verb in ("MAIL FROM", "RCPT TO", ": DATA"):
        assert verb not in log


def test_lanes_cover_sslyzes_suites_split_as_sslyze_splits_them() -> None:
    for version in TLS_VERSIONS:
        known = CipherSuitesRepository.get_all_cipher_suites(TlsVersionEnum(version.rank + 1))
        mine = [lane for lane in lanes(Engine.FULL) if lane.version == version]
        offered = [s for lane in mine for s in lane.suites]
        assert sorted(s.name for s in offered) == sorted(s.name for s in known)
        for lane in mine:
            if version.label == "TLS 1.2":
                assert all(WorkaroundForTls12ForCipherSuites.requires_legacy_openssl(
                    s.openssl_name) is lane.legacy for s in lane.suites)
            else:
                assert lane.legacy is (version.label != "TLS 1.3")
    one_each = [lane.version.label for lane in lanes(Engine.VERSIONS)]
    assert sorted(one_each) == sorted(v.label for v in TLS_VERSIONS)


def test_ssl2_hello_round_trip() -> None:
    hello = ssl2_client_hello(["RC4-MD5", "DES-CBC3-MD5"], b"c" * 16)
    # 2-byte header, CLIENT-HELLO, version 2, 6 bytes of cipher specs, no session id, challenge.
    assert hello[:2] == (0x8000 | 31).to_bytes(2, "big")
    assert hello[2:11] == b"\x01\x00\x02\x00\x06\x00\x00\x00\x10"
    certificate = b"\x30\x03\x02\x01\x01"
    specs = b"\x07\x00\xc0\x01\x00\x80\x09\x09\x09"  # two known kinds, one unknown
    body = (b"\x04\x00\x01\x00\x02" + len(certificate).to_bytes(2, "big")
            + len(specs).to_bytes(2, "big") + b"\x00\x10" + certificate + specs + b"i" * 16)
    record = (0x8000 | len(body)).to_bytes(2, "big") + body
    assert parse_ssl2_server_hello(record) == (["DES-CBC3-MD5", "RC4-MD5"], certificate)
    assert parse_ssl2_server_hello(record[:-1]) is None
    assert parse_ssl2_server_hello(b"\x15\x03\x01\x00\x02\x02\x28") is None


THROTTLED = """\
[scenario]
name = "throttled"
description = "one server three times: steady, 421 to every 4th connection, 421 after the 8th"

[[hosts]]
name = "mx.steady.test"
addresses = ["127.0.203.1"]
tls_min = "1.0"
tls_max = "1.3"
expect = { status = "starttls", versions = ["TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"] }

[[hosts]]
name = "mx.every.test"
addresses = ["127.0.203.2"]
tls_min = "1.0"
tls_max = "1.3"
throttle = { every = 4 }
expect = { status = "starttls", versions = ["TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"] }

[[hosts]]
name = "mx.after.test"
addresses = ["127.0.203.3"]
tls_min = "1.0"
tls_max = "1.3"
throttle = { after = 8 }
expect = { status = "starttls", versions = ["TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"] }

[[domains]]
name = "steady.test"
mx = [[10, "mx.steady.test"]]
expect = { dns_status = "mx" }

[[domains]]
name = "every.test"
mx = [[10, "mx.every.test"]]
expect = { dns_status = "mx" }

[[domains]]
name = "after.test"
mx = [[10, "mx.after.test"]]
expect = { dns_status = "mx" }
"""


THROTTLED_BUDGET = 15.0
"""Seconds each address is given: enough for the host that refuses every 4th connection (each
refusal alone is read as a rate limit, and spaces its sessions further); the host that refuses
every connection after its 8th is tried again (backoff 0.05 s, doubling) until it is spent."""


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Testbed, Run]:
    out = tmp_path_factory.mktemp("throttled")
    with started_testbed(out, "throttled", THROTTLED) as tb:
        run = survey(tb, out, "full", retries=2, backoff=0.05, host_budget=THROTTLED_BUDGET)
        tb.stop()
        return tb, run


def _host(results: SurveyResults, name: str) -> pd.Series:
    return results.hosts.set_index("mx_host").loc[name]


def _suites(results: SurveyResults, name: str) -> set[tuple[str, str]]:
    ciphers = results.ciphers[results.ciphers["mx_host"] == name]
    return set(zip(ciphers["tls_version"], ciphers["cipher"], strict=True))


@pytest.mark.testbed
def test_occasional_421_is_retried_and_changes_nothing(throttled: tuple[Testbed, Run]) -> None:
    tb, run = throttled
    stats = tb.stats()
    assert stats[("mx.every.test", "127.0.203.2")].throttled >= 5
    steady, every = _host(run.results, "mx.steady.test"), _host(run.results, "mx.every.test")
    assert list(every["undecided"]) == []
    assert [every[c] for c in VERSION_COLUMNS] == [steady[c] for c in VERSION_COLUMNS]
    assert _suites(run.results, "mx.every.test") == _suites(run.results, "mx.steady.test")
    assert len(_suites(run.results, "mx.steady.test")) > 10


@pytest.mark.testbed
def test_persistent_421_leaves_versions_undecided_not_rejected(
    throttled: tuple[Testbed, Run]
) -> None:
    tb, run = throttled
    after = _host(run.results, "mx.after.test")
    truth = set(tb.scenario.host("mx.after.test").expect_versions)
    assert after["status"] == "starttls"
    undecided = list(after["undecided"])
    assert undecided
    for version in TLS_VERSIONS:
        value = after[version.column]
        if version.label in truth:
            assert value is pd.NA or value is True or bool(value), version.label
        if value is pd.NA:
            assert version.label in undecided
        if value is True or (value is not pd.NA and bool(value)):
            # Found accepted, but the suite list may be cut short.
            assert version.label not in undecided
    assert any(label.endswith(" suites") for label in undecided)
    # What was found is true: a subset of the steady twin's suites.
    found = _suites(run.results, "mx.after.test")
    assert found and found <= _suites(run.results, "mx.steady.test")
    assert "421" in after["error"]
    # A 421 with another session open halves the address's connections; alone, it pauses the
    # address (0.05 s, doubling): within the budget that is a dozen tries, not a flood.
    stats = tb.stats()[("mx.after.test", "127.0.203.3")]
    assert stats.throttled >= 3
    assert stats.sessions <= 8 + 12
    assert stats.peak_connections <= 2
    assert f"not asked: time budget of {THROTTLED_BUDGET:g} s spent" in after["error"]
    learned = run.results.addresses.set_index("ip").loc["127.0.203.3"]
    assert learned["concurrency"] == 1 and bool(learned["budget_spent"])
    assert learned["throttled"] == stats.throttled
    # The ground truth of the unthrottled hosts is met.
    steady = load_scenario(tb.scenario.path)
    for name in ("mx.steady.test", "mx.every.test"):
        row = _host(run.results, name)
        accepted = [v.label for v in TLS_VERSIONS if row[v.column] is True or (
            row[v.column] is not pd.NA and bool(row[v.column]))]
        assert accepted == list(steady.host(name).expect_versions)
