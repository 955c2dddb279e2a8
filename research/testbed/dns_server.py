"""The testbed's DNS server: authoritative for ``.test``, answering from a scenario (UDP and TCP).

- MX, A, AAAA (and ANY) from the scenario; null MX is ``MX 0 .``;
- a name that exists without records of the asked type: NOERROR, empty answer, SOA in authority;
- an undefined name under ``.test`` (including ``dns = "nxdomain"`` domains): NXDOMAIN;
- ``dns = "servfail"``: SERVFAIL; ``dns = "timeout"``: no answer at all;
- ``dns = "flaky"``: SERVFAIL for every other query of the name, the real answer in between;
- a host's ``aliases``: CNAME to the host, followed by the host's records of the asked type;
- over UDP, an answer larger than the client can take (512 bytes, or its EDNS size) comes back
  empty with TC set, so the client must ask again over TCP; for ``dns = "truncate"`` every
  UDP answer does;
- anything outside ``.test``: REFUSED, since this is no recursive resolver.
"""

from __future__ import annotations

import errno
import socket
import socketserver
import threading
from typing import Any

from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, SOA, A, DNSError, DNSRecord
from dnslib.server import DNSHandler, DNSServer

from research.testbed.scenario import TLD, DnsMode, Scenario

TTL = 300
_POLL_INTERVAL = 0.05
_ZONE = TLD + "."
_SOA = SOA("testbed.invalid.", "hostmaster.testbed.invalid.", (1, 3600, 600, 86400, TTL))
_UDP_SIZE = 512
"""What a client without EDNS can take over UDP (RFC 1035 §4.2.1)."""
_SERVING = (DnsMode.OK, DnsMode.TRUNCATE, DnsMode.FLAKY)


class PortBusyError(OSError):
    """The asked-for DNS port is taken on the DNS address."""


class _Drop(DNSError):
    """Raised by the resolver for a query that must go unanswered; dnslib sends nothing."""


class ScenarioResolver:
    """A dnslib resolver answering from a scenario. Immutable, so safe across server threads."""

    def __init__(self, scenario: Scenario) -> None:
        self._records: dict[str, dict[int, list[RR]]] = {}
        for host in scenario.hosts:
            # A host without addresses still exists: NOERROR with no records, not NXDOMAIN.
            self._records.setdefault(host.name, {})
            for ip in host.addresses:
                qtype, rdata = (QTYPE.AAAA, AAAA(ip)) if ":" in ip else (QTYPE.A, A(ip))
                self._add(host.name, qtype, rdata)
        self._aliases = {alias: host.name for host in scenario.hosts for alias in host.aliases}
        self._servfail: set[str] = set()
        self._drop: set[str] = set()
        self._truncate: set[str] = set()
        self._flaky: dict[str, int] = {}
        self._flaky_lock = threading.Lock()
        for domain in scenario.domains:
            if domain.dns is DnsMode.SERVFAIL:
                self._servfail.add(domain.name)
            elif domain.dns is DnsMode.TIMEOUT:
                self._drop.add(domain.name)
            elif domain.dns in _SERVING:
                self._records.setdefault(domain.name, {})
                if domain.null_mx or domain.mixed_null_mx:
                    self._add(domain.name, QTYPE.MX, MX(".", 0))
                for preference, target in domain.mx:
                    self._add(domain.name, QTYPE.MX, MX(target + ".", preference))
            if domain.dns is DnsMode.TRUNCATE:
                self._truncate.add(domain.name)
            elif domain.dns is DnsMode.FLAKY:
                self._flaky[domain.name] = 0
        # RFC 8020: the parents of defined names exist (empty non-terminals answer NOERROR).
        self._existing: set[str] = {TLD}
        for name in self._records.keys() | self._aliases.keys() | self._servfail | self._drop:
            labels = name.split(".")
            self._existing.update(".".join(labels[i:]) for i in range(len(labels)))

    def _add(self, name: str, qtype: int, rdata: Any) -> None:
        rr = RR(name + ".", qtype, rdata=rdata, ttl=TTL)
        self._records.setdefault(name, {}).setdefault(qtype, []).append(rr)

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        """Answer one query (dnslib's resolver interface); raises _Drop to stay silent."""
        reply = request.reply()
        if request.header.opcode != 0 or len(request.questions) != 1:
            reply.header.rcode = RCODE.NOTIMP
            return reply
        name = str(request.q.qname).lower().rstrip(".")
        qtype = request.q.qtype
        if name in self._drop:
            raise _Drop(f"dropped query for {name}")
        if name != TLD and not name.endswith("." + TLD):
            reply.header.aa = 0
            reply.header.rcode = RCODE.REFUSED
            return reply
        if name in self._servfail or self._flaky_fails(name):
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if name not in self._existing:
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(RR(_ZONE, QTYPE.SOA, rdata=_SOA, ttl=TTL))
            return reply
        owner = name
        if name in self._aliases:
            # Like any authoritative server: the CNAME, then the target's in-zone records.
            owner = self._aliases[name]
            reply.add_answer(RR(name + ".", QTYPE.CNAME, rdata=CNAME(owner + "."), ttl=TTL))
            if qtype == QTYPE.CNAME:
                return reply
        records = self._records.get(owner, {})
        answers = [rr for rrs in records.values() for rr in rrs] if qtype == QTYPE.ANY else (
            records.get(qtype, []))
        for rr in answers:
            reply.add_answer(rr)
        if not reply.rr:
            reply.add_auth(RR(_ZONE, QTYPE.SOA, rdata=_SOA, ttl=TTL))
        return self._fit(request, reply, handler, name)

    def _flaky_fails(self, name: str) -> bool:
        if name not in self._flaky:
            return False
        with self._flaky_lock:  # server threads answer concurrently
            self._flaky[name] += 1
            return self._flaky[name] % 2 == 1

    def _fit(self, request: DNSRecord, reply: DNSRecord, handler: DNSHandler,
             name: str) -> DNSRecord:
        """``reply``, or over UDP an empty truncated (TC) one if it is too big for the client."""
        if getattr(handler, "protocol", "udp") != "udp":
            return reply
        limit = _UDP_SIZE
        for rr in request.ar:
            if rr.rtype == QTYPE.OPT:
                limit = max(limit, rr.rclass)  # EDNS: the class field is the UDP size
        if name not in self._truncate and len(reply.pack()) <= limit:
            return reply
        # dnslib's own truncate() drops the question, and resolvers reject such an answer as
        # not matching their query: keep the question, drop every record.
        truncated = request.reply()
        truncated.header.tc = 1
        return truncated


class _QuietLogger:
    """dnslib logs every query to stdout by default; the testbed's log stays readable without."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args: None


class _UDPServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
    # No SO_REUSEADDR: on Linux it lets a second UDP socket share the port silently.
    allow_reuse_address = False
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)


class _TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)


class DnsServers:
    """The UDP and TCP servers on one address and port, each in a daemon thread."""

    def __init__(self, scenario: Scenario, host: str, port: int) -> None:
        """Bind both sockets (``port`` 0: a free port, the same for UDP and TCP).

        Raises PortBusyError if an explicit port is taken, OSError if the address is unusable.
        """
        resolver = ScenarioResolver(scenario)
        logger = _QuietLogger()
        for _ in range(20 if port == 0 else 1):
            udp = self._bind(resolver, logger, host, port, _UDPServer)
            try:
                tcp = self._bind(resolver, logger, host, udp.server.server_address[1], _TCPServer)
            except PortBusyError:
                udp.server.server_close()
                if port:
                    raise
                continue
            break
        else:
            raise PortBusyError(errno.EADDRINUSE, f"found no port free for UDP and TCP on {host}")
        self.host = host
        self.port: int = udp.server.server_address[1]
        self._servers = (udp, tcp)
        self._threads: list[threading.Thread] = []

    @staticmethod
    def _bind(resolver: ScenarioResolver, logger: _QuietLogger, host: str, port: int,
              server: type[socketserver.BaseServer]) -> DNSServer:
        try:
            return DNSServer(resolver, address=host, port=port, logger=logger, server=server)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                kind = "UDP" if server is _UDPServer else "TCP"
                raise PortBusyError(err.errno, f"DNS port {port}/{kind} is busy on {host}") from err
            raise

    def start(self) -> None:
        for server in self._servers:
            # A short poll interval: shutdown() waits for it, twice, on every stop.
            thread = threading.Thread(target=server.server.serve_forever, args=(_POLL_INTERVAL,),
                                      name="testbed-dns", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        for server in self._servers:
            if self._threads:
                server.server.shutdown()
            server.server.server_close()
        self._threads.clear()
