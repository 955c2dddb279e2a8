"""Traffic shaping for the testbed's SMTP listeners: distance (round-trip delay) and throttling.

Both wrap a listener's protocol factory, so every behaviour (aiosmtpd sessions, STARTTLS,
greeting errors, tarpits) gets them without knowing:

- :class:`DelayedTransport` holds every write of the server back by the round-trip time, in
  order, and the close behind them. The server's protocol is handed this transport instead of
  the socket's, so it keeps applying after aiosmtpd's STARTTLS moves the socket to an
  ``SSLProtocol`` (which then writes its TLS records through it too). Reads are not delayed:
  the server answers at once, and the answer reaches the client one round trip after its
  request, which is what a client at that distance sees.
- :class:`ThrottleGate` greets the connections its :class:`Throttle` picks with ``421`` and
  closes them, before the host's own protocol ever runs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from research.testbed.scenario import Throttle

THROTTLE_REPLY = "421 4.7.0 {host} Too many connections from your address, try again later"


class ThrottleGate:
    """Counts one listener's connections and says which ones to refuse."""

    def __init__(self, host_name: str, throttle: Throttle) -> None:
        self._throttle = throttle
        self._count = 0
        self.reply = THROTTLE_REPLY.format(host=host_name).encode("ascii") + b"\r\n"

    def admit(self) -> bool:
        """Count a new connection; False if it must be refused."""
        self._count += 1
        return not self._throttle.refuses(self._count)


class DelayedTransport(asyncio.Transport):
    """A server-side transport whose writes (and close) reach the wire ``delay`` seconds late."""

    def __init__(self, inner: asyncio.Transport, delay: float) -> None:
        super().__init__()
        self._inner = inner
        self._delay = delay
        self._loop = asyncio.get_running_loop()
        # (due time, bytes); None as bytes closes, b"" after write_eof() sends EOF.
        self._queue: deque[tuple[float, bytes | None]] = deque()
        self._queued_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._eof = False

    # -- the delayed part ---------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._eof:
            return
        chunk = bytes(data)
        if chunk:
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
            self._enqueue(None)

    def abort(self) -> None:
        self._closing = True
        self._queue.clear()
        self._queued_bytes = 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inner.abort()

    def is_closing(self) -> bool:
        return self._closing or self._inner.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._queued_bytes + self._inner.get_write_buffer_size()

    def _enqueue(self, item: bytes | None) -> None:
        self._queue.append((self._loop.time() + self._delay, item))
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
            if item is None:
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
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()

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


class _ShapedProtocol(asyncio.Protocol):
    """Stands between the socket and the host's protocol: refuses or delays, then forwards."""

    def __init__(self, factory: Callable[[], asyncio.BaseProtocol], delay: float,
                 gate: ThrottleGate | None, on_refused: Callable[[], None]) -> None:
        self._factory = factory
        self._delay = delay
        self._gate = gate
        self._on_refused = on_refused
        self._inner: asyncio.BaseProtocol | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        shaped: asyncio.Transport = transport
        if self._delay > 0:
            shaped = DelayedTransport(transport, self._delay)
        if self._gate is not None and not self._gate.admit():
            self._on_refused()
            shaped.write(self._gate.reply)
            shaped.close()
            return
        self._inner = self._factory()
        self._inner.connection_made(shaped)

    def data_received(self, data: bytes) -> None:
        if isinstance(self._inner, asyncio.Protocol):
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if isinstance(self._inner, asyncio.Protocol):
            return self._inner.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


def shaped_factory(factory: Callable[[], asyncio.BaseProtocol], *, rtt_ms: float,
                   gate: ThrottleGate | None, on_refused: Callable[[], None]
                   ) -> Callable[[], asyncio.BaseProtocol]:
    """``factory`` as it serves at ``rtt_ms`` distance behind ``gate``; unchanged if neither.

    ``on_refused`` is called for every connection the gate refuses.
    """
    if rtt_ms <= 0 and gate is None:
        return factory
    delay = rtt_ms / 1000.0
    return lambda: _ShapedProtocol(factory, delay, gate, on_refused)
