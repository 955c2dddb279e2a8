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

Given the certificate directory (as the testbed always gives it), also the enforcement records:
TXT at ``_mta-sts.<domain>`` and ``_smtp._tls.<domain>``, A of ``mta-sts.<domain>``, TLSA at
``_25._tcp.<host>`` (``match`` data computed from the certificate files), DNSKEY at ``test.``;
and, to queries with the EDNS DO bit, RRSIGs over every answer RRset (none for ``unsigned``
names, a damaged one for ``bogus`` names) and an OPT record. The AD bit is set on such an
answer when its RRsets carry signatures, as a validating resolver that trusts this zone would,
except that the testbed does not validate: it sets AD on its ``bogus`` answers too, which is
what a scanner that takes the AD bit on trust would be told by a resolver it should not trust.
AD is never echoed from the query otherwise.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import socket
import socketserver
import threading
import time
from pathlib import Path
from typing import Any

import dns.message
import dns.rrset
from cryptography import x509
from dnslib import AAAA, CNAME, EDNS0, MX, QTYPE, RCODE, RR, SOA, TLSA, TXT, A, DNSError, DNSRecord
from dnslib.server import DNSHandler, DNSServer

from research.policy.dane import association_data
from research.testbed.ca import CA_FILE, host_files
from research.testbed.dnssec_zone import ZoneSigner
from research.testbed.ports import PortBusyError, bind_on_one_port
from research.testbed.scenario import (
    DNS_SERVING_RECORDS,
    SLOW_ANSWER_S,
    TLD,
    DnsMode,
    DnssecMode,
    Host,
    Scenario,
)

TTL = 300
_POLL_INTERVAL = 0.05
_DO_BIT = 1 << 15
_EDNS_PAYLOAD = 1232
_ZONE = TLD + "."
_SOA = SOA("testbed.invalid.", "hostmaster.testbed.invalid.", (1, 3600, 600, 86400, TTL))
_UDP_SIZE = 512
"""What a client without EDNS can take over UDP (RFC 1035 §4.2.1)."""


class _Drop(DNSError):
    """Raised by the resolver for a query that must go unanswered; dnslib sends nothing."""


class ScenarioResolver:
    """A dnslib resolver answering from a scenario. Immutable, so safe across server threads."""

    def __init__(self, scenario: Scenario, cert_dir: Path | None = None) -> None:
        self._records: dict[str, dict[int, list[RR]]] = {}
        self._signatures: dict[tuple[str, int], list[RR]] = {}
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
        self._slow: set[str] = set()
        self._flaky_lock = threading.Lock()
        for domain in scenario.domains:
            if domain.dns is DnsMode.SERVFAIL:
                self._servfail.add(domain.name)
            elif domain.dns is DnsMode.TIMEOUT:
                self._drop.add(domain.name)
            elif domain.dns in DNS_SERVING_RECORDS:
                self._records.setdefault(domain.name, {})
                if domain.null_mx or domain.mixed_null_mx:
                    self._add(domain.name, QTYPE.MX, MX(".", 0))
                for preference, target in domain.mx:
                    self._add(domain.name, QTYPE.MX, MX(target + ".", preference))
            if domain.dns is DnsMode.TRUNCATE:
                self._truncate.add(domain.name)
            elif domain.dns is DnsMode.FLAKY:
                self._flaky[domain.name] = 0
            elif domain.dns is DnsMode.SLOW:
                self._slow.add(domain.name)
        if cert_dir is not None:
            self._add_enforcement(scenario, cert_dir)
        # RFC 8020: the parents of defined names exist (empty non-terminals answer NOERROR).
        self._existing: set[str] = {TLD}
        for name in self._records.keys() | self._aliases.keys() | self._servfail | self._drop:
            labels = name.split(".")
            self._existing.update(".".join(labels[i:]) for i in range(len(labels)))

    def _add(self, name: str, qtype: int, rdata: Any) -> None:
        rr = RR(name + ".", qtype, rdata=rdata, ttl=TTL)
        self._records.setdefault(name, {}).setdefault(qtype, []).append(rr)

    def _add_enforcement(self, scenario: Scenario, cert_dir: Path) -> None:
        """TXT, policy-host A and TLSA records, the zone key, and every RRset's signature."""
        modes: dict[str, DnssecMode] = {}
        for domain in scenario.domains:
            if domain.dns is not DnsMode.OK:
                continue
            modes[domain.name] = domain.dnssec
            for text in domain.tlsrpt:
                self._add(f"_smtp._tls.{domain.name}", QTYPE.TXT, _txt(text))
            if domain.mta_sts is not None:
                for text in domain.mta_sts.txt:
                    self._add(f"_mta-sts.{domain.name}", QTYPE.TXT, _txt(text))
                if domain.mta_sts.address:
                    self._add(domain.mta_sts.host, QTYPE.A, A(domain.mta_sts.address))
        for host in scenario.hosts:
            name = f"_25._tcp.{host.name}"
            for text in host.tlsa:
                self._add(name, QTYPE.TLSA, _tlsa(text, host, cert_dir))
            if host.tlsa:
                modes[name] = host.tlsa_dnssec
        signer = ZoneSigner(cert_dir)
        self._records.setdefault(TLD, {})[QTYPE.DNSKEY] = _from_dnspython(signer.dnskey_rrset())
        for name, by_type in self._records.items():
            mode = modes.get(name, DnssecMode.SIGNED)
            if mode is DnssecMode.UNSIGNED:
                continue
            for qtype, rrs in by_type.items():
                signature = signer.sign(_to_dnspython(rrs), bogus=mode is DnssecMode.BOGUS)
                self._signatures[(name, qtype)] = _from_dnspython(signature)

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
        if name in self._slow:
            # Each query has a server thread of its own: only this answer waits.
            time.sleep(SLOW_ANSWER_S)
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
        reply.header.ad = 0
        if _wants_dnssec(request):
            types = sorted({rr.rtype for rr in answers})
            signatures = [self._signatures.get((name, t)) for t in types]
            for sigs in signatures:
                for rr in sigs or []:
                    reply.add_answer(rr)
            reply.header.ad = int(bool(types) and all(signatures))
            reply.add_ar(EDNS0(flags="do", udp_len=_EDNS_PAYLOAD))
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


def _wants_dnssec(request: DNSRecord) -> bool:
    """The query carries an OPT record with the DO bit (RFC 3225)."""
    return any(rr.rtype == QTYPE.OPT and rr.ttl & _DO_BIT for rr in request.ar)


def _txt(text: str) -> TXT:
    # A TXT record is a list of strings of at most 255 bytes each (RFC 1035 §3.3.14).
    data = text.encode("utf-8")
    return TXT([data[i:i + 255] for i in range(0, len(data), 255)] or [b""])


_MISMATCH = b"starttls-survey testbed: this matches no certificate"


def _tlsa(text: str, host: Host, cert_dir: Path) -> TLSA:
    """A scenario's TLSA record (``usage selector mtype match|mismatch|hex``) as served."""
    usage_text, selector_text, mtype_text, data_text = text.split()
    usage, selector, mtype = int(usage_text), int(selector_text), int(mtype_text)
    if data_text == "match":
        chain = x509.load_pem_x509_certificates(host_files(cert_dir, host.name)
                                                .cert_path.read_bytes())
        # Usages 0 and 2 name the issuer: the CA the host sends, else the testbed CA.
        if usage in (0, 2):
            cert = chain[1] if len(chain) > 1 else x509.load_pem_x509_certificate(
                (cert_dir / CA_FILE).read_bytes())
        else:
            cert = chain[0]
        data = association_data(cert, selector, mtype)
    elif data_text == "mismatch":
        data = _mismatch(mtype)
    else:
        data = bytes.fromhex(data_text)
    return TLSA(usage, selector, mtype, data)


def _mismatch(matching_type: int) -> bytes:
    if matching_type == 1:
        return hashlib.sha256(_MISMATCH).digest()
    if matching_type == 2:
        return hashlib.sha512(_MISMATCH).digest()
    return _MISMATCH


def _to_dnspython(rrs: list[RR]) -> dns.rrset.RRset:
    """One RRset, from dnslib's records to dnspython's (through a message's wire form)."""
    message = DNSRecord()
    for rr in rrs:
        message.add_answer(rr)
    return dns.message.from_wire(bytes(message.pack())).answer[0]


def _from_dnspython(rrset: dns.rrset.RRset) -> list[RR]:
    message = dns.message.Message()
    message.answer.append(rrset)
    return list(DNSRecord.parse(message.to_wire()).rr)


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

    def __init__(self, scenario: Scenario, host: str, port: int,
                 cert_dir: Path | None = None) -> None:
        """Bind both sockets (``port`` 0: a free port, the same for UDP and TCP).

        ``cert_dir`` (see :mod:`research.testbed.ca`) enables the enforcement records and
        DNSSEC. Raises PortBusyError if an explicit port is taken, OSError if the address is
        unusable, ValueError if a certificate or the zone key cannot be read.
        """
        resolver = ScenarioResolver(scenario, cert_dir)
        logger = _QuietLogger()
        bound = bind_on_one_port(
            (_UDPServer, _TCPServer), functools.partial(self._bind, resolver, logger, host),
            port_of=lambda server: server.server.server_address[1],
            release=lambda server: server.server.server_close(), port=port or None,
            attempts=20, exhausted=f"found no port free for UDP and TCP on {host}")
        udp, tcp = bound[1]
        self.host = host
        self.port: int = bound[0]
        self._servers = (udp, tcp)
        self._threads: list[threading.Thread] = []

    @staticmethod
    def _bind(resolver: ScenarioResolver, logger: _QuietLogger, host: str,
              server: type[socketserver.BaseServer], port: int) -> DNSServer:
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
