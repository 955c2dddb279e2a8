"""The testbed's traffic shaping: hosts at a distance (rtt_ms) and hosts that throttle (421).

Checked with real clients (sockets, smtplib, ssl) against real testbed servers. The delay tests
assert lower bounds only: a delay the server applies can never make an answer come sooner.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest
from support.wire import read_reply

from research.errors import ScenarioError
from research.testbed import Testbed, load_scenario

pytestmark = pytest.mark.testbed

SHAPED = """\
[scenario]
name = "shaped"
description = "a near host, a far host, two throttling hosts"
rtt_ms = 0

[[hosts]]
name = "mx.near.test"
addresses = ["127.0.202.1"]
tls_min = "1.0"
tls_max = "1.3"
expect = { status = "starttls", versions = ["TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"] }

[[hosts]]
name = "mx.far.test"
addresses = ["127.0.202.2"]
tls_min = "1.2"
tls_max = "1.3"
rtt_ms = 150
expect = { status = "starttls", versions = ["TLS 1.2", "TLS 1.3"] }

[[hosts]]
name = "mx.every.test"
addresses = ["127.0.202.3"]
throttle = { every = 2 }
expect = { status = "starttls", versions = ["TLS 1.2", "TLS 1.3"] }

[[hosts]]
name = "mx.after.test"
addresses = ["127.0.202.4"]
starttls = false
throttle = { after = 1 }
expect = { status = "no_starttls" }

[[domains]]
name = "near.test"
mx = [[10, "mx.near.test"]]
expect = { dns_status = "mx" }

[[domains]]
name = "far.test"
mx = [[10, "mx.far.test"]]
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


@pytest.fixture(scope="module")
def shaped_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shaped") / "shaped.toml"
    path.write_text(SHAPED)
    return path


def _timed_session(ip: str, port: int) -> dict[str, float]:
    """Seconds each step of a STARTTLS session waited for the server."""
    waited: dict[str, float] = {}
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    start = time.monotonic()
    with socket.create_connection((ip, port), timeout=10) as sock:
        assert read_reply(sock).startswith(b"220 ")
        waited["greeting"] = time.monotonic() - start
        for command in ("EHLO", "STARTTLS"):
            start = time.monotonic()
            sock.sendall(f"{command} client.test\r\n".encode() if command == "EHLO"
                         else b"STARTTLS\r\n")
            assert read_reply(sock)[:3] in (b"250", b"220")
            waited[command] = time.monotonic() - start
        start = time.monotonic()
        with ctx.wrap_socket(sock, server_hostname="x") as tls:
            waited["handshake"] = time.monotonic() - start
            start = time.monotonic()
            tls.sendall(b"QUIT\r\n")
            assert read_reply(tls).startswith(b"221")
            waited["QUIT"] = time.monotonic() - start
    return waited


def test_far_host_answers_a_round_trip_late_and_still_works(shaped_path: Path) -> None:
    with Testbed.start(shaped_path) as tb:
        far = _timed_session("127.0.202.2", tb.smtp_port)
        near = _timed_session("127.0.202.1", tb.smtp_port)
        stats = tb.stats()
    # Every exchange, TLS included, waited at least one round trip (150 ms) for the far host.
    assert all(seconds >= 0.15 for seconds in far.values()), far
    assert stats[("mx.far.test", "127.0.202.2")].sessions == 1
    assert stats[("mx.far.test", "127.0.202.2")].tls_handshakes == 1
    assert stats[("mx.near.test", "127.0.202.1")].tls_handshakes == 1
    assert set(near) == set(far)


def test_the_connect_costs_its_round_trip_too(shaped_path: Path) -> None:
    # At 150 ms the client's connect() returns after one round trip and the greeting arrives
    # one more after that: two before the greeting, however soon loopback connects.
    with Testbed.start(shaped_path) as tb:
        start = time.monotonic()
        with socket.create_connection(("127.0.202.2", tb.smtp_port), timeout=10) as sock:
            assert read_reply(sock).startswith(b"220 ")
            waited = time.monotonic() - start
            sock.sendall(b"QUIT\r\n")
            assert read_reply(sock).startswith(b"221")
    assert waited >= 2 * 0.15, waited


def test_a_refused_handshake_costs_a_round_trip(shaped_path: Path) -> None:
    # The far host has an RSA certificate: a client offering only an ECDSA suite is refused,
    # and learns it a round trip after its ClientHello, as on a real network (the server's
    # abort travels like its writes, instead of overtaking them).
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    with Testbed.start(shaped_path) as tb:
        with socket.create_connection(("127.0.202.2", tb.smtp_port), timeout=10) as sock:
            assert read_reply(sock).startswith(b"220 ")
            sock.sendall(b"EHLO client.test\r\n")
            assert read_reply(sock).startswith(b"250")
            sock.sendall(b"STARTTLS\r\n")
            assert read_reply(sock).startswith(b"220")
            start = time.monotonic()
            with pytest.raises(ssl.SSLError) as refused:
                ctx.wrap_socket(sock, server_hostname="x")
            waited = time.monotonic() - start
        stats = tb.stats()[("mx.far.test", "127.0.202.2")]
    assert waited >= 0.15, (waited, refused.value)
    assert stats.tls_handshakes == 0


def test_start_overrides_the_scenario_wide_delay(shaped_path: Path) -> None:
    with Testbed.start(shaped_path, rtt_ms=120) as tb:
        near = _timed_session("127.0.202.1", tb.smtp_port)
    assert all(seconds >= 0.12 for seconds in near.values()), near


def _greeting(ip: str, port: int) -> bytes:
    with socket.create_connection((ip, port), timeout=10) as sock:
        line = read_reply(sock)
        if line.startswith(b"220"):
            sock.sendall(b"QUIT\r\n")
            read_reply(sock)
        else:
            # A throttling server hangs up after its 421.
            assert sock.recv(100) == b""
        return line


def test_throttle_every_nth_connection(shaped_path: Path) -> None:
    with Testbed.start(shaped_path) as tb:
        greetings = [_greeting("127.0.202.3", tb.smtp_port)[:3] for _ in range(5)]
        stats = tb.stats()[("mx.every.test", "127.0.202.3")]
    assert greetings == [b"220", b"421", b"220", b"421", b"220"]
    assert (stats.sessions, stats.throttled) == (5, 2)


def test_throttle_after_n_connections(shaped_path: Path) -> None:
    with Testbed.start(shaped_path) as tb:
        greetings = [_greeting("127.0.202.4", tb.smtp_port) for _ in range(3)]
        stats = tb.stats()[("mx.after.test", "127.0.202.4")]
    assert greetings[0].startswith(b"220 mx.after.test")
    assert greetings[1] == greetings[2]
    assert greetings[1].startswith(b"421 4.7.0 mx.after.test ")
    assert (stats.sessions, stats.throttled) == (3, 2)


def test_shipped_scenarios_are_near_and_unthrottled() -> None:
    # Their ground truth is what a scan must find; throttling would make that unreachable.
    for name in ("cases", "isc-2019"):
        scenario = load_scenario(name)
        assert scenario.rtt_ms == 0 and all(h.throttle is None for h in scenario.hosts)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("rtt_ms = 0", "rtt_ms = -5", "scenario.rtt_ms must be a number"),
        ("rtt_ms = 150", 'rtt_ms = "fast"', "host mx.far.test: rtt_ms must be a number"),
        ("throttle = { every = 2 }", "throttle = { every = 1 }", "every must be an integer of "
         "at least 2"),
        ("throttle = { after = 1 }", "throttle = { after = 0 }", "after must be an integer"),
        ("throttle = { every = 2 }", "throttle = { every = 2, after = 3 }", "exactly one of"),
        ("throttle = { every = 2 }", "throttle = { sometimes = 2 }", "unknown key 'sometimes'"),
        ('name = "mx.every.test"\naddresses = ["127.0.202.3"]',
         'name = "mx.every.test"\naddresses = ["127.0.202.3"]\nbehaviour = "down"',
         "needs a host that accepts connections"),
    ],
)
def test_bad_shaping_is_rejected(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in SHAPED
    text = SHAPED.replace(old, new, 1)
    if 'behaviour = "down"' in new:
        text = text.replace('throttle = { every = 2 }\nexpect = { status = "starttls", versions = '
                            '["TLS 1.2", "TLS 1.3"] }', 'throttle = { every = 2 }\n'
                            'expect = { status = "refused" }', 1)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert message in str(info.value)


def test_shaped_scenario_is_valid(shaped_path: Path) -> None:
    shaped = load_scenario(shaped_path)
    far = shaped.host("mx.far.test")
    assert shaped.rtt_for(far) == 150 and shaped.rtt_for(shaped.host("mx.near.test")) == 0
    throttle = shaped.host("mx.every.test").throttle
    assert throttle is not None
    assert [throttle.refuses(n) for n in range(1, 5)] == [False, True, False, True]
