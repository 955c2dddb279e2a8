"""The testbed's MTA-STS policy hosts: HTTPS on loopback, one listener per policy host address.

Every ``[domains.mta_sts]`` with an ``address`` gets a listener on that address, all on one
port (like the SMTP hosts), presenting a certificate for ``mta-sts.<domain>`` of the kind the
scenario asks for. To ``GET /.well-known/mta-sts.txt`` it answers as its ``serve`` says: the
policy (200, with the scenario's Content-Type), a redirect (301) or 404; any other path is 404.
``down`` addresses are bound but never listen, so connections are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
from pathlib import Path

from research.testbed.ca import host_files
from research.testbed.ports import bind_on_one_port, tcp_socket
from research.testbed.scenario import MtaSts, PolicyServe, Scenario

DEFAULT_HTTPS_PORT = 8443
POLICY_PATH = "/.well-known/mta-sts.txt"
REDIRECT_TARGET = "https://policies.elsewhere.test/.well-known/mta-sts.txt"
READ_TIMEOUT = 10.0
MAX_REQUEST = 8192


class HttpsServers:
    """Every policy host listener of a scenario; bind in the constructor, serve with start()."""

    def __init__(self, scenario: Scenario, port: int | None, cert_dir: Path) -> None:
        """Bind all sockets on one port: ``port``, or for None 8443 if free everywhere, else any.

        Raises PortBusyError if an explicit port is taken, OSError if an address cannot be
        bound, ssl.SSLError or OSError if a certificate is unusable.
        """
        self._policies = [p for p in scenario.policy_hosts() if p.address]
        self._contexts = {p.host: _context(p, cert_dir) for p in self._policies
                          if p.serve is not PolicyServe.DOWN}
        self.port, self._sockets = _bind_all(self._policies, port)
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        for policy, sock in zip(self._policies, self._sockets, strict=True):
            if policy.serve is PolicyServe.DOWN:
                continue
            server = await asyncio.start_server(
                functools.partial(self._handle, policy), sock=sock,
                ssl=self._contexts[policy.host])
            self._servers.append(server)

    def close(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for sock in self._sockets:
            sock.close()

    async def _handle(self, policy: MtaSts, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            writer.write(respond(policy, head[:MAX_REQUEST]))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError, ssl.SSLError):
            pass  # a client that gives up or rejects the certificate: routine for a scanner
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()


def respond(policy: MtaSts, head: bytes) -> bytes:
    """The whole HTTP/1.1 response of a policy host to a request head."""
    words = head.split(b"\r\n", 1)[0].decode("latin-1").split()
    path = words[1] if len(words) == 3 else ""
    if policy.serve is PolicyServe.REDIRECT:
        return _response("301 Moved Permanently", "text/html", b"",
                         [("Location", REDIRECT_TARGET)])
    if policy.serve is PolicyServe.NOT_FOUND or path != POLICY_PATH:
        return _response("404 Not Found", "text/plain", b"not found\n")
    return _response("200 OK", policy.content_type, policy.policy.encode("utf-8"))


def _response(status: str, content_type: str, body: bytes,
              headers: list[tuple[str, str]] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}",
             f"Content-Length: {len(body)}", "Connection: close",
             *(f"{k}: {v}" for k, v in headers or [])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _context(policy: MtaSts, cert_dir: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    files = host_files(cert_dir, policy.host)
    context.load_cert_chain(files.cert_path, files.key_path)
    return context


def _bind_all(policies: list[MtaSts], port: int | None) -> tuple[int | None, list[socket.socket]]:
    if not policies:
        return port, []
    return bind_on_one_port(policies, _bind_one, port_of=lambda sock: sock.getsockname()[1],
                            release=socket.socket.close, port=port, preferred=DEFAULT_HTTPS_PORT,
                            exhausted="found no HTTPS port free on every address")


def _bind_one(policy: MtaSts, port: int) -> socket.socket:
    assert policy.address is not None
    down = policy.serve is PolicyServe.DOWN
    # Not for `down`: without SO_REUSEADDR nobody else can bind its address and port.
    return tcp_socket(policy.address, port, reuse=not down, backlog=None if down else 64,
                      service="HTTPS", owner=policy.host)
