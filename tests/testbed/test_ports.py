"""The one rule every testbed service binds by: one port across its addresses or transports.

Real sockets on loopback; no testbed is started.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator

import pytest

from research.testbed.ports import PortBusyError, bind_on_one_port, tcp_socket

ADDRESSES = ["127.0.203.1", "127.0.203.2", "127.0.203.3"]


def _bind(ip: str, port: int) -> socket.socket:
    return tcp_socket(ip, port, reuse=True, backlog=8, service="TEST", owner=f"owner-{ip}")


def _port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


@contextlib.contextmanager
def _held(ip: str, port: int = 0) -> Iterator[socket.socket]:
    sock = _bind(ip, port)
    try:
        yield sock
    finally:
        sock.close()


def _all(port: int | None, preferred: int | None = None) -> tuple[int, list[socket.socket]]:
    return bind_on_one_port(ADDRESSES, _bind, port_of=_port, release=socket.socket.close,
                            port=port, preferred=preferred, exhausted="no port for the test")


def test_any_port_is_one_port_on_every_address() -> None:
    port, socks = _all(None)
    try:
        assert port > 0
        assert [s.getsockname() for s in socks] == [(ip, port) for ip in ADDRESSES]
    finally:
        for sock in socks:
            sock.close()


def test_preferred_port_is_used_when_free_and_left_when_busy_on_one_address() -> None:
    with _held(ADDRESSES[0]) as probe:
        free = _port(probe)
    port, socks = _all(None, preferred=free)
    for sock in socks:
        sock.close()
    assert port == free
    # Taken on the second address only: another port, the same on all three.
    with _held(ADDRESSES[1], free):
        port, socks = _all(None, preferred=free)
        for sock in socks:
            sock.close()
    assert port != free


def test_explicit_busy_port_raises_and_releases_what_it_bound() -> None:
    with _held(ADDRESSES[2]) as busy:
        taken = _port(busy)
        busy_text = re.escape(f"TEST port {taken} is busy on 127.0.203.3")
        with pytest.raises(PortBusyError, match=busy_text):
            _all(taken)
    # The first two addresses were bound then released: the port is free on them again.
    port, socks = bind_on_one_port(ADDRESSES[:2], _bind, port_of=_port,
                                   release=socket.socket.close, port=taken, exhausted="none")
    for sock in socks:
        sock.close()
    assert port == taken


def test_gives_up_after_its_attempts() -> None:
    def always_busy(ip: str, port: int) -> socket.socket:
        if port == 0:
            return _bind(ip, 0)
        raise PortBusyError(98, "busy")

    released: list[int] = []

    def release(sock: socket.socket) -> None:
        released.append(_port(sock))
        sock.close()

    with pytest.raises(PortBusyError, match="found nothing"):
        bind_on_one_port(ADDRESSES, always_busy, port_of=_port, release=release, port=None,
                         attempts=3, exhausted="found nothing")
    assert len(released) == 3


def test_unbindable_address_names_its_owner() -> None:
    owner_text = re.escape("cannot bind 192.0.2.1 port 0 for owner-192.0.2.1")
    with pytest.raises(OSError, match=owner_text):
        _bind("192.0.2.1", 0)
