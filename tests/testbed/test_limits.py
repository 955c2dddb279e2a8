"""The testbed's models of real servers' limits and greetings, checked with plain sockets and
Python's ssl: Postfix's anvil (per-client count and rate), a provider-wide limit shared by
several addresses, postscreen's pregreet test, Sendmail's greet pause, shared addresses with a
certificate per name (SNI), and the counts a scanner is held to (peak connections)."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from support.politeness import (
    GREET_DELAY,
    GREET_WAIT,
    PAUSED,
    POOL,
    QUICK,
    RATE_LIMIT,
    RATE_UNIT,
    RATED,
    SCREENED,
    SHARED,
    SOLO,
    TWIN,
)
from support.wire import read_line

from research.errors import ScenarioError
from research.testbed import Testbed, load_scenario

pytestmark = pytest.mark.testbed

TOO_MANY = b"421 4.7.0 mx.solo.test Error: too many connections from 127.0.0.1\r\n"


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    path = tmp_path_factory.mktemp("quick") / "quick.toml"
    path.write_text(QUICK)
    with Testbed.start(path, rtt_ms=0) as tb:
        yield tb


def _connect(tb: Testbed, ip: str) -> socket.socket:
    return socket.create_connection((ip, tb.smtp_port), timeout=10)


def _closed(sock: socket.socket) -> bool:
    return sock.recv(100) == b""


def test_anvil_count_limit_answers_the_second_connection_as_postfix_does(quick: Testbed
                                                                          ) -> None:
    with _connect(quick, SOLO) as first:
        assert read_line(first).startswith(b"220 mx.solo.test ESMTP")
        with _connect(quick, SOLO) as second:
            assert read_line(second) == TOO_MANY
            assert _closed(second)
        first.sendall(b"QUIT\r\n")
        assert read_line(first).startswith(b"221")
    # Over: the next one is let in.
    with _connect(quick, SOLO) as again:
        assert read_line(again).startswith(b"220 ")
    stats = quick.address_stats()[SOLO]
    assert (stats.sessions, stats.throttled, stats.peak_connections) == (3, 1, 2)


def test_anvil_rate_limit_counts_attempts_in_a_fixed_window(quick: Testbed) -> None:
    greetings = []
    started = time.monotonic()
    for _ in range(RATE_LIMIT + 2):
        with _connect(quick, RATED) as sock:
            greetings.append(read_line(sock)[:3])
    assert time.monotonic() - started < RATE_UNIT
    assert greetings == [b"220"] * RATE_LIMIT + [b"421"] * 2
    # The window started with the first attempt; once it has passed, a new one starts.
    time.sleep(max(0.0, started + RATE_UNIT - time.monotonic()) + 0.1)
    with _connect(quick, RATED) as sock:
        assert read_line(sock).startswith(b"220 ")


def test_postscreen_drops_a_client_that_talks_before_the_greeting_ends(quick: Testbed) -> None:
    with _connect(quick, SCREENED) as early:
        assert read_line(early) == b"220-mx.screened.test ESMTP Postfix\r\n"
        early.sendall(b"EHLO too.early.test\r\n")
        assert read_line(early) == b"521 5.7.0 Error: I can break rules, too. Goodbye.\r\n"
        assert _closed(early)
    started = time.monotonic()
    with _connect(quick, SCREENED) as patient:
        assert read_line(patient) == b"220-mx.screened.test ESMTP Postfix\r\n"
        assert read_line(patient).startswith(b"220 mx.screened.test ESMTP")
        assert time.monotonic() - started >= GREET_WAIT - 0.05
        patient.sendall(b"QUIT\r\n")
        assert read_line(patient).startswith(b"221")
    # Passed: not tested again (postscreen_greet_ttl), greeted at once.
    started = time.monotonic()
    with _connect(quick, SCREENED) as known:
        assert read_line(known).startswith(b"220 mx.screened.test ESMTP")
        assert time.monotonic() - started < GREET_WAIT / 2
    assert quick.address_stats()[SCREENED].pregreet_drops == 1


def test_greet_pause_holds_the_greeting_and_refuses_early_talkers(quick: Testbed) -> None:
    started = time.monotonic()
    with _connect(quick, PAUSED) as patient:
        assert read_line(patient).startswith(b"220 mx.paused.test ESMTP")
        assert time.monotonic() - started >= GREET_DELAY - 0.05
    with _connect(quick, PAUSED) as early:
        early.sendall(b"EHLO too.early.test\r\n")
        assert read_line(early) == b"554 mx.paused.test ESMTP not accepting messages\r\n"


def _certificate_names(tb: Testbed, ip: str, sni: str | None) -> list[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with _connect(tb, ip) as sock:
        assert read_line(sock).startswith(b"220 ")
        sock.sendall(b"EHLO client.test\r\n")
        while not read_line(sock).startswith(b"250 "):
            pass
        sock.sendall(b"STARTTLS\r\n")
        assert read_line(sock).startswith(b"220")
        with context.wrap_socket(sock, server_hostname=sni) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    extension = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
        x509.SubjectAlternativeName)
    return list(extension.value.get_values_for_type(x509.DNSName))


def test_a_shared_address_presents_each_names_certificate_by_sni(quick: Testbed) -> None:
    assert _certificate_names(quick, SHARED, "smtp.tailor.test") == ["smtp.tailor.test"]
    assert _certificate_names(quick, SHARED, "mx.florist.test") == ["wrong.mx.florist.test"]
    # No SNI, or a name it does not know: the first name's (by name order).
    assert _certificate_names(quick, SHARED, None) == ["mail.bakery.test"]
    assert _certificate_names(quick, POOL[0], "c2-test.mx.pool.test") == [
        "mx.pool.test", "*.mx.pool.test"]
    stats = quick.stats()
    # One server: the names share the address's counters.
    assert stats[("mail.bakery.test", SHARED)] is stats[("smtp.tailor.test", SHARED)]


def test_a_provider_wide_limit_counts_across_its_addresses(quick: Testbed) -> None:
    before = quick.group_stats()["pool"]
    first, second = _connect(quick, POOL[0]), _connect(quick, POOL[1])
    try:
        assert read_line(first).startswith(b"220 ") and read_line(second).startswith(b"220 ")
        with _connect(quick, POOL[1]) as third:
            assert read_line(third) == (b"421 4.3.2 The maximum number of concurrent server "
                                    b"connections has exceeded a limit, closing transmission "
                                    b"channel\r\n")
    finally:
        first.close()
        second.close()
    group = quick.group_stats()["pool"]
    assert (group.sessions - before.sessions, group.throttled - before.throttled) == (3, 1)
    assert group.peak_connections == 3


def test_peak_counts_connections_open_at_once(quick: Testbed) -> None:
    socks = [_connect(quick, TWIN) for _ in range(3)]
    for sock in socks:
        assert read_line(sock).startswith(b"220 ")
    for sock in socks:
        sock.close()
    time.sleep(0.2)
    with _connect(quick, TWIN) as sock:
        assert read_line(sock).startswith(b"220 ")
    stats = quick.address_stats()[TWIN]
    assert (stats.sessions, stats.peak_connections) == (4, 3)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("anvil = { count_limit = 1 }", "anvil = { count_limit = 0 }",
     "anvil.count_limit must be a positive integer"),
    ("anvil = { count_limit = 1 }", "anvil = { rate_time_unit = 5 }",
     "needs count_limit, rate_limit or both"),
    ("greet_delay = 2", "greet_delay = 900", "greet_delay must be a number of seconds"),
    ('greet_action = "drop"', 'greet_action = "enforce"', "greet_action is 'enforce'"),
    ("count_limit = 2\n", "count_limit = 2\nrate_limit = 0\n", "rate_limit must be a positive"),
    (f'addresses = {POOL!r}\ncount_limit', 'addresses = ["127.0.231.1"]\ncount_limit',
     "a shared limit needs at least two addresses"),
    (f'addresses = {POOL!r}\ncount_limit', 'addresses = ["127.0.231.1", "127.0.231.99"]\n'
     "count_limit", "127.0.231.99 is no host's address"),
])
def test_bad_limits_are_rejected(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in QUICK
    path = tmp_path / "bad.toml"
    path.write_text(QUICK.replace(old, new, 1))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert message in str(info.value)


def test_limits_keep_the_ground_truth(tmp_path: Path) -> None:
    path = tmp_path / "quick.toml"
    path.write_text(QUICK)
    scenario = load_scenario(path)
    solo = scenario.host("mx.solo.test")
    assert solo.anvil is not None and solo.anvil.count_limit == 1
    assert solo.expect_versions == ("TLS 1.2", "TLS 1.3")
    assert [h.name for h in scenario.hosts_at(POOL[0])] == [
        f"c{i}-test.mx.pool.test" for i in range(4)]
    assert scenario.shared_limits[0].addresses == tuple(POOL)
