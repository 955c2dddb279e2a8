"""How many sessions an address (and a provider) gets, and when: its limits, learned as it goes.

The unit is the address (IP, port): however many MX names point at it, every session to it
passes its :class:`AddressGate`, and every session to a provider (the registrable domain of the
MX names, :func:`research.policy.names.provider_of`) passes that provider's
:class:`ProviderGate`. In the spirit of TCP's AIMD, an address's limits start at the survey's
(``per_host_connections`` at once, no spacing) and only tighten, on what the server says:

- a ``421``/``450``/``451`` reply before the TLS handshake, or a refused or reset connection,
  *while other sessions to the address are open*, is a concurrency limit (Postfix's
  ``smtpd_client_connection_count_limit``): the address's concurrency is halved, down to 1, and
  the session is tried again when a slot frees, without counting as a failure;
- the same *with no other session open* is a rate limit (``smtpd_client_connection_rate_limit``
  per ``anvil_rate_time_unit``): the address is paused, ``backoff`` seconds doubling with each
  refusal in a row, and once a session gets through again, sessions are spaced so that the
  run that had got through before the refusal (so many sessions since its first) would have
  been spread over the time it took to be let in again;
- silence (no connection, no answer in time) pauses the address the same way, and after
  ``retries`` + 1 silent sessions in a row the address is given up.

An address is given up, too, when its time budget (``host_budget``, extended for each further
MX name on it) is spent: no session starts that could not start within it. What was learned is
an :class:`AddressLimits`, recorded in the ``addresses`` table and restored on ``--resume``.

The gates are this process's: an address is probed by one task in one process, so its gate is
exact; a provider's gate is shared by the tasks of one survey in this process (a Dask worker
has its own, see the README).
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any

from research.settings import ProbeSettings

MAX_PAUSE = 120.0
"""Longest single pause of an address, seconds, however many refusals came in a row."""
THROTTLING_CODES = frozenset({421, 450, 451})
"""Reply codes that say "not now" (RFC 5321 §4.2.3): limits to learn, not answers."""


class Signal(Enum):
    """What one session's end says about the address's limits."""

    ANSWERED = "answered"
    """The server answered (whatever the answer was)."""
    THROTTLED = "throttled"
    """A 421, 450 or 451 before the TLS handshake."""
    DROPPED = "dropped"
    """Connection refused, or closed or reset before an answer."""
    SILENT = "silent"
    """No connection, or no answer in time."""


@dataclass
class AddressLimits:
    """What an address taught the survey: its limits so far and what probing it cost."""

    concurrency: int
    """Sessions it may have open at once now."""
    spacing_s: float = 0.0
    """Least seconds between two session starts now (0: none)."""
    sessions: int = 0
    """Sessions (TCP connections) opened to it."""
    throttled: int = 0
    """421/450/451 replies received before a handshake."""
    dropped: int = 0
    """Connections refused, or closed or reset before an answer."""
    timeouts: int = 0
    """Sessions that got no connection or no answer in time."""
    greeting_s: float | None = None
    """The longest the greeting took, seconds."""
    paused_s: float = 0.0
    """Seconds of pauses imposed on it."""
    session_s: float | None = None
    """The mean duration of its sessions that got an answer, seconds (this run's)."""
    parts: int = 0
    """Parts its TLS enumeration was asked in: one per lane, plus one for each time a lane's
    remaining suites were split to use an idle connection (each costs one session more)."""

    def as_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any], most: int) -> AddressLimits:
        """The limits an earlier run recorded, within ``most`` connections at once."""
        known = {k: record[k] for k in cls.__dataclass_fields__ if record.get(k) is not None}
        known["concurrency"] = max(1, min(int(known.get("concurrency", most)), most))
        return cls(**known)


class ProviderGate:
    """Connections in flight and session starts per second to one provider, across its
    addresses and the tasks of a survey in this process."""

    def __init__(self, connections: int, rate: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.connections = connections
        self.interval = 1.0 / rate
        self._clock = clock
        self._cond = threading.Condition()
        self._open = 0
        self._next = 0.0
        self.peak = 0
        """Most connections it let be open at once."""
        self.last_used = clock()

    def acquire(self, deadline: float) -> bool:
        """Wait for a slot and the next start; False if neither comes before ``deadline``."""
        with self._cond:
            while True:
                now = self._clock()
                start = max(now, self._next)
                if start > deadline:
                    return False
                if self._open < self.connections and now >= self._next:
                    self._open += 1
                    self.peak = max(self.peak, self._open)
                    self._next = now + self.interval
                    self.last_used = now
                    return True
                wait = self._next - now if self._open < self.connections else deadline - now
                self._cond.wait(max(0.0, min(wait, deadline - now)))

    def release(self) -> None:
        with self._cond:
            self._open -= 1
            self.last_used = self._clock()
            self._cond.notify_all()

    @property
    def idle(self) -> bool:
        return self._open == 0


class _Providers:
    """This process's provider gates, one per (survey, provider); idle ones are dropped."""

    IDLE_S = 300.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: dict[tuple[str, str], ProviderGate] = {}
        self._calls = 0

    def get(self, survey: str, provider: str, settings: ProbeSettings) -> ProviderGate:
        with self._lock:
            self._calls += 1
            if self._calls % 1000 == 0:
                self._prune()
            gate = self._gates.get((survey, provider))
            if gate is None:
                gate = ProviderGate(settings.per_provider_connections, settings.provider_rate)
                self._gates[(survey, provider)] = gate
            return gate

    def _prune(self) -> None:
        now = time.monotonic()
        for key, gate in list(self._gates.items()):
            if gate.idle and now - gate.last_used > self.IDLE_S:
                del self._gates[key]

    def peaks(self, survey: str) -> dict[str, int]:
        with self._lock:
            return {p: g.peak for (s, p), g in self._gates.items() if s == survey}


PROVIDERS = _Providers()
"""The provider gates of this process."""


class AddressGate:
    """Every session to one address passes here: its concurrency, spacing, pauses and budget.

    :meth:`acquire` waits for a slot (and the provider's), :meth:`Permit.release` reports how
    the session ended and learns from it (module doc).
    """

    def __init__(self, settings: ProbeSettings, provider: ProviderGate | None = None,
                 learned: AddressLimits | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        most = settings.per_host_connections
        self.limits = learned or AddressLimits(concurrency=most)
        self.limits.concurrency = max(1, min(self.limits.concurrency, most))
        self._settings = settings
        self.provider = provider
        """The provider's gate every session also passes, if any."""
        self._clock = clock
        self._cond = threading.Condition()
        self._open = 0
        self._next_start = 0.0
        self._paused_until = 0.0
        self.started = clock()
        self.deadline = self.started + settings.host_budget
        self._streak = 0
        """Refusals and silences in a row: the exponent of the next pause."""
        self._run: tuple[float, int] | None = None
        """(start of its first session, sessions) of the run answered since the last pause."""
        self._refused_run: tuple[float, int] | None = None
        """The run that a rate limit ended, until a session gets through again."""
        self.last_refusal: str | None = None
        self.gave_up: str | None = None
        """Why no further session is started; None while sessions go on."""
        self.budget_spent = False
        """A time budget ran out (and stays spent for the record, even once extended)."""
        self._out_of_time = False
        self._answered = (0, 0.0)
        """(sessions, seconds) of this run's sessions that got an answer."""

    def extend(self, seconds: float) -> None:
        """Give the address ``seconds`` more from now (a further MX name's own budget)."""
        with self._cond:
            self.deadline = max(self.deadline, self._clock() + seconds)
            if self._out_of_time:
                self.gave_up, self._out_of_time = None, False

    def give_up(self, reason: str) -> None:
        with self._cond:
            self.gave_up = self.gave_up or reason
            self._cond.notify_all()

    def acquire(self) -> Permit | None:
        """Wait until a session may start; None (no session) once the address is given up or
        its budget would be spent before a session could start."""
        with self._cond:
            while True:
                if self.gave_up is not None:
                    return None
                now = self._clock()
                start = max(now, self._paused_until, self._next_start)
                if start >= self.deadline:
                    self._budget_spent()
                    return None
                if now >= start and self._open < self.limits.concurrency:
                    self._open += 1
                    self._next_start = now + self.limits.spacing_s
                    break
                wait = (start - now) if now < start else (self.deadline - now)
                self._cond.wait(max(0.001, wait))
        if self.provider is not None and not self.provider.acquire(self.deadline):
            with self._cond:
                self._open -= 1
                self._budget_spent()
                self._cond.notify_all()
            return None
        with self._cond:
            self.limits.sessions += 1
        return Permit(self, self._clock())

    def _budget_spent(self) -> None:
        self.budget_spent = True
        if self.gave_up is None:
            self._out_of_time = True
        self.gave_up = self.gave_up or f"time budget of {self._settings.host_budget:g} s spent"
        if self.last_refusal and self.last_refusal not in self.gave_up:
            self.gave_up += f"; last refusal: {self.last_refusal}"

    def _release(self, permit: Permit, signal: Signal, reason: str | None) -> None:
        with self._cond:
            self._open -= 1
            now = self._clock()
            if signal is Signal.ANSWERED:
                count, seconds = self._answered
                self._answered = (count + 1, seconds + now - permit.started)
                self.limits.session_s = self._answered[1] / self._answered[0]
                self._learn_answered(permit.started)
            elif signal is Signal.SILENT:
                self.limits.timeouts += 1
                self._pause(now)
            else:
                if signal is Signal.THROTTLED:
                    self.limits.throttled += 1
                else:
                    self.limits.dropped += 1
                self.last_refusal = reason or self.last_refusal
                if self._open > 0:
                    # Others were open: too many at once. Halve, and try again when one ends.
                    self.limits.concurrency = max(1, self.limits.concurrency // 2)
                else:
                    if self._refused_run is None:
                        self._refused_run = self._run or (permit.started, 1)
                    self._pause(now)
            self._cond.notify_all()
        if self.provider is not None:
            self.provider.release()

    def _learn_answered(self, started: float) -> None:
        self._streak = 0
        if self._refused_run is not None:
            first, count = self._refused_run
            # The server let `count` sessions through from `first`, then none until `started`:
            # spread that many over that long and its window is never overrun again.
            self.limits.spacing_s = max(self.limits.spacing_s, (started - first) / count)
            self._refused_run, self._run = None, (started, 1)
        elif self._run is None:
            self._run = (started, 1)
        else:
            self._run = (min(self._run[0], started), self._run[1] + 1)

    def _pause(self, now: float) -> None:
        pause = min(MAX_PAUSE, self._settings.backoff * 2 ** self._streak)
        self._streak += 1
        until = now + pause
        if until > self._paused_until:
            self.limits.paused_s += until - max(now, self._paused_until)
            self._paused_until = until

    def count_parts(self, parts: int) -> None:
        """Note the parts a TLS enumeration of this address was asked in."""
        with self._cond:
            self.limits.parts += parts

    def useful_concurrency(self) -> int:
        """How many sessions to it could be open at once now and all be let through: the
        concurrency it allows (learned), within its provider's connections and the sessions
        its provider's rate starts in the time one session takes (more would only wait)."""
        with self._cond:
            most, session_s = self.limits.concurrency, self.limits.session_s
        if self.provider is not None:
            most = min(most, self.provider.connections)
            if session_s is not None:
                most = min(most, max(1, math.ceil(session_s / self.provider.interval)))
        return max(1, most)

    def greeted(self, seconds: float | None) -> None:
        if seconds is not None:
            with self._cond:
                self.limits.greeting_s = max(self.limits.greeting_s or 0.0, seconds)


@dataclass
class Permit:
    """One session's slot at an address (and its provider); release it exactly once."""

    gate: AddressGate
    started: float
    released: bool = field(default=False)

    def greeted(self, seconds: float | None) -> None:
        """Note how long the greeting took."""
        self.gate.greeted(seconds)

    def release(self, signal: Signal, reason: str | None = None) -> None:
        """The session is over; ``signal`` says how it ended, ``reason`` what the server said."""
        if not self.released:
            self.released = True
            self.gate._release(self, signal, reason)


_live: dict[tuple[str, str, int], weakref.ReferenceType[AddressGate]] = {}
_live_lock = threading.Lock()


def register(survey: str, ip: str, port: int, gate: AddressGate) -> None:
    """Note an address being probed in this process (see :func:`live`)."""
    with _live_lock:
        _live[(survey, ip, port)] = weakref.ref(gate)


def unregister(survey: str, ip: str, port: int) -> None:
    with _live_lock:
        _live.pop((survey, ip, port), None)


def live(survey: str) -> list[tuple[str, int, AddressLimits]]:
    """(ip, port, limits so far) of the addresses of ``survey`` being probed in this process
    now: what an interrupted survey records so that ``--resume`` starts from it."""
    with _live_lock:
        found = [(ip, port, ref()) for (s, ip, port), ref in _live.items() if s == survey]
    return [(ip, port, replace(gate.limits)) for ip, port, gate in found if gate is not None]
