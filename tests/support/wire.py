"""Reading a server's SMTP replies off a plain socket, a byte at a time (so that nothing after
the reply is consumed), for tests that speak to testbed servers directly."""

from __future__ import annotations

import socket


def read_line(sock: socket.socket) -> bytes:
    """One line with its CRLF; what came before the connection closed, if it closed first."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def read_reply(sock: socket.socket) -> bytes:
    """One whole SMTP reply, multi-line or not."""
    lines = [read_line(sock)]
    while lines[-1][3:4] == b"-":
        lines.append(read_line(sock))
    return b"".join(lines)
