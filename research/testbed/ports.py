"""Binding a testbed service's sockets all on one port: the port a caller asked for, else a
preferred one if it is free everywhere, else one the kernel picks.

Every service of the testbed listens on one port across its addresses (the SMTP hosts, the
MTA-STS policy hosts) or across its transports (DNS over UDP and TCP), so a scanner is told one
port. :func:`bind_on_one_port` is that rule for all of them; :func:`tcp_socket` binds one TCP
socket with the errors they all report.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
S = TypeVar("S")


class PortBusyError(OSError):
    """The port asked for is taken on one of the addresses (or transports)."""


def bind_on_one_port(items: Sequence[T], bind: Callable[[T, int], S], *,
                     port_of: Callable[[S], int], release: Callable[[S], None],
                     port: int | None, preferred: int | None = None, attempts: int = 50,
                     exhausted: str) -> tuple[int, list[S]]:
    """Bind every item on the same port; return the port and what ``bind`` made, in order.

    ``bind(item, port)`` binds one item (port 0: the kernel picks) or raises PortBusyError.
    ``port`` is the caller's: a nonzero one must be free for every item or PortBusyError is
    raised; None or 0 means any port, ``preferred`` first when there is one. Otherwise the
    kernel picks a port for the first item and the others try it, up to ``attempts`` times,
    after which PortBusyError says ``exhausted``. What was bound is released on any failure.
    """
    chosen = preferred if port is None else port
    if not items:
        return chosen or 0, []
    if chosen:
        try:
            return chosen, _bind_each(items, bind, release, chosen)
        except PortBusyError:
            if port:
                raise
    for _ in range(attempts):
        first = bind(items[0], 0)
        picked = port_of(first)
        try:
            return picked, [first, *_bind_each(items[1:], bind, release, picked)]
        except PortBusyError:
            release(first)
    raise PortBusyError(errno.EADDRINUSE, exhausted)


def _bind_each(items: Sequence[T], bind: Callable[[T, int], S], release: Callable[[S], None],
               port: int) -> list[S]:
    bound: list[S] = []
    try:
        for item in items:
            bound.append(bind(item, port))
    except BaseException:
        for done in bound:
            release(done)
        raise
    return bound


def tcp_socket(ip: str, port: int, *, reuse: bool, backlog: int | None, service: str,
               owner: str) -> socket.socket:
    """A TCP socket bound to ``ip``:``port`` and, with a ``backlog``, listening (non-blocking).

    ``reuse`` sets SO_REUSEADDR; a socket bound without it and never listening holds the address
    and port so that connections to it are refused and nothing else can take them. Raises
    PortBusyError ("<service> port <port> is busy on <ip>") if the port is taken, OSError naming
    ``owner`` for any other failure.
    """
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        if backlog is not None:
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError as err:
        sock.close()
        if err.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortBusyError(err.errno, f"{service} port {port} is busy on {ip}") from err
        raise OSError(err.errno, f"cannot bind {ip} port {port} for {owner}: "
                                 f"{err.strerror}") from err
    return sock
