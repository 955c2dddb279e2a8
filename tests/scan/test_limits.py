"""The address and provider gates on their own: what each way a session ends teaches them.

Real threads and real time, in tenths of seconds; the servers' side of it is in
``test_politeness.py``.
"""

from __future__ import annotations

import threading
import time

import pytest

from research.scan.limits import (
    MAX_PAUSE,
    AddressGate,
    AddressLimits,
    Permit,
    ProviderGate,
    Signal,
)
from research.settings import ProbeSettings


def settings(**options: object) -> ProbeSettings:
    base: dict[str, object] = {"per_host_connections": 2, "backoff": 0.1, "host_budget": 30.0}
    return ProbeSettings(**{**base, **options})  # type: ignore[arg-type]


def acquired(gate: AddressGate) -> Permit:
    permit = gate.acquire()
    assert permit is not None
    return permit


def in_thread(gate: AddressGate) -> tuple[threading.Thread, list[Permit | None]]:
    got: list[Permit | None] = []
    thread = threading.Thread(target=lambda: got.append(gate.acquire()), daemon=True)
    thread.start()
    return thread, got


def test_a_refusal_while_others_are_open_halves_the_concurrency_without_a_pause() -> None:
    gate = AddressGate(settings(per_host_connections=4))
    permits = [acquired(gate) for _ in range(4)]
    permits[3].release(Signal.THROTTLED, "421 4.7.0 mx Error: too many connections from me")
    assert (gate.limits.concurrency, gate.limits.throttled, gate.limits.paused_s) == (2, 1, 0.0)
    # Three are still open, over the new limit of two: the next one waits for two to end.
    thread, got = in_thread(gate)
    permits[0].release(Signal.ANSWERED)
    thread.join(0.2)
    assert not got
    permits[1].release(Signal.ANSWERED)
    thread.join(1.0)
    assert got and got[0] is not None
    permits[2].release(Signal.DROPPED, "connect: Connection refused")
    assert (gate.limits.concurrency, gate.limits.dropped) == (1, 1)
    got[0].release(Signal.ANSWERED)
    assert gate.limits.sessions == 5


def test_a_refusal_with_nothing_else_open_is_a_rate_limit_learned_as_spacing() -> None:
    gate = AddressGate(settings(backoff=0.2))
    first = time.monotonic()
    for _ in range(3):
        acquired(gate).release(Signal.ANSWERED)
    acquired(gate).release(Signal.THROTTLED, "421 rate")
    paused = time.monotonic()
    again = acquired(gate)
    waited = time.monotonic() - paused
    again.release(Signal.ANSWERED)
    assert waited >= 0.2 - 0.01
    # Three got through from `first`, then none until the pause was over: a start every
    # (that long) / 3 keeps to the server's window.
    assert gate.limits.spacing_s == pytest.approx((again.started - first) / 3, abs=0.02)
    assert gate.limits.concurrency == 2 and gate.limits.paused_s == pytest.approx(0.2)
    spaced = time.monotonic()
    acquired(gate).release(Signal.ANSWERED)
    acquired(gate).release(Signal.ANSWERED)
    assert time.monotonic() - spaced >= gate.limits.spacing_s - 0.01


def test_refusals_in_a_row_double_the_pause_up_to_its_cap() -> None:
    gate = AddressGate(settings(backoff=0.05))
    pauses = []
    for _ in range(3):
        before = gate.limits.paused_s
        acquired(gate).release(Signal.THROTTLED, "421")
        pauses.append(round(gate.limits.paused_s - before, 3))
    assert pauses == [0.05, 0.1, 0.2]
    assert MAX_PAUSE >= 60


def test_silence_pauses_and_counts() -> None:
    gate = AddressGate(settings(backoff=0.05))
    acquired(gate).release(Signal.SILENT)
    assert (gate.limits.timeouts, gate.limits.concurrency) == (1, 2)
    assert gate.limits.paused_s == pytest.approx(0.05)


def test_no_session_starts_that_the_budget_could_not_hold() -> None:
    gate = AddressGate(settings(backoff=1.0, host_budget=0.3))
    acquired(gate).release(Signal.THROTTLED, "421 4.7.0 mx Error: too many connections")
    started = time.monotonic()
    assert gate.acquire() is None
    # Given up at once, not after sitting out a pause that ends past the budget.
    assert time.monotonic() - started < 0.1
    assert gate.budget_spent
    assert gate.gave_up == ("time budget of 0.3 s spent; last refusal: 421 4.7.0 mx Error: too "
                            "many connections")
    # A further MX name brings its own budget; the record still says one ran out.
    gate.extend(5.0)
    assert gate.gave_up is None and gate.budget_spent
    acquired(gate).release(Signal.ANSWERED)
    # An address given up for silence stays given up.
    gate.give_up("address stopped answering")
    gate.extend(5.0)
    assert gate.acquire() is None


def test_a_given_up_address_wakes_every_waiting_lane() -> None:
    gate = AddressGate(settings(per_host_connections=1))
    held = acquired(gate)
    thread, got = in_thread(gate)
    thread.join(0.1)
    gate.give_up("address stopped answering")
    thread.join(1.0)
    assert got == [None]
    held.release(Signal.ANSWERED)


def test_the_provider_caps_connections_across_its_addresses() -> None:
    provider = ProviderGate(connections=1, rate=1000.0)
    a = AddressGate(settings(), provider)
    b = AddressGate(settings(), provider)
    held = acquired(a)
    thread, got = in_thread(b)
    thread.join(0.2)
    assert not got
    held.release(Signal.ANSWERED)
    thread.join(1.0)
    assert got and got[0] is not None
    got[0].release(Signal.ANSWERED)
    assert provider.peak == 1


def test_the_provider_paces_session_starts() -> None:
    provider = ProviderGate(connections=10, rate=20.0)
    gates = [AddressGate(settings(), provider) for _ in range(3)]
    started = time.monotonic()
    permits = [acquired(g) for g in gates for _ in range(2)]
    assert time.monotonic() - started >= 5 / 20.0 - 0.01
    for permit in permits:
        permit.release(Signal.ANSWERED)


def test_learned_limits_come_back_within_the_surveys_cap() -> None:
    record = {"concurrency": 1, "spacing_s": 12.5, "sessions": 7, "throttled": 3,
              "greeting_s": 15.2, "kind": "address_probe", "ip": "192.0.2.1"}
    limits = AddressLimits.from_record(record, most=2)
    assert (limits.concurrency, limits.spacing_s, limits.sessions, limits.throttled) == (
        1, 12.5, 7, 3)
    assert AddressLimits.from_record({"concurrency": 9}, most=2).concurrency == 2
    gate = AddressGate(settings(), learned=limits)
    assert gate.limits.spacing_s == 12.5
    acquired(gate).release(Signal.ANSWERED)
    assert gate.limits.sessions == 8


def test_useful_concurrency_is_what_the_address_and_its_provider_let_through() -> None:
    now = [0.0]
    provider = ProviderGate(connections=3, rate=10.0, clock=lambda: now[0])
    gate = AddressGate(settings(per_host_connections=5), provider, clock=lambda: now[0])
    # Before any session is timed: the address's 5, within the provider's 3 connections.
    assert gate.limits.session_s is None and gate.useful_concurrency() == 3
    # Sessions of 0.25 s at 10 starts a second: 2.5 open on average, so 3 can be let through.
    permit = acquired(gate)
    now[0] += 0.25
    permit.release(Signal.ANSWERED)
    assert gate.limits.session_s == 0.25 and gate.useful_concurrency() == 3
    # Sessions of 0.15 s: 2 at once are as many as the rate lets start.
    now[0] += 1.0
    permit = acquired(gate)
    now[0] += 0.05
    permit.release(Signal.ANSWERED)
    assert gate.limits.session_s == pytest.approx(0.15) and gate.useful_concurrency() == 2
    # Refusals while another was open halve what the address allows, 5 → 2 → 1: that binds.
    for allowed in (2, 1):
        now[0] += 1.0
        first = acquired(gate)
        now[0] += 0.1
        acquired(gate).release(Signal.THROTTLED, "421 too many connections")
        first.release(Signal.ANSWERED)
        assert gate.limits.concurrency == allowed
    assert gate.useful_concurrency() == 1
    gate.count_parts(9)
    assert gate.limits.parts == 9 and gate.limits.as_record()["parts"] == 9
