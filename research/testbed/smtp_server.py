"""The testbed's SMTP listeners: one per (host, address), all on one port, in one asyncio loop.

``normal``, ``reject_starttls`` and ``tls_garbage`` hosts run aiosmtpd's SMTP protocol (subclassed
for a plain EHLO, the STARTTLS variants and refusing all mail); ``greeting_error`` and ``tarpit``
are small protocols of their own; ``down`` addresses get a socket that is bound but never
listens, so connections are refused and nothing else can take the address and port. The
hostile behaviours live in :mod:`research.testbed.hostile`, except ``blackhole``: a listening
socket whose accept queue is kept full, so the kernel drops further connection attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import logging
import socket
import ssl
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

from research.testbed import hostile
from research.testbed.ca import host_files
from research.testbed.scenario import Behaviour, Host, Scenario
from research.testbed.shaping import ThrottleGate, shaped_factory

DEFAULT_SMTP_PORT = 2525
SIZE_LIMIT = 52_428_800
IDLE_TIMEOUT = 120.0
"""Seconds an SMTP session may sit idle before the server closes it."""
TARPIT_HOLD = 300.0
"""Seconds a tarpit keeps a silent connection open unless the client leaves first."""
GARBAGE = b"*** this is not TLS, it is the testbed's tls_garbage host ***\r\n" * 4

_TLS_VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}
_log = logging.getLogger(__name__)
command_log = logging.getLogger(__name__ + ".commands")
"""Every SMTP command received, at INFO: ``<host> <ip> from <peer>: <command line>``."""


class PortBusyError(OSError):
    """The asked-for SMTP port is taken on one of the scenario's addresses."""


@dataclass
class TargetStats:
    """What one (host, address) listener has served."""

    sessions: int = 0
    """TCP connections accepted."""
    tls_handshakes: int = 0
    """STARTTLS handshakes completed."""
    throttled: int = 0
    """Connections refused with 421 by the host's ``throttle`` (also counted in ``sessions``)."""


@dataclass
class _Listener:
    host: Host
    ip: str
    sock: socket.socket
    stats: TargetStats = field(default_factory=TargetStats)
    rtt_ms: float = 0.0
    filler: socket.socket | None = None
    """A ``blackhole``'s own connection, which keeps its accept queue full."""


class SmtpServers:
    """Every SMTP listener of a scenario; bind in the constructor, serve with :meth:`start`."""

    def __init__(self, scenario: Scenario, port: int | None, cert_dir: Path,
                 rtt_ms: float | None = None) -> None:
        """Bind all sockets on one port: ``port``, or for None 2525 if free everywhere, else any.

        ``rtt_ms``, if given, replaces the scenario-wide round-trip delay (hosts with their own
        keep theirs; see :mod:`research.testbed.scenario`).

        Raises PortBusyError if an explicit port is taken, OSError (e.g. EADDRNOTAVAIL) if an
        address cannot be bound, ssl.SSLError or OSError if a host's certificate is unusable.
        """
        self._contexts = {
            h.name: make_tls_context(h, cert_dir) for h in scenario.hosts if h.serves_tls
        }
        targets = [(h, ip) for h in scenario.hosts for ip in h.addresses]
        self.port, self._listeners = _bind_all(targets, port)
        if rtt_ms is not None:
            scenario = dataclasses.replace(scenario, rtt_ms=rtt_ms)
        for listener in self._listeners:
            listener.rtt_ms = scenario.rtt_for(listener.host)
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.BaseTransport] = set()

    def stats(self) -> Iterator[tuple[str, str, TargetStats]]:
        """(host name, address, counters) for every listener, down ones included."""
        for listener in self._listeners:
            yield listener.host.name, listener.ip, listener.stats

    async def start(self) -> None:
        """Start serving every listening socket in the running loop."""
        loop = asyncio.get_running_loop()
        for listener in self._listeners:
            if listener.host.behaviour in (Behaviour.DOWN, Behaviour.BLACKHOLE):
                continue
            server = await loop.create_server(self._factory(listener), sock=listener.sock)
            self._servers.append(server)

    def close(self) -> None:
        """Stop listening and drop every open connection; the sockets are closed after."""
        for server in self._servers:
            server.close()
        for transport in list(self._connections):
            if isinstance(transport, asyncio.Transport):
                transport.abort()
            else:
                transport.close()
        for listener in self._listeners:
            listener.sock.close()
            if listener.filler is not None:
                listener.filler.close()

    def _factory(self, listener: _Listener) -> Any:
        gate = None
        if listener.host.throttle is not None:
            gate = ThrottleGate(listener.host.name, listener.host.throttle)

        def refused(stats: TargetStats = listener.stats) -> None:
            stats.sessions += 1
            stats.throttled += 1

        return shaped_factory(self._behaviour_factory(listener), rtt_ms=listener.rtt_ms,
                              gate=gate, on_refused=refused)

    def _behaviour_factory(self, listener: _Listener) -> Any:
        behaviour = listener.host.behaviour
        if behaviour is Behaviour.TARPIT:
            return lambda: _Tarpit(listener.stats, self._connections)
        if behaviour is Behaviour.GREETING_ERROR:
            return lambda: _GreetingError(listener.host, listener.stats, self._connections)
        if behaviour in hostile.BEHAVIOURS:
            return hostile.protocol_factory(listener.host, listener.stats, self._connections)
        context = self._contexts.get(listener.host.name)
        return lambda: _Session(listener.host, context, listener.stats, self._connections)


def make_tls_context(host: Host, cert_dir: Path) -> ssl.SSLContext:
    """A server context serving exactly the host's TLS versions with its certificate.

    Raises ssl.SSLError or OSError if the certificate files are missing or unusable.
    """
    assert host.tls_min is not None and host.tls_max is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        # TLS 1.0/1.1 are deprecated in Python; serving them is the point of the testbed.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = _TLS_VERSIONS[host.tls_min]
        context.maximum_version = _TLS_VERSIONS[host.tls_max]
    ciphers = host.ciphers
    if host.tls_min in ("1.0", "1.1"):
        # OpenSSL 3 refuses TLS < 1.2 above security level 0 (SHA-1/MD5 handshake signatures).
        ciphers = ciphers or "DEFAULT"
        if "@SECLEVEL" not in ciphers:
            ciphers += ":@SECLEVEL=0"
    if ciphers:
        context.set_ciphers(ciphers)
    files = host_files(cert_dir, host.name)
    context.load_cert_chain(files.cert_path, files.key_path)
    return context


def _bind_all(targets: list[tuple[Host, str]], port: int | None
              ) -> tuple[int, list[_Listener]]:
    if not targets:
        return (DEFAULT_SMTP_PORT if port is None else port), []
    try:
        chosen = DEFAULT_SMTP_PORT if port is None else port
        return chosen, _bind_on(targets, chosen)
    except PortBusyError:
        if port:
            raise
    for _ in range(50):
        # Let the kernel pick a port free on the first address, then try it on the others.
        first = _bind_one(*targets[0], 0)
        chosen = first.sock.getsockname()[1]
        try:
            return chosen, [first, *_bind_on(targets[1:], chosen)]
        except PortBusyError:
            first.sock.close()
    raise PortBusyError(errno.EADDRINUSE, "found no SMTP port free on every address")


def _bind_on(targets: list[tuple[Host, str]], port: int) -> list[_Listener]:
    bound: list[_Listener] = []
    try:
        for host, ip in targets:
            bound.append(_bind_one(host, ip, port))
    except BaseException:
        for listener in bound:
            listener.sock.close()
            if listener.filler is not None:
                listener.filler.close()
        raise
    return bound


def _bind_one(host: Host, ip: str, port: int) -> _Listener:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        down = host.behaviour is Behaviour.DOWN
        if not down:
            # Not for `down`: without SO_REUSEADDR nobody else can bind its address and port.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        if host.behaviour is Behaviour.BLACKHOLE:
            return _blackhole(host, ip, sock)
        if not down:
            sock.listen(256)
            sock.setblocking(False)
    except OSError as err:
        sock.close()
        if err.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortBusyError(err.errno, f"SMTP port {port} is busy on {ip}") from err
        raise OSError(err.errno, f"cannot bind {ip} port {port} for {host.name}: "
                                 f"{err.strerror}") from err
    return _Listener(host, ip, sock)


def _blackhole(host: Host, ip: str, sock: socket.socket) -> _Listener:
    # Linux drops a SYN when the accept queue is full; with a backlog of 0 one connection,
    # ours, fills it. Clients then see what a firewall's DROP rule gives: no answer at all.
    sock.listen(0)
    filler = socket.socket(sock.family, socket.SOCK_STREAM)
    try:
        filler.settimeout(5.0)
        filler.connect(sock.getsockname()[:2])
    except OSError:
        filler.close()
        raise
    return _Listener(host, ip, sock, filler=filler)


def _local_ip(transport: asyncio.BaseTransport) -> str:
    sockname = transport.get_extra_info("sockname")
    return str(sockname[0]) if sockname else "?"


def _log_command(host: str, peer: Any, ip: str, line: str) -> None:
    if command_log.isEnabledFor(logging.INFO):
        source = f"{peer[0]}:{peer[1]}" if peer else "?"
        command_log.info("%s %s from %s: %s", host, ip, source, line[:200])


class _Handler:
    """aiosmtpd event handler: only turns session errors into a reply without a traceback."""

    async def handle_exception(self, error: Exception) -> str:
        # A failed TLS handshake lands here too (and then the connection just closes); sslyze
        # causes hundreds of those, so they are not worth a log line each.
        _log.debug("SMTP session error: %r", error)
        return "421 4.3.0 Testbed server error, closing connection"


_HANDLER = _Handler()


class _Session(SMTP):
    """One SMTP session of a ``normal``, ``reject_starttls`` or ``tls_garbage`` host."""

    def __init__(self, host: Host, tls_context: ssl.SSLContext | None, stats: TargetStats,
                 connections: set[asyncio.BaseTransport]) -> None:
        super().__init__(
            _HANDLER,
            hostname=host.name,
            ident=f"ESMTP {host.software}",
            tls_context=tls_context,
            data_size_limit=SIZE_LIMIT,
            timeout=IDLE_TIMEOUT,
            loop=asyncio.get_running_loop(),
        )
        self._host = host
        self._stats = stats
        self._connections = connections
        self._listener_ip = "?"
        self._advertise_starttls = host.behaviour is not Behaviour.NORMAL or host.starttls
        if command_log.isEnabledFor(logging.INFO):
            self._smtp_methods = {verb: self._logged(verb, method)
                                  for verb, method in self._smtp_methods.items()}

    def _logged(self, verb: str, method: Any) -> Any:
        @functools.wraps(method)  # keeps aiosmtpd's __smtp_syntax__ for HELP
        async def logged(arg: str | None) -> None:
            _log_command(self._host.name, self.session.peer if self.session else None,
                         self._listener_ip, f"{verb} {arg}" if arg else verb)
            await method(arg)

        return logged

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None:
            # Not the second call aiosmtpd makes once STARTTLS has wrapped the transport.
            self._listener_ip = _local_ip(transport)
            self._stats.sessions += 1
            self._connections.add(transport)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        transport = self._original_transport or self.transport
        if transport is not None:
            self._connections.discard(transport)
        super().connection_lost(error)

    async def smtp_EHLO(self, hostname: str) -> None:
        # Replaces aiosmtpd's EHLO: no AUTH, and STARTTLS as the behaviour says.
        if not hostname:
            await self.push("501 5.5.4 Syntax: EHLO hostname")
            return
        self._set_rset_state()
        assert self.session is not None
        self.session.extended_smtp = True
        self.session.host_name = hostname
        keywords = [self.hostname, "PIPELINING", f"SIZE {SIZE_LIMIT}"]
        if self._advertise_starttls and self._tls_protocol is None:
            keywords.append("STARTTLS")
        keywords += ["ENHANCEDSTATUSCODES", "8BITMIME"]
        lines = [f"250-{k}" for k in keywords[:-1]] + [f"250 {keywords[-1]}"]
        await self.push("\r\n".join(lines))

    async def smtp_STARTTLS(self, arg: str) -> None:
        if arg:
            await self.push("501 5.5.4 Syntax: STARTTLS")
        elif self._tls_protocol is not None:
            await self.push("503 5.5.1 TLS already active")
        elif self._host.behaviour is Behaviour.REJECT_STARTTLS:
            await self.push("454 4.7.0 TLS not available due to temporary reason")
        elif self._host.behaviour is Behaviour.TLS_GARBAGE:
            await self._send_garbage()
        elif self.tls_context is None:
            await self.push("502 5.5.1 Error: command not implemented")
        else:
            await super().smtp_STARTTLS(arg)
            self._stats.tls_handshakes += 1

    async def _send_garbage(self) -> None:
        await self.push("220 2.0.0 Ready to start TLS")
        # Wait for the ClientHello: closing with unread input would send RST, not the garbage.
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(self._reader.read(4096), 2.0)
        self._writer.write(GARBAGE)
        await self._writer.drain()
        assert self._handler_coroutine is not None and self.transport is not None
        self._handler_coroutine.cancel()
        self.transport.close()

    async def smtp_MAIL(self, arg: str | None) -> None:
        if self._host.accept_mail:
            # aiosmtpd's transaction; the handler has no handle_DATA, so mail is discarded.
            await super().smtp_MAIL(arg)
            return
        await self.push("502 5.7.0 This testbed server accepts no mail")

    async def smtp_RCPT(self, arg: str | None) -> None:
        if self._host.accept_mail:
            await super().smtp_RCPT(arg)
            return
        await self.push("503 5.5.1 Error: need MAIL command")

    async def smtp_DATA(self, arg: str) -> None:
        if self._host.accept_mail:
            await super().smtp_DATA(arg)
            return
        await self.push("503 5.5.1 Error: need RCPT command")

    async def smtp_AUTH(self, arg: str) -> None:
        await self.push("502 5.5.1 Error: authentication not enabled")

    async def smtp_VRFY(self, arg: str) -> None:
        await self.push("502 5.5.1 Error: command not implemented")

    async def smtp_EXPN(self, arg: str) -> None:
        await self.push("502 5.5.1 Error: command not implemented")


class _Tarpit(asyncio.Protocol):
    """Accepts the connection and never says a word."""

    def __init__(self, stats: TargetStats, connections: set[asyncio.BaseTransport]) -> None:
        self._stats = stats
        self._connections = connections
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._stats.sessions += 1
        self._connections.add(transport)
        self._timer = asyncio.get_running_loop().call_later(TARPIT_HOLD, transport.close)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._connections.discard(self._transport)


class _GreetingError(asyncio.Protocol):
    """Greets with an error; answers the next command (221 to QUIT, else 503) and hangs up.

    RFC 5321 §3.1: after a 554 greeting the server waits for QUIT and answers 503 to anything
    else; a 421 greeting closes the connection at once.
    """

    def __init__(self, host: Host, stats: TargetStats,
                 connections: set[asyncio.BaseTransport]) -> None:
        self._greeting = host.banner.encode("ascii") + b"\r\n"
        self._host_name = host.name
        self._stats = stats
        self._connections = connections
        self._buffer = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._stats.sessions += 1
        self._connections.add(transport)
        transport.write(self._greeting)
        if self._greeting.startswith(b"421"):
            transport.close()
        else:
            self._timer = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, transport.close)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if b"\n" not in self._buffer:
            if len(self._buffer) > 4096:
                self._transport.close()
            return
        line = self._buffer.split(b"\n", 1)[0]
        _log_command(self._host_name, self._transport.get_extra_info("peername"),
                     _local_ip(self._transport), line.decode("ascii", "replace").strip())
        words = line.split()
        if words and words[0].upper() == b"QUIT":
            self._transport.write(b"221 2.0.0 Bye\r\n")
        else:
            self._transport.write(b"503 5.5.1 Error: no SMTP service here\r\n")
        self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._connections.discard(self._transport)
