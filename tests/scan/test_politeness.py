"""Polite to real mail infrastructure: the address is the unit, limits are learned, providers are
paced — held against the testbed servers' own counts.

Two surveys: a quick one of a small scenario whose limits are in seconds
(``support.politeness``), and one of the shipped ``providers`` scenario with the default
settings, whose rate-limited host and 15 s greeting make it wait minutes in real time (marked
``slow``; every slow test shares it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from support.groundtruth import assert_domains_match, assert_hosts_match, assert_webpki_match
from support.politeness import (
    POOL,
    POOL_NAMES,
    QUICK,
    RATED,
    SHARED,
    SHARED_COUNT_LIMIT,
    SHARED_NAMES,
    SOLO,
    TWIN,
)

from research.scan.engine import lanes
from research.scan.inputs import from_arguments
from research.scan.survey import run_survey
from research.settings import DEFAULT_HOST_BUDGET, DEFAULT_PER_HOST_CONNECTIONS, SurveySettings
from research.store.files import RAW_LOG_NAME
from research.store.rawlog import RawLogWriter, read_records
from research.store.records import RecordKind
from research.store.results import SurveyResults
from research.testbed import Scenario, TargetStats, Testbed
from tests.support.scanning import started_testbed

pytestmark = pytest.mark.testbed


@dataclass
class Surveyed:
    tb: Testbed
    out: Path
    scenario: Scenario
    settings: SurveySettings
    results: SurveyResults
    addresses: dict[str, TargetStats]
    """What each address served during the survey, as its server counted."""
    groups: dict[str, TargetStats]
    wall_s: float

    def row(self, ip: str) -> pd.Series:
        return self.results.addresses.set_index("ip").loc[ip]


def _survey(tb: Testbed, out: Path, settings: SurveySettings) -> Surveyed:
    before = tb.address_stats()
    started = time.monotonic()
    results = run_survey(from_arguments([name for _, name in tb.domains()]), out, settings,
                         progress=False)
    wall = time.monotonic() - started
    after = tb.address_stats()
    served = {ip: TargetStats(sessions=s.sessions - before[ip].sessions,
                              throttled=s.throttled - before[ip].throttled,
                              peak_connections=s.peak_connections,
                              pregreet_drops=s.pregreet_drops - before[ip].pregreet_drops)
              for ip, s in after.items()}
    return Surveyed(tb, out, tb.scenario, settings, results, served, tb.group_stats(), wall)


def _check_the_rules(run: Surveyed, twin: str) -> None:
    """What must hold on any survey of these scenarios."""
    # Every answer is its ground truth, certificates judged by name included.
    assert_domains_match(run.scenario, run.results)
    assert_hosts_match(run.scenario, run.results)
    assert_webpki_match(run.scenario, run.results)
    assert all(list(u) == [] for u in run.results.hosts["undecided"])
    # No address ever held more connections at once than --per-host.
    per_host = run.settings.probe.per_host_connections
    assert max(s.peak_connections for s in run.addresses.values()) <= per_host
    # N names on one address cost at most one name's sessions plus N - 1, once the sessions of
    # the parts a lane was split into beyond the lanes (one each, taken where connections were
    # idle, so as many as timing gave) are set aside on both sides.
    one = run.addresses[twin].sessions - _extra_parts(run, twin)
    for ip in run.scenario.addresses():
        names = len(run.scenario.hosts_at(ip))
        if names > 1:
            assert run.addresses[ip].sessions - _extra_parts(run, ip) <= one + names - 1, ip
    # One row per address, one per (name, address); the survey's own count agrees with the
    # servers'.
    assert len(run.results.addresses) == len(run.scenario.addresses())
    assert len(run.results.hosts) == sum(len(h.addresses) for h in run.scenario.hosts)
    counts = run.results.meta["counts"]
    assert counts["addresses"] < counts["hosts"]
    assert counts["sessions"] == sum(s.sessions for s in run.addresses.values())
    for ip, served in run.addresses.items():
        assert run.row(ip)["sessions"] == served.sessions, ip
        assert run.row(ip)["throttled"] == served.throttled, ip


def _extra_parts(run: Surveyed, ip: str) -> int:
    """Parts the address's TLS enumeration was asked in beyond its lanes (one session each)."""
    parts = int(run.row(ip)["parts"])
    return parts - len(lanes(run.settings.probe.engine)) if parts else 0


# -- the quick survey: every rule, in seconds ------------------------------------------------

QUICK_PER_PROVIDER = SHARED_COUNT_LIMIT


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Surveyed]:
    base = tmp_path_factory.mktemp("quick-politeness")
    with started_testbed(base, "quick", QUICK) as tb:
        # The pool's provider-wide limit is 2 at once: a survey told so keeps to it.
        settings = tb.settings(timeout=3, backoff=0.5, host_budget=60,
                               per_provider_connections=QUICK_PER_PROVIDER, provider_rate=50)
        yield _survey(tb, base / "out", settings)


def test_quick_survey_keeps_every_rule(quick_run: Surveyed) -> None:
    _check_the_rules(quick_run, TWIN)


def test_the_pool_is_enumerated_once_per_address(quick_run: Surveyed) -> None:
    rows = quick_run.results.hosts.set_index(["mx_host", "ip"])
    for ip in POOL:
        row = quick_run.row(ip)
        assert list(row["mx_hosts"]) == POOL_NAMES
        assert row["provider"] == "pool.test"
        # Every name has the address's findings and its own name verdict.
        suites = {tuple(rows.loc[(n, ip), ["tls_1_2", "tls_1_3"]]) for n in POOL_NAMES}
        assert suites == {(True, True)}
    ciphers = quick_run.results.ciphers
    per_name = ciphers.groupby(["mx_host", "ip"]).size()
    assert per_name.nunique() == 1 and len(per_name) == len(POOL_NAMES) * len(POOL) + len(
        SHARED_NAMES) + 5


def test_names_on_a_shared_address_are_judged_by_their_own_certificate(
    quick_run: Surveyed
) -> None:
    hosts = quick_run.results.hosts.set_index("mx_host")
    assert bool(hosts.loc["mail.bakery.test", "cert_matches_mx"])
    assert not bool(hosts.loc["mx.florist.test", "cert_matches_mx"])
    assert list(hosts.loc["mx.florist.test", "cert_sans"]) == ["wrong.mx.florist.test"]
    assert list(hosts.loc["smtp.tailor.test", "cert_sans"]) == ["smtp.tailor.test"]
    assert quick_run.addresses[SHARED].sessions <= (
        quick_run.addresses[TWIN].sessions + len(SHARED_NAMES) - 1)


def test_a_provider_wide_limit_is_kept_across_its_addresses(quick_run: Surveyed) -> None:
    pool = quick_run.groups["pool"]
    assert pool.throttled == 0
    assert pool.peak_connections <= QUICK_PER_PROVIDER


def test_a_one_connection_host_is_learned_not_fought(quick_run: Surveyed) -> None:
    solo = quick_run.row(SOLO)
    assert solo["concurrency"] == 1
    # The second connection's 421 taught it; retried without counting as a failure.
    assert 1 <= solo["throttled"] <= 3
    assert solo["duration_s"] <= 2 * quick_run.row(TWIN)["duration_s"] + 1.0


def test_a_rate_limited_host_is_paced(quick_run: Surveyed) -> None:
    rated = quick_run.row(RATED)
    assert rated["spacing_s"] > 0
    assert rated["throttled"] <= 10
    assert not bool(rated["budget_spent"])


def test_slow_greetings_are_waited_for_and_the_pregreet_trap_avoided(
    quick_run: Surveyed
) -> None:
    hosts = quick_run.results.hosts.set_index("mx_host")
    for name in ("mx.paused.test", "mx.screened.test"):
        assert hosts.loc[name, "status"] == "starttls"
    assert quick_run.row("127.0.231.13")["greeting_s"] >= 2 - 0.05
    assert quick_run.row("127.0.231.14")["greeting_s"] >= 1 - 0.05
    assert sum(s.pregreet_drops for s in quick_run.addresses.values()) == 0


def test_resume_starts_an_unfinished_address_from_what_it_learned(
    quick_run: Surveyed, tmp_path: Path
) -> None:
    """An address whose probe was cut short is probed again at the limits it had taught."""
    log = list(read_records(quick_run.out / RAW_LOG_NAME))
    kept = [r for r in log if r.get("ip") != SOLO and r.get("kind") != RecordKind.FINISH]
    learned = {**next(r for r in log if r.get("ip") == SOLO
                      and r["kind"] == RecordKind.ADDRESS_PROBE),
               "finished": False, "sessions": 5, "concurrency": 1, "spacing_s": 0.25}
    out = tmp_path / "resumed"
    out.mkdir()
    with RawLogWriter(out / RAW_LOG_NAME) as writer:
        for record in [*kept, learned]:
            writer.append(record)
    tb = quick_run.tb
    before = tb.address_stats()
    results = run_survey(from_arguments([name for _, name in tb.domains()]), out,
                         quick_run.settings, resume=True, progress=False)
    after = tb.address_stats()
    solo = results.addresses.set_index("ip").loc[SOLO]
    served = after[SOLO].sessions - before[SOLO].sessions
    # Started at one connection, 0.25 s apart: never refused this time, and its count goes on
    # from the 5 sessions recorded.
    assert after[SOLO].throttled == before[SOLO].throttled
    assert solo["concurrency"] == 1 and solo["spacing_s"] == 0.25
    assert solo["sessions"] == 5 + served and bool(solo["finished"])
    assert_hosts_match(quick_run.scenario, results)
    # Only the unfinished address was probed again.
    assert all(after[ip].sessions == before[ip].sessions for ip in after if ip != SOLO)


# -- the providers scenario, default settings, minutes in real time --------------------------


@pytest.fixture(scope="module")
def providers_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Surveyed]:
    with Testbed.start("providers") as tb:
        yield _survey(tb, tmp_path_factory.mktemp("providers") / "out", tb.settings())


@pytest.mark.slow
def test_providers_survey_keeps_every_rule(providers_run: Surveyed) -> None:
    _check_the_rules(providers_run, "127.0.230.30")
    assert providers_run.settings.probe.per_host_connections == DEFAULT_PER_HOST_CONNECTIONS


@pytest.mark.slow
def test_a_one_connection_postfix_costs_at_most_twice_its_twin(providers_run: Surveyed) -> None:
    solo, twin = providers_run.row("127.0.230.31"), providers_run.row("127.0.230.30")
    assert solo["concurrency"] == 1 and solo["throttled"] >= 1
    assert solo["duration_s"] <= 2 * twin["duration_s"]


@pytest.mark.slow
def test_six_a_minute_is_decided_within_the_budget_refused_at_most_ten_times(
    providers_run: Surveyed
) -> None:
    sixpm = providers_run.row("127.0.230.32")
    assert not bool(sixpm["budget_spent"])
    assert sixpm["duration_s"] < DEFAULT_HOST_BUDGET
    assert providers_run.addresses["127.0.230.32"].throttled <= 10
    # The pace it kept to once it knew: about 6 a minute.
    assert 60 / 6 <= sixpm["spacing_s"] <= 60 / 3


@pytest.mark.slow
def test_a_15_s_greeting_is_waited_for_with_the_defaults(providers_run: Surveyed) -> None:
    slow = providers_run.row("127.0.230.33")
    assert slow["greeting_s"] >= 15 - 0.1 and slow["timeouts"] == 0
    assert providers_run.results.hosts.set_index("mx_host").loc[
        "mx.slowgreet.test", "status"] == "starttls"


@pytest.mark.slow
def test_the_provider_wide_limit_is_never_exceeded(providers_run: Surveyed) -> None:
    pool = providers_run.groups["pool365"]
    assert pool.throttled == 0
    assert pool.peak_connections <= providers_run.settings.probe.per_provider_connections
