"""What the MTA parsers share: the bookkeeping that ties a client-side TLS line to the delivery
that used the connection, in bounded memory."""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from research.store.schema import Direction
from research.traffic.sessions import MAX_OPEN, Peer, Row, Tls, session_row

K = TypeVar("K")
V = TypeVar("V")


class Bounded(OrderedDict[K, V], Generic[K, V]):
    """A dict that forgets its oldest entries beyond :data:`MAX_OPEN`."""

    def __init__(self, limit: int = MAX_OPEN) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


@dataclass(slots=True)
class _Connection:
    peer: Peer
    tls: Tls | None
    time: dt.datetime | None
    line: int
    messages: set[str]
    emitted: bool
    attempted: bool = False


class ClientConnections:
    """A delivery process's current connection, to pair its TLS line with its delivery lines.

    Postfix and Sendmail log the client-side TLS handshake without a queue id, then one line per
    recipient delivered. Per process (pid): a TLS line opens a connection; the next delivery line
    to the same peer address is that connection's session (the row takes the recipient's
    domain); further deliveries over it add nothing. A delivery to a peer with no TLS line
    before it is a session in clear text, unless it is known to reuse a cached connection
    (``reused``), whose TLS line another process logged. With ``message_scoped`` (Postfix), a
    connection carries one message unless ``reused`` says otherwise, so a new queue id to the
    same peer is a new connection; without it (Sendmail), one process delivering to the same
    address keeps its connection. A TLS line never followed by a delivery (the delivery was
    logged elsewhere, or the log ends) is still a session: :meth:`finish` returns those.
    """

    def __init__(self, source: str, file: str, *, message_scoped: bool) -> None:
        self._source = source
        self._file = file
        self._message_scoped = message_scoped
        self._open: Bounded[str, _Connection] = Bounded()

    def _row(self, c: _Connection, mail_domain: str | None) -> Row:
        return session_row(source=self._source, file=self._file, line=c.line, time=c.time,
                           direction=Direction.OUTBOUND, peer=c.peer, tls=c.tls,
                           mail_domain=mail_domain, attempted=c.attempted)

    def tls(self, process: str, peer: Peer, tls: Tls, time: dt.datetime | None,
            line: int) -> list[Row]:
        rows = self._pending(process)
        self._open[process] = _Connection(peer, tls, time, line, set(), emitted=False)
        return rows

    def failed_tls(self, process: str, peer: Peer, time: dt.datetime | None,
                   line: int) -> list[Row]:
        """A STARTTLS handshake that failed: the connection's delivery line is then a session
        without TLS that tried it."""
        rows = self._pending(process)
        self._open[process] = _Connection(peer, None, time, line, set(), emitted=False,
                                          attempted=True)
        return rows

    def _pending(self, process: str) -> list[Row]:
        old = self._open.pop(process, None)
        waiting = old is not None and (old.tls or old.attempted) and not old.emitted
        return [self._row(old, None)] if old is not None and waiting else []

    def delivery(self, process: str, peer: Peer, message: str, mail_domain: str | None,
                 time: dt.datetime | None, line: int, *, reused: bool = False) -> list[Row]:
        c = self._open.get(process)
        same_peer = c is not None and c.peer.ip == peer.ip
        if c is not None and same_peer and not c.emitted:
            c.emitted = True
            c.messages.add(message)
            # The TLS line names the peer as the TLS layer saw it; the delivery line may add a
            # host name.
            c.peer = replace(c.peer, host=c.peer.host or peer.host,
                             port=c.peer.port or peer.port)
            return [self._row(c, mail_domain)]
        if c is not None and same_peer and (message in c.messages or reused
                                            or not self._message_scoped):
            c.messages.add(message)
            return []
        if reused:
            return []
        rows = self._pending(process)
        self._open[process] = _Connection(peer, None, time, line, {message}, emitted=True)
        return [*rows, self._row(self._open[process], mail_domain)]

    def finish(self) -> list[Row]:
        rows = [self._row(c, None) for c in self._open.values()
                if (c.tls or c.attempted) and not c.emitted]
        self._open.clear()
        return rows
