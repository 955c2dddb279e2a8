"""The testbed's SMTP listeners: one per address, all on one port, in one asyncio loop.

An address may be shared by several hosts (MX names), as a provider's pool is: one server
answers there for all of them, as the first of them (by name) describes it, and presents each
name's own certificate to a client that asks for it by SNI (the first name's to one that asks
for none). ``normal``, ``reject_starttls`` and ``tls_garbage`` hosts run aiosmtpd's SMTP
protocol (subclassed for a plain EHLO, the STARTTLS variants and refusing all mail);
``greeting_error`` and ``tarpit`` are small protocols of their own; ``down`` addresses get a
socket that is bound but never listens, so connections are refused and nothing else can take
the address and port. The hostile behaviours live in :mod:`research.testbed.hostile`, except
``blackhole``: a listening socket whose accept queue is kept full, so the kernel drops further
connection attempts. Every connection passes :mod:`research.testbed.shaping` first: counts,
limits, greeting delays, distance.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

from research.testbed import hostile
from research.testbed.ca import host_files
from research.testbed.ports import bind_on_one_port, tcp_socket
from research.testbed.scenario import Behaviour, Host, Scenario
from research.testbed.shaping import ClientLimits, Shaping, TargetStats, ThrottleGate

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


@dataclass
class _Listener:
    hosts: tuple[Host, ...]
    """The hosts on this address, by name; the first one's server answers."""
    ip: str
    sock: socket.socket
    stats: TargetStats = field(default_factory=TargetStats)
    rtt_ms: float = 0.0
    filler: socket.socket | None = None
    """A ``blackhole``'s own connection, which keeps its accept queue full."""

    @property
    def host(self) -> Host:
        return self.hosts[0]


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
        self._contexts = _tls_contexts(scenario, cert_dir)
        targets = [(scenario.hosts_at(ip), ip) for ip in scenario.addresses()]
        self.port, self._listeners = _bind_all(targets, port)
        if rtt_ms is not None:
            scenario = dataclasses.replace(scenario, rtt_ms=rtt_ms)
        for listener in self._listeners:
            listener.rtt_ms = scenario.rtt_for(listener.host)
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.BaseTransport] = set()
        self._groups = {limit.name: (ClientLimits(limit.limits, time.monotonic), TargetStats())
                        for limit in scenario.shared_limits}
        self._group_of = {ip: self._groups[limit.name] for limit in scenario.shared_limits
                          for ip in limit.addresses}

    def stats(self) -> Iterator[tuple[str, str, TargetStats]]:
        """(host name, address, counters) for every host on every listener, down ones
        included; hosts that share an address share its counters."""
        for listener in self._listeners:
            for host in listener.hosts:
                yield host.name, listener.ip, listener.stats

    def group_stats(self) -> dict[str, TargetStats]:
        """The counters of every shared limit, by its name, across its addresses."""
        return {name: stats for name, (_, stats) in self._groups.items()}

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
        host = listener.host
        anvil = ClientLimits(host.anvil, time.monotonic) if host.anvil is not None else None
        shaping = Shaping(
            host_name=host.name, banner=f"{host.name} ESMTP {host.software}",
            counts=listener.stats, rtt_ms=listener.rtt_ms,
            throttle=ThrottleGate(host.name, host.throttle) if host.throttle else None,
            anvil=anvil, shared=self._group_of.get(listener.ip), postscreen=host.postscreen,
            greet_delay=host.greet_delay, connections=self._connections)
        return shaping.connection(self._behaviour_factory(listener))

    def _behaviour_factory(self, listener: _Listener) -> Any:
        behaviour = listener.host.behaviour
        if behaviour is Behaviour.TARPIT:
            return _Tarpit
        if behaviour is Behaviour.GREETING_ERROR:
            return lambda: _GreetingError(listener.host)
        if behaviour in hostile.BEHAVIOURS:
            return hostile.protocol_factory(listener.host)
        context = self._contexts.get(listener.host.name)
        return lambda: _Session(listener.host, context, listener.stats)


def _tls_contexts(scenario: Scenario, cert_dir: Path) -> dict[str, ssl.SSLContext]:
    """Each TLS host's server context, by host name. Hosts whose server and certificate are the
    same share one (a provider's pool names under one wildcard), and every context picks the
    one of the name a client asks for by SNI."""
    by_kind: dict[tuple[object, ...], ssl.SSLContext] = {}
    by_name: dict[str, ssl.SSLContext] = {}

    def pick(sslobj: Any, server_name: str | None, current: ssl.SSLContext) -> None:
        wanted = by_name.get(server_name or "")
        if wanted is not None and wanted is not current:
            sslobj.context = wanted

    for host in scenario.hosts:
        if not host.serves_tls:
            continue
        kind = (host.tls_min, host.tls_max, host.ciphers, host.leaf_names, host.certificate,
                host.certificate_key, host.send_ca)
        context = by_kind.get(kind)
        if context is None:
            context = by_kind[kind] = make_tls_context(host, cert_dir)
            context.sni_callback = pick
        by_name[host.name] = context
    return by_name


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


def _bind_all(targets: list[tuple[tuple[Host, ...], str]], port: int | None
              ) -> tuple[int, list[_Listener]]:
    return bind_on_one_port(targets, _bind_one, port_of=lambda lst: lst.sock.getsockname()[1],
                            release=_release, port=port, preferred=DEFAULT_SMTP_PORT,
                            exhausted="found no SMTP port free on every address")


def _release(listener: _Listener) -> None:
    listener.sock.close()
    if listener.filler is not None:
        listener.filler.close()


def _bind_one(target: tuple[tuple[Host, ...], str], port: int) -> _Listener:
    hosts, ip = target
    host = hosts[0]
    down = host.behaviour is Behaviour.DOWN
    blackhole = host.behaviour is Behaviour.BLACKHOLE
    # Not for `down`: without SO_REUSEADDR nobody else can bind its address and port.
    sock = tcp_socket(ip, port, reuse=not down, backlog=None if down or blackhole else 256,
                      service="SMTP", owner=host.name)
    if blackhole:
        try:
            return _blackhole(hosts, ip, sock)
        except OSError:
            sock.close()
            raise
    return _Listener(hosts, ip, sock)


def _blackhole(hosts: tuple[Host, ...], ip: str, sock: socket.socket) -> _Listener:
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
    return _Listener(hosts, ip, sock, filler=filler)


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

    def __init__(self, host: Host, tls_context: ssl.SSLContext | None,
                 stats: TargetStats) -> None:
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
        super().connection_made(transport)

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

    def __init__(self) -> None:
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._timer = asyncio.get_running_loop().call_later(TARPIT_HOLD, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()


class _GreetingError(asyncio.Protocol):
    """Greets with an error; answers the next command (221 to QUIT, else 503) and hangs up.

    RFC 5321 §3.1: after a 554 greeting the server waits for QUIT and answers 503 to anything
    else; a 421 greeting closes the connection at once.
    """

    def __init__(self, host: Host) -> None:
        self._greeting = host.banner.encode("ascii") + b"\r\n"
        self._host_name = host.name
        self._buffer = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
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
