"""Exim's main log: arrivals (``<=``) and deliveries (``=>``, ``**``, ``==``) with ``X=``/``CV=``.

Lines read (Exim's default ``log_selector`` has ``tls_cipher`` and ``tls_certificate_verified``)::

    2026-11-28 18:37:02 1xXNIE-00043Q-1O <= alice@client.test H=(client.test) [127.0.0.1]
        P=esmtps X=TLS1.0:ECDHE_X25519__RSA_SHA1__AES_256_CBC__SHA1:256 CV=no S=543
    2026-11-28 18:37:02 1xXNIE-00043Q-1O => bob@tls10.mta.test R=to_testbed T=remote_smtp
        H=127.0.201.1 [127.0.201.1] X=TLS1.0:ECDHE_X25519__AES_256_CBC__SHA1:256 CV=yes C="250 OK"

Exim logs no line per connection by default, so a row is one message received from a peer
(``<=`` with ``H=``) or one delivery attempt to a peer (``=>``, ``**``, ``==`` with ``H=``):
a connection carrying several messages gives several rows. ``->`` lines (more recipients of the
same delivery, over the same connection) add none. Without ``X=`` the message or delivery went
in clear text. ``X=`` is ``VERSION:CIPHER:BITS`` in the TLS library's own names (OpenSSL or
GnuTLS; see :func:`research.traffic.names.iana_cipher`).
"""

from __future__ import annotations

import re

from research.store.schema import Direction, SessionSource, Verification
from research.traffic.logs.base import Peer, Tls, session_row
from research.traffic.logs.lines import Line
from research.traffic.names import mail_domain, split_peer
from research.traffic.sessions import Row

SOURCE = SessionSource.EXIM
_ENTRY = re.compile(
    r"(?P<id>[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) (?P<flag><=|=>|\*\*|==|->|\*>) "
    r"(?P<address>\S+)(?P<rest>.*)")
_HOST = re.compile(
    r" H=(?:(?P<name>[^\s(\[]+) ?)?(?:\((?P<helo>[^)]*)\) ?)?\[(?P<ip>[^\]]+)\](?::(?P<port>\d+))?")
_X = re.compile(r" X=(?P<x>\S+)")
_CV = re.compile(r" CV=(?P<cv>[a-z]+)")
_P = re.compile(r" P=(?P<p>\S+)")
_CV_VALUES = {"yes": Verification.VERIFIED, "dane": Verification.VERIFIED,
              "no": Verification.UNVERIFIED}


class EximParser:
    """Feed it Exim main-log lines; each arrival or delivery to a peer is a row."""

    source = SOURCE

    def __init__(self, file: str) -> None:
        self.file = file

    def feed(self, line: Line, number: int) -> list[Row] | None:
        """Rows of this line; None if it is an arrival or delivery whose fields cannot be read."""
        m = _ENTRY.match(line.message)
        if not m:
            return [] if " X=" not in line.message else None
        flag, rest = m["flag"], m["rest"]
        if flag in ("->", "*>"):
            return []
        host = _HOST.search(rest)
        if host is None:
            return [] if " X=" not in rest else None  # local arrival or delivery
        protocol = _P.search(rest)
        if flag == "<=" and protocol is not None and protocol["p"] == "local":
            return []
        tls = None
        x = _X.search(rest)
        if x is not None:
            parts = x["x"].split(":")
            if len(parts) < 2:
                return None
            bits = parts[-1] if len(parts) >= 3 and parts[-1].isdigit() else None
            cipher = ":".join(parts[1:-1]) if bits is not None else ":".join(parts[1:])
            cv = _CV.search(rest)
            verification = _CV_VALUES.get(cv["cv"]) if cv else None
            tls = Tls.from_logged(parts[0], cipher, bits,
                                  verification.value if verification else None)
            if tls.version is None:
                return None
        name, ip = split_peer(host["name"], host["ip"])
        peer = Peer(name, ip, int(host["port"]) if host["port"] else None)
        inbound = flag == "<="
        return [session_row(source=SOURCE, file=self.file, line=number, time=line.time,
                            direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
                            peer=peer, tls=tls,
                            mail_domain=None if inbound else mail_domain(m["address"]))]

    def finish(self) -> list[Row]:
        return []
