"""Sendmail: ``STARTTLS=server``/``STARTTLS=client`` lines, and the sessions without them.

Lines read (``LogLevel`` >= 9, Sendmail's default)::

    sm-mta[32152]: STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1, verify=NO,
        cipher=ECDHE-RSA-AES256-SHA, bits=256/256
    sm-mta[32154]: STARTTLS=client, relay=[127.0.201.1], version=TLSv1, verify=OK,
        cipher=ECDHE-RSA-AES256-SHA, bits=256/256
    sm-mta[32154]: 6ASIlFmV032152: to=<bob@tls10.mta.test>, ..., mailer=esmtp, ...,
        relay=[127.0.201.1] [127.0.201.1], dsn=2.0.0, stat=Sent (OK)

Sendmail forks a process per inbound connection, so the pid is the session. Inbound:
``STARTTLS=server`` is a TLS session; a process that logs ``from=..., proto=ESMTP`` (or
``SMTP``: no ``S`` for STARTTLS) or "did not issue MAIL/EXPN/VRFY/ETRN" without having logged
``STARTTLS=server`` was a clear-text session (counted once per process; the same pid an hour
later is taken as a new process). Outbound: a ``to=`` line with an SMTP mailer
(``esmtp``, ``smtp``, ``smtp8``, ``dsmtp``, ``relay``) and a relay address pairs with the
process's last ``STARTTLS=client`` line to that address; without one it was in clear text
(:class:`~research.traffic.logs.base.ClientConnections`; one process keeps its connection to an
address across messages, as Sendmail's connection cache does). ``verify=`` maps to
:class:`~research.store.schema.Verification`: OK and TRUSTED → verified, NO and NOT → anonymous,
FAIL and the other error values → untrusted.
"""

from __future__ import annotations

import datetime as dt
import re

from research.store.schema import Direction, SessionSource, Verification
from research.traffic.logs.base import Bounded, ClientConnections, Peer, Tls, session_row
from research.traffic.logs.lines import Line
from research.traffic.names import mail_domain, split_peer
from research.traffic.sessions import Row

SOURCE = SessionSource.SENDMAIL
SESSION_GAP = dt.timedelta(hours=1)
_STARTTLS = re.compile(
    r"(?:(?P<qid>\w+): )?STARTTLS=(?P<side>client|server), relay=(?P<relay>.*?), "
    r"version=(?P<version>[^,]+), verify=(?P<verify>[^,]+), cipher=(?P<cipher>[^,]+), "
    r"bits=(?P<bits>\d+)/\d+")
_RELAY = re.compile(r"(?:(?P<name>[^\s\[]+) ?)?\[(?P<ip>[^\]]+)\]")
_TO = re.compile(r"(?P<qid>\w+): to=(?P<rcpt>.*?), (?P<rest>.*\bstat=.*)")
_MAILER = re.compile(r"\bmailer=(?P<mailer>[\w-]+)")
_TO_RELAY = re.compile(r"\brelay=(?P<relay>[^,]+)")
_FROM = re.compile(r"\w+: from=.*\bproto=(?P<proto>\w+).*\brelay=(?P<relay>[^,]+)")
_NO_MAIL = re.compile(r"(?:\w+: )?(?P<relay>.+?) did not issue MAIL/EXPN/VRFY/ETRN")
_SMTP_MAILERS = frozenset({"esmtp", "smtp", "smtp8", "dsmtp", "relay"})
_VERIFY = {"OK": Verification.VERIFIED, "TRUSTED": Verification.VERIFIED,
           "NO": Verification.ANONYMOUS, "NOT": Verification.ANONYMOUS}


def _peer(relay: str) -> Peer | None:
    m = _RELAY.search(relay)
    if m is None:
        return None
    host, ip = split_peer(m["name"], m["ip"])
    return Peer(host, ip)


class SendmailParser:
    """Feed it Sendmail's syslog lines in order; it returns session rows."""

    source = SOURCE

    def __init__(self, file: str) -> None:
        self.file = file
        # Per inbound process: when its session was counted (a pid is reused only long after).
        self._counted: Bounded[str, dt.datetime | None] = Bounded()
        self._clients = ClientConnections(SOURCE, file, message_scoped=False)

    def feed(self, line: Line, number: int) -> list[Row] | None:
        """Rows completed by this line; None if it is a STARTTLS line that cannot be read."""
        msg = line.message
        process = line.pid or line.program
        if "STARTTLS=" in msg and ", version=" in msg:
            m = _STARTTLS.match(msg)
            peer = _peer(m["relay"]) if m else None
            if m is None or peer is None:
                return None
            verify = m["verify"].strip().upper()
            verification = _VERIFY.get(verify, Verification.UNTRUSTED)
            tls = Tls.from_logged(m["version"], m["cipher"], m["bits"], verification.value)
            if m["side"] == "client":
                return self._clients.tls(process, peer, tls, line.time, number)
            self._counted[process] = line.time
            return [session_row(source=SOURCE, file=self.file, line=number, time=line.time,
                                direction=Direction.INBOUND, peer=peer, tls=tls)]
        m = _TO.match(msg)
        if m is not None:
            mailer = _MAILER.search(m["rest"])
            relay = _TO_RELAY.search(m["rest"])
            peer = _peer(relay["relay"]) if relay else None
            if mailer is None or mailer["mailer"] not in _SMTP_MAILERS or peer is None:
                return []
            return self._clients.delivery(process, peer, m["qid"], mail_domain(m["rcpt"]),
                                          line.time, number)
        m = _FROM.match(msg) or _NO_MAIL.match(msg)
        if m is not None:
            proto = m.groupdict().get("proto")
            if proto is not None and proto.upper().startswith(("ESMTPS", "SMTPS")):
                return []
            if self._already_counted(process, line.time):
                return []
            peer = _peer(m["relay"])
            if peer is None:
                return []
            self._counted[process] = line.time
            return [session_row(source=SOURCE, file=self.file, line=number, time=line.time,
                                direction=Direction.INBOUND, peer=peer, tls=None)]
        return []

    def _already_counted(self, process: str, time: dt.datetime | None) -> bool:
        if process not in self._counted:
            return False
        then = self._counted[process]
        # A pid seen again long after is a new process (pids wrap around on a busy server).
        return not (then is not None and time is not None and time - then > SESSION_GAP)

    def finish(self) -> list[Row]:
        return self._clients.finish()
