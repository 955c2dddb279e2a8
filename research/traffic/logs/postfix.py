"""Postfix: ``smtpd`` sessions (inbound) and ``smtp`` deliveries (outbound) with their TLS.

Lines read (``smtp_tls_loglevel``/``smtpd_tls_loglevel`` >= 1 for the TLS lines)::

    postfix/smtpd[26745]: connect from unknown[127.0.0.1]
    postfix/smtpd[26745]: Anonymous TLS connection established from unknown[127.0.0.1]: TLSv1
        with cipher ECDHE-RSA-AES256-SHA (256/256 bits)
    postfix/smtpd[26745]: disconnect from unknown[127.0.0.1] ehlo=2 starttls=1 ... commands=7
    postfix/smtp[26750]: Trusted TLS connection established to 127.0.201.1[127.0.201.1]:2525:
        TLSv1 with cipher ECDHE-RSA-AES256-SHA (256/256 bits)
    postfix/smtp[26750]: CC46A20D1DA: to=<bob@tls10.mta.test>, relay=127.0.201.1[...]:2525,
        ..., status=sent (250 OK)

Sessions without TLS, the heuristic:

* inbound: every ``smtpd`` connection is a session, from ``connect from`` to ``disconnect from``
  in one smtpd process; one without a TLS line in between was in clear text (this includes
  connections that sent no command, e.g. monitoring probes);
* outbound: a delivery line (``to=..., relay=host[ip]:port, ..., status=...``, any status, any
  delivery program but ``local``, ``virtual``, ``lmtp``, ``pipe``, ``discard``, ``error``,
  ``retry``) whose relay is a network peer and that no TLS line to that peer preceded in the
  same process is a clear-text session, unless ``conn_use=N`` (N >= 2) says it reused a cached
  connection (opened, and its TLS logged, elsewhere). See
  :class:`~research.traffic.logs.base.ClientConnections`.

A failed handshake (``SSL_connect error to host[ip]:port``, ``SSL_accept error from host[ip]``)
makes its session one without TLS that tried STARTTLS (``starttls_used``).
"""

from __future__ import annotations

import datetime as dt
import re

from research.store.schema import Direction, SessionSource, Verification
from research.traffic.logs.base import Bounded, ClientConnections, Peer, Tls, session_row
from research.traffic.logs.lines import Line
from research.traffic.names import mail_domain, split_peer
from research.traffic.sessions import Row

SOURCE = SessionSource.POSTFIX
_TLS = re.compile(
    r"(?:(?P<level>Anonymous|Untrusted|Trusted|Verified) )?TLS connection established "
    r"(?P<dir>to|from) (?P<name>[^\[\s]+)\[(?P<ip>[^\]]+)\](?::(?P<port>\d+))?: "
    r"(?P<proto>\S+) with cipher (?P<cipher>\S+) \((?P<bits>\d+)/\d+ bits\)")
_CONNECT = re.compile(r"connect from (?P<name>[^\[\s]+)\[(?P<ip>[^\]]+)\](?::(?P<port>\d+))?")
_DISCONNECT = re.compile(r"disconnect from (?P<name>[^\[\s]+)\[(?P<ip>[^\]]+)\]")
_DELIVERY = re.compile(
    r"(?P<qid>[0-9A-Za-z]+): to=<(?P<rcpt>[^>]*)>, (?:orig_to=<[^>]*>, )?"
    r"relay=(?P<relay>[^,]+), (?P<rest>.*\bstatus=\w+.*)")
_RELAY = re.compile(r"(?P<name>[^\[\s]+)\[(?P<ip>[^\]]+)\](?::(?P<port>\d+))?")
_SSL_ERROR = re.compile(
    r"SSL_(?P<side>connect|accept) error (?:to|from) (?P<name>[^\[\s]+)\[(?P<ip>[^\]]+)\]"
    r"(?::(?P<port>\d+))?")
_CONN_USE = re.compile(r"\bconn_use=(\d+)")
_LEVELS = {"Anonymous": Verification.ANONYMOUS, "Untrusted": Verification.UNTRUSTED,
           "Trusted": Verification.TRUSTED, "Verified": Verification.VERIFIED}
_NOT_SMTP = ("local", "virtual", "lmtp", "pipe", "discard", "error", "retry")


class _Inbound:
    __slots__ = ("attempted", "line", "peer", "time", "tls")

    def __init__(self, peer: Peer, time: dt.datetime | None, line: int) -> None:
        self.peer = peer
        self.time = time
        self.line = line
        self.tls: Tls | None = None
        self.attempted = False


class PostfixParser:
    """Feed it Postfix's lines in order; it returns session rows as sessions complete."""

    source = SOURCE

    def __init__(self, file: str) -> None:
        self.file = file
        self._smtpd: Bounded[str, _Inbound] = Bounded()
        self._clients = ClientConnections(SOURCE, file, message_scoped=True)

    def feed(self, line: Line, number: int) -> list[Row] | None:
        """Rows completed by this line; None if it is a TLS line whose fields cannot be read."""
        msg = line.message
        process = f"{line.program}[{line.pid}]"
        if "TLS connection established" in msg:
            m = _TLS.match(msg)
            if not m:
                return None
            host, ip = split_peer(m["name"], m["ip"])
            peer = Peer(host, ip, int(m["port"]) if m["port"] else None)
            level = _LEVELS.get(m["level"] or "")
            tls = Tls.from_logged(m["proto"], m["cipher"], m["bits"],
                                  level.value if level else None)
            if m["dir"] == "to":
                return self._clients.tls(process, peer, tls, line.time, number)
            session = self._smtpd.get(process)
            if session is None or session.peer.ip != ip:
                # The log began inside this session: its connect line is not in the file.
                session = self._smtpd[process] = _Inbound(peer, line.time, number)
            session.tls, session.time, session.line = tls, line.time, number
            return []
        if msg.startswith(("SSL_connect error to ", "SSL_accept error from ")):
            m = _SSL_ERROR.match(msg)
            if not m:
                return None
            host, ip = split_peer(m["name"], m["ip"])
            peer = Peer(host, ip, int(m["port"]) if m["port"] else None)
            if m["side"] == "connect":
                return self._clients.failed_tls(process, peer, line.time, number)
            session = self._smtpd.get(process)
            if session is None or session.peer.ip != ip:
                session = self._smtpd[process] = _Inbound(peer, line.time, number)
            session.attempted = True
            return []
        if msg.startswith("connect from "):
            m = _CONNECT.match(msg)
            if not m:
                return None
            host, ip = split_peer(m["name"], m["ip"])
            rows = self._close(process)
            self._smtpd[process] = _Inbound(Peer(host, ip, int(m["port"]) if m["port"] else None),
                                            line.time, number)
            return rows
        if msg.startswith("disconnect from "):
            m = _DISCONNECT.match(msg)
            if not m:
                return None
            return self._close(process)
        if " to=<" in msg and "relay=" in msg:
            return self._delivery(line, msg, process, number)
        return []

    def _close(self, process: str) -> list[Row]:
        session = self._smtpd.pop(process, None)
        if session is None:
            return []
        return [session_row(source=SOURCE, file=self.file, line=session.line, time=session.time,
                            direction=Direction.INBOUND, peer=session.peer, tls=session.tls,
                            attempted=session.attempted)]

    def _delivery(self, line: Line, msg: str, process: str, number: int) -> list[Row] | None:
        m = _DELIVERY.match(msg)
        if not m:
            return None
        service = line.program.rsplit("/", 1)[-1]
        relay = _RELAY.fullmatch(m["relay"].strip())
        if service in _NOT_SMTP or relay is None:
            return []  # not a network SMTP session (relay=none, local delivery, a socket)
        host, ip = split_peer(relay["name"], relay["ip"])
        peer = Peer(host, ip, int(relay["port"]) if relay["port"] else None)
        use = _CONN_USE.search(m["rest"])
        return self._clients.delivery(process, peer, m["qid"], mail_domain(m["rcpt"]),
                                      line.time, number,
                                      reused=bool(use and int(use.group(1)) >= 2))

    def finish(self) -> list[Row]:
        """Sessions still open when the log ended (their end is not in this file)."""
        rows = [r for p in list(self._smtpd) for r in self._close(p)]
        return rows + self._clients.finish()
