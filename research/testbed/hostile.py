"""Broken and hostile SMTP listeners: what a survey meets on the real Internet.

Each behaviour is a small coroutine over an asyncio stream pair, served by
:class:`research.testbed.smtp_server.SmtpServers` for the hosts whose scenario ``behaviour`` is
one of :data:`BEHAVIOURS`. They misbehave on purpose, but they stay polite to the testbed
itself: floods respect flow control, and every session ends once the client has gone or after
:data:`IDLE_TIMEOUT`.

``blackhole`` is not here: it needs no code, only a socket whose accept queue is full (see
``smtp_server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable

from research.testbed.scenario import Behaviour, Host

IDLE_TIMEOUT = 120.0
"""Seconds a session may wait for the client before the server hangs up."""
DRIP_INTERVAL = 0.25
"""Seconds between two bytes of a ``slow_banner`` greeting: shorter than any sane timeout, so
only a whole-session limit stops a client from waiting forever."""
HTTP_IDLE = 0.3
"""Seconds an ``http`` host waits for a request before answering ``408 Request Timeout``."""
DEFAULT_FLOOD_BYTES = 64 * 1024 * 1024
_CHUNK = 64 * 1024
TLS_ALERT_RECORD = bytes([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28])
"""A TLS record: alert, level fatal, handshake_failure (RFC 8446 §6)."""

_Handler = Callable[[Host, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class _Session(asyncio.StreamReaderProtocol):
    """A stream session running one hostile behaviour's handler."""

    def __init__(self, host: Host, handler: _Handler) -> None:
        reader = asyncio.StreamReader(limit=_CHUNK)
        super().__init__(reader, lambda r, w: _guarded(handler(host, r, w), w))


def protocol_factory(host: Host) -> Callable[[], _Session]:
    """A factory for ``loop.create_server`` serving ``host``'s (hostile) behaviour."""
    handler = _HANDLERS[host.behaviour]
    return lambda: _Session(host, handler)


async def _guarded(session: Awaitable[None], writer: asyncio.StreamWriter) -> None:
    # A client that hangs up mid-flood or mid-drip is the normal end of these sessions.
    try:
        await session
    except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


async def _command(reader: asyncio.StreamReader) -> str:
    """The next command line, upper-cased verb first; '' when the client has gone."""
    line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
    return line.decode("ascii", "replace").strip()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort with a TCP RST instead of a FIN, as a crashing server or a middlebox does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _greeting(host: Host) -> bytes:
    return f"220 {host.name} ESMTP {host.software}\r\n".encode("ascii")


async def _smtp(host: Host, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                ehlo: Callable[[], Awaitable[bool]] | None,
                starttls: Callable[[], Awaitable[None]] | None) -> None:
    """A minimal SMTP dialogue; ``ehlo`` answers EHLO (None: refuse it), ``starttls`` takes
    over after ``220`` to STARTTLS (None: not offered). Accepts no mail."""
    await _send(writer, _greeting(host))
    while line := await _command(reader):
        verb = line.split()[0].upper()
        if verb == "EHLO" and ehlo is not None:
            if not await ehlo():
                return
        elif verb == "EHLO":
            await _send(writer, b"502 5.5.2 Error: command not recognized\r\n")
        elif verb == "HELO":
            await _send(writer, f"250 {host.name}\r\n".encode("ascii"))
        elif verb == "STARTTLS" and starttls is not None:
            await _send(writer, b"220 2.0.0 Ready to start TLS\r\n")
            await starttls()
            return
        elif verb == "QUIT":
            await _send(writer, b"221 2.0.0 Bye\r\n")
            return
        elif verb in ("NOOP", "RSET"):
            await _send(writer, b"250 2.0.0 Ok\r\n")
        else:
            await _send(writer, b"502 5.5.2 Error: command not recognized\r\n")


def _ehlo_lines(host: Host, writer: asyncio.StreamWriter) -> Callable[[], Awaitable[bool]]:
    async def ehlo() -> bool:
        await _send(writer, f"250-{host.name}\r\n250-PIPELINING\r\n250 STARTTLS\r\n".encode())
        return True

    return ehlo


async def _helo_only(host: Host, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
    await _smtp(host, reader, writer, ehlo=None, starttls=None)


async def _client_hello(reader: asyncio.StreamReader) -> None:
    # Answer only once the ClientHello is in: closing with unread input would send a RST early.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader.read(_CHUNK), 2.0)


async def _tls_alert(host: Host, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
    async def alert() -> None:
        await _client_hello(reader)
        await _send(writer, TLS_ALERT_RECORD)

    await _smtp(host, reader, writer, ehlo=_ehlo_lines(host, writer), starttls=alert)


async def _tls_reset(host: Host, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
    async def reset() -> None:
        await _client_hello(reader)
        _reset(writer)

    await _smtp(host, reader, writer, ehlo=_ehlo_lines(host, writer), starttls=reset)


async def _reset_after_banner(host: Host, reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
    await _send(writer, _greeting(host))
    await _command(reader)
    _reset(writer)


async def _slow_banner(host: Host, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
    line = f"220-{host.name} ESMTP {host.software}, one byte at a time\r\n".encode("ascii")
    while not reader.at_eof():
        for byte in line:
            await _send(writer, bytes([byte]))
            await asyncio.sleep(DRIP_INTERVAL)
            if reader.at_eof():
                return


async def _flood(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, unit: bytes,
                 total: int) -> None:
    """Send ``unit`` repeated up to ``total`` bytes, in chunks, with flow control."""
    chunk = unit * max(1, _CHUNK // len(unit))
    sent = 0
    while sent < total and not reader.at_eof():
        piece = chunk[: total - sent]
        await _send(writer, piece)
        sent += len(piece)


async def _endless_line(host: Host, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
    await _send(writer, f"220 {host.name} ".encode("ascii"))
    await _flood(writer, reader, b"x", host.flood_bytes or DEFAULT_FLOOD_BYTES)


async def _endless_continuation(host: Host, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
    async def ehlo() -> bool:
        line = f"250-{host.name} keeps talking and talking and talking\r\n".encode("ascii")
        await _flood(writer, reader, line, host.flood_bytes or DEFAULT_FLOOD_BYTES)
        return False

    await _smtp(host, reader, writer, ehlo=ehlo, starttls=None)


_HTTP_BODY = b"<html><head><title>408 Request Time-out</title></head><body></body></html>\r\n"


async def _http(host: Host, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # A web server speaks only when spoken to, or (as many do) when the client has said
    # nothing for a while: then it gives up on the request with 408.
    try:
        await asyncio.wait_for(reader.readline(), HTTP_IDLE)
        status = b"400 Bad Request"
    except TimeoutError:
        status = b"408 Request Timeout"
    headers = (b"HTTP/1.1 " + status + b"\r\nServer: nginx\r\nContent-Type: text/html\r\n"
               b"Content-Length: " + str(len(_HTTP_BODY)).encode() + b"\r\n"
               b"Connection: close\r\n\r\n")
    await _send(writer, headers + _HTTP_BODY)


_HANDLERS: dict[Behaviour, _Handler] = {
    Behaviour.SLOW_BANNER: _slow_banner,
    Behaviour.HELO_ONLY: _helo_only,
    Behaviour.TLS_ALERT: _tls_alert,
    Behaviour.TLS_RESET: _tls_reset,
    Behaviour.HTTP: _http,
    Behaviour.ENDLESS_LINE: _endless_line,
    Behaviour.ENDLESS_CONTINUATION: _endless_continuation,
    Behaviour.RESET_AFTER_BANNER: _reset_after_banner,
}
BEHAVIOURS = frozenset(_HANDLERS)
"""The behaviours served by this module."""
