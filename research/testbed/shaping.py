"""What stands between a testbed listener's socket and its host's protocol: distance, limits
and greeting delays, and the counts of what the address served.

Every connection of an SMTP listener goes through a :class:`Connection`, so every behaviour
(aiosmtpd sessions, STARTTLS, greeting errors, tarpits, hostile servers) gets it without knowing:

- it counts the address's connections: accepted, and open at once (the peak is what tests and
  benchmarks hold a scanner's per-address cap against);
- the limits, in the order a real deployment applies them: a provider's limit shared by several
  addresses (:class:`ClientLimits` of a ``[[shared_limits]]`` entry), Postfix's anvil limits of
  the address (``anvil``) and the scenario's ``throttle``, each answering ``421`` in its
  software's words and closing;
- the greeting's own delays: postscreen's pregreet test (``220-`` at once, ``220`` after the
  wait, and a client that talks meanwhile dropped with ``521``) and Sendmail's ``greet_pause``
  (the greeting held back; a client that talks meanwhile greeted ``554``);
- :class:`DelayedTransport` holds every write of the server back by the round-trip time, in
  order, and the close or abort behind them. The host's protocol is handed this transport
  instead of the socket's, and when aiosmtpd's STARTTLS hands the connection to an
  ``SSLProtocol`` the :class:`Connection` keeps its place on the socket and feeds it, so all of
  the above still applies and the connection's end is still seen. Reads are not delayed: the
  server answers at once, and the answer reaches the client one round trip after its request,
  which is what a client at that distance sees.

  The TCP handshake's own round trip is modelled too: on loopback the client's ``connect()``
  returns at once, but at that distance it returns one round trip later and the greeting
  arrives one more round trip after that. So nothing the server writes reaches the client
  sooner than two round trips after the connection was made (a mail server speaks first: a
  client only waits for the greeting, so that is all the connect's round trip changes). A
  handshake the server refuses (an alert, then the connection aborted by ``SSLProtocol``) costs
  the client its round trip as well: the abort waits behind the alert.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from research.testbed.scenario import Anvil, GreetAction, Postscreen, Throttle

THROTTLE_REPLY = "421 4.7.0 {host} Too many connections from your address, try again later"
ANVIL_REPLY = "421 4.7.0 {host} Error: too many connections from {client}"
"""Postfix smtpd's reply when anvil says a client is over its connection count or rate."""
SHARED_REPLY = ("421 4.3.2 The maximum number of concurrent server connections has exceeded a "
                "limit, closing transmission channel")
"""Exchange's reply when a source is over its connection limit: a provider's fleet-wide one."""
PREGREET_DROP_REPLY = "521 5.7.0 Error: I can break rules, too. Goodbye."
"""postscreen's reply to a client that talked before its turn (``greet_action = drop``)."""
GREET_PAUSE_REPLY = "554 {host} ESMTP not accepting messages"
"""Sendmail's greeting to a client that talked during its ``greet_pause``."""


class ThrottleGate:
    """Counts one listener's connections and says which ones to refuse."""

    def __init__(self, host_name: str, throttle: Throttle) -> None:
        self._throttle = throttle
        self._count = 0
        self.reply = THROTTLE_REPLY.format(host=host_name)

    def admit(self) -> bool:
        """Count a new connection; False if it must be refused."""
        self._count += 1
        return not self._throttle.refuses(self._count)


class ClientLimits:
    """Connections per client at once and per time unit, as Postfix's anvil(8) keeps them: the
    rate counts every attempt (refused ones too) in a window that starts at the first attempt
    after the last window ended."""

    def __init__(self, limits: Anvil, clock: Callable[[], float]) -> None:
        self._limits = limits
        self._clock = clock
        self._open: dict[str, int] = {}
        self._window: dict[str, tuple[float, int]] = {}

    def connect(self, client: str) -> bool:
        """Count a connection from ``client``; False if it is over a limit. Call
        :meth:`disconnect` when it ends, either way."""
        now = self._clock()
        start, attempts = self._window.get(client, (now, 0))
        if now - start >= self._limits.rate_time_unit:
            start, attempts = now, 0
        self._window[client] = (start, attempts + 1)
        self._open[client] = self._open.get(client, 0) + 1
        count, rate = self._limits.count_limit, self._limits.rate_limit
        return not ((count is not None and self._open[client] > count)
                    or (rate is not None and attempts + 1 > rate))

    def disconnect(self, client: str) -> None:
        left = self._open.get(client, 0) - 1
        if left > 0:
            self._open[client] = left
        else:
            self._open.pop(client, None)


@dataclass
class TargetStats:
    """What a listener (or a group of listeners under a shared limit) has served."""

    sessions: int = 0
    """TCP connections accepted."""
    tls_handshakes: int = 0
    """STARTTLS handshakes completed."""
    throttled: int = 0
    """Connections refused with a 4xx greeting by a limit (``throttle``, ``anvil``, a shared
    limit); also counted in ``sessions``."""
    peak_connections: int = 0
    """The most connections open at once."""
    pregreet_drops: int = 0
    """Clients dropped for talking before the greeting was complete."""
    open: int = field(default=0, repr=False)
    """Connections open now."""

    def opened(self) -> None:
        self.sessions += 1
        self.open += 1
        self.peak_connections = max(self.peak_connections, self.open)

    def closed(self) -> None:
        self.open -= 1

    def exported(self) -> dict[str, int]:
        return {"sessions": self.sessions, "tls_handshakes": self.tls_handshakes,
                "throttled": self.throttled, "peak_connections": self.peak_connections,
                "pregreet_drops": self.pregreet_drops}


@dataclass
class Shaping:
    """Everything in front of one listener's protocol (module doc)."""

    host_name: str
    banner: str
    """The host's greeting text, after ``220 ``."""
    counts: TargetStats
    rtt_ms: float = 0.0
    throttle: ThrottleGate | None = None
    anvil: ClientLimits | None = None
    shared: tuple[ClientLimits, TargetStats] | None = None
    postscreen: Postscreen | None = None
    greet_delay: float | None = None
    passed: dict[str, float] = field(default_factory=dict)
    """Clients that passed the pregreet test, and until when that holds."""
    connections: set[asyncio.BaseTransport] = field(default_factory=set)
    """The sockets' transports of the connections open now (for the server to drop them)."""

    def connection(self, factory: Callable[[], asyncio.BaseProtocol]
                   ) -> Callable[[], asyncio.BaseProtocol]:
        """A protocol factory for the listener: ``factory``'s protocol behind all of it."""
        return lambda: Connection(self, factory)


_ABORT = b"abort"
"""The queue's marker for an abort (compared by identity, never written)."""


class DelayedTransport(asyncio.Transport):
    """A server-side transport whose writes (and close) reach the wire ``delay`` seconds late
    (at once for 0); the :class:`Connection` it belongs to is told when the server ends it."""

    def __init__(self, inner: asyncio.Transport, delay: float, owner: Connection) -> None:
        super().__init__()
        self._inner = inner
        self._delay = delay
        self._owner = owner
        self._loop = asyncio.get_running_loop()
        # (due time, bytes); None as bytes closes, _ABORT aborts, b"" after write_eof() sends
        # EOF.
        self._queue: deque[tuple[float, bytes | None]] = deque()
        self._not_before = self._loop.time() + delay
        """The connect's round trip: nothing leaves before the client's connect() would have
        returned (module doc)."""
        self._queued_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._eof = False

    # -- the delayed part ---------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._eof:
            return
        chunk = bytes(data)
        if not chunk:
            return
        if self._delay <= 0 and not self._queue:
            self._inner.write(chunk)
        else:
            self._enqueue(chunk)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        if not self._closing and not self._eof:
            self._eof = True
            self._enqueue(b"")

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._owner.ended()
            if self._delay <= 0 and not self._queue:
                self._inner.close()
            else:
                self._enqueue(None)

    def abort(self) -> None:
        # What is queued is on its way (it left the server); the reset follows it.
        self._owner.ended()
        self._closing = True
        if self._delay <= 0 and not self._queue:
            self._inner.abort()
        else:
            self._enqueue(_ABORT)

    def _force_close(self, exc: BaseException | None) -> None:
        # What SSLProtocol calls on a failed handshake, after writing its alert.
        self.abort()

    def is_closing(self) -> bool:
        return self._closing or self._inner.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._queued_bytes + self._inner.get_write_buffer_size()

    def _enqueue(self, item: bytes | None) -> None:
        self._queue.append((max(self._loop.time(), self._not_before) + self._delay, item))
        self._queued_bytes += len(item or b"")
        if self._timer is None:
            self._timer = self._loop.call_at(self._queue[0][0], self._flush)

    def _flush(self) -> None:
        self._timer = None
        now = self._loop.time()
        while self._queue and self._queue[0][0] <= now:
            _, item = self._queue.popleft()
            self._queued_bytes -= len(item or b"")
            if self._inner.is_closing():
                continue
            if item is _ABORT:
                self._inner.abort()
            elif item is None:
                self._inner.close()
            elif item:
                self._inner.write(item)
            elif self._inner.can_write_eof():
                self._inner.write_eof()
        if self._queue:
            self._timer = self._loop.call_at(self._queue[0][0], self._flush)

    # -- everything else goes straight to the socket's transport ------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        # The Connection stays the socket's protocol, and feeds the new one (STARTTLS).
        self._owner.inner = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._owner.inner or self._owner

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()


class Connection(asyncio.Protocol):
    """One connection to a listener: counted, limited, its greeting delayed as the host's
    settings say, then handed to the host's protocol (module doc)."""

    def __init__(self, shaping: Shaping, factory: Callable[[], asyncio.BaseProtocol]) -> None:
        self._shaping = shaping
        self._factory = factory
        self.inner: asyncio.BaseProtocol | None = None
        self._transport: DelayedTransport | None = None
        self._client = "?"
        self._limited: list[ClientLimits] = []
        self._counted: list[TargetStats] = []
        self._timer: asyncio.TimerHandle | None = None
        self._waiting = False
        """In the greeting's delay: the host's protocol has not started yet."""
        self._early = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        shaping = self._shaping
        peer = transport.get_extra_info("peername")
        self._client = str(peer[0]) if peer else "?"
        self._raw = transport
        shaping.connections.add(transport)
        self._transport = DelayedTransport(transport, shaping.rtt_ms / 1000.0, self)
        self._counted.append(shaping.counts)
        if shaping.shared is not None:
            self._counted.append(shaping.shared[1])
        for counts in self._counted:
            counts.opened()
        refusal = self._refusal()
        if refusal is not None:
            for counts in self._counted:
                counts.throttled += 1
            self._transport.write(refusal.encode("ascii") + b"\r\n")
            self._transport.close()
            return
        loop = asyncio.get_running_loop()
        if shaping.postscreen is not None and not self._passed(loop.time()):
            self._waiting = True
            self._transport.write(f"220-{shaping.banner}\r\n".encode("ascii"))
            self._timer = loop.call_later(shaping.postscreen.greet_wait, self._pregreet_passed)
        elif shaping.greet_delay is not None:
            self._waiting = True
            self._timer = loop.call_later(shaping.greet_delay, self._start)
        else:
            self._start()

    def _refusal(self) -> str | None:
        """The reply of the first limit this connection is over, if any."""
        shaping = self._shaping
        if shaping.shared is not None:
            self._limited.append(shaping.shared[0])
            if not shaping.shared[0].connect(self._client):
                return SHARED_REPLY
        if shaping.anvil is not None:
            self._limited.append(shaping.anvil)
            if not shaping.anvil.connect(self._client):
                return ANVIL_REPLY.format(host=shaping.host_name, client=self._client)
        if shaping.throttle is not None and not shaping.throttle.admit():
            return shaping.throttle.reply
        return None

    def _passed(self, now: float) -> bool:
        until = self._shaping.passed.get(self._client)
        return until is not None and now < until

    def _pregreet_passed(self) -> None:
        postscreen = self._shaping.postscreen
        assert postscreen is not None
        self._shaping.passed[self._client] = (asyncio.get_running_loop().time()
                                              + postscreen.greet_ttl)
        self._start()

    def _start(self) -> None:
        self._waiting, self._timer = False, None
        if self._transport is None or self._transport.is_closing():
            return
        self.inner = self._factory()
        self.inner.connection_made(self._transport)
        if self._early:
            early, self._early = self._early, b""
            self._feed(early)

    def _talked_early(self, data: bytes) -> None:
        shaping = self._shaping
        assert self._transport is not None
        if shaping.postscreen is not None:
            if shaping.postscreen.greet_action is GreetAction.IGNORE:
                self._early += data
                return
            shaping.counts.pregreet_drops += 1
            reply = PREGREET_DROP_REPLY
        else:
            reply = GREET_PAUSE_REPLY.format(host=shaping.host_name)
        if self._timer is not None:
            self._timer.cancel()
        self._waiting = False
        self._transport.write(reply.encode("ascii") + b"\r\n")
        self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._waiting:
            self._talked_early(data)
        elif self.inner is not None:
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        inner = self.inner
        if isinstance(inner, asyncio.BufferedProtocol):
            view = memoryview(data)
            while view:
                buffer = memoryview(inner.get_buffer(len(view)))
                size = min(len(buffer), len(view))
                buffer[:size] = view[:size]
                inner.buffer_updated(size)
                view = view[size:]
        elif isinstance(inner, asyncio.Protocol):
            inner.data_received(data)

    def eof_received(self) -> bool | None:
        # The client has ended its side: its session is over, whatever the server does next.
        self.ended()
        if isinstance(self.inner, asyncio.Protocol | asyncio.BufferedProtocol):
            return self.inner.eof_received()
        return None

    def ended(self) -> None:
        """The connection is over (either side ended it): stop counting it, once."""
        for counts in self._counted:
            counts.closed()
        for limits in self._limited:
            limits.disconnect(self._client)
        self._counted, self._limited = [], []

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended()
        self._shaping.connections.discard(self._raw)
        if self._timer is not None:
            self._timer.cancel()
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()
