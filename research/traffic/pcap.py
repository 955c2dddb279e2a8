"""SMTP sessions in a packet capture (pcap or pcapng, plain or gzip): STARTTLS and the TLS hellos.

Packets are read with dpkt (pcap/pcapng, link layers, IP, TCP, TLS handshake messages). Per
TCP connection, each direction's bytes are put back in order by sequence number (only the
first :data:`STREAM_LIMIT` bytes, enough for the SMTP dialogue and the hellos), then read as
SMTP until ``STARTTLS`` and as TLS records after it. A row per SMTP connection says whether
the server's EHLO reply advertised STARTTLS, whether the client used it, what the ClientHello
offered (versions from its supported_versions extension, else its legacy version; suites) and
what the ServerHello chose (TLS 1.3 from supported_versions). Connections that are not SMTP
(no ``220`` greeting and no ``EHLO``/``HELO``) are left out.

Memory: a connection's state is dropped once it has closed (both FINs or a RST) and a row emitted,
at most :data:`STREAM_LIMIT` bytes per direction are kept, and beyond
:data:`~research.traffic.logs.base.MAX_OPEN` open connections the oldest is reported and dropped, so
a long capture is read in bounded memory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import dpkt
from dpkt import ssl_ciphersuites

from research.store.schema import VERSION_BY_LABEL, Direction, InputKind, SessionSource
from research.traffic.names import cipher_bits
from research.traffic.sessions import MAX_OPEN, InputStats, Peer, Row, session_row

SOURCE = SessionSource.PCAP
STREAM_LIMIT = 64 * 1024
"""Bytes kept per direction of a connection."""
_SUPPORTED_VERSIONS = 43
_VERSIONS = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2",
             0x0304: "TLS 1.3"}
_GREASE = frozenset(0x0A0A + 0x1010 * i for i in range(16))

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


def capture_kind(head: bytes) -> InputKind | None:
    """``pcap`` or ``pcapng`` from a file's first bytes, None for anything else."""
    if head[:4] in PCAP_MAGICS:
        return InputKind.PCAP
    if head[:4] == PCAPNG_MAGIC:
        return InputKind.PCAPNG
    return None


@dataclass
class _Stream:
    start: int | None = None
    segments: dict[int, bytes] = field(default_factory=dict)
    size: int = 0
    fin: bool = False

    def add(self, seq: int, data: bytes) -> None:
        if self.start is None:
            self.start = seq
        offset = (seq - self.start) & 0xFFFFFFFF
        if offset >= STREAM_LIMIT or not data or offset in self.segments:
            return
        self.segments[offset] = data[: STREAM_LIMIT - offset]
        self.size += len(data)

    def bytes(self) -> bytes:
        out = bytearray()
        for offset in sorted(self.segments):
            data = self.segments[offset]
            if offset > len(out):
                break  # a gap: a segment the capture missed
            out += data[len(out) - offset:]
        return bytes(out)


@dataclass
class _Flow:
    client: tuple[str, int]
    server: tuple[str, int]
    time: float
    packet: int
    up: _Stream = field(default_factory=_Stream)
    down: _Stream = field(default_factory=_Stream)
    reset: bool = False

    @property
    def closed(self) -> bool:
        return self.reset or (self.up.fin and self.down.fin)


@dataclass
class Hello:
    """What the SMTP dialogue and the TLS hellos of one connection showed."""

    smtp: bool = False
    starttls_offered: bool | None = None
    starttls_used: bool = False
    offered_versions: list[str] = field(default_factory=list)
    offered_ciphers: list[str] = field(default_factory=list)
    version: str | None = None
    cipher: str | None = None


def read_capture(stream: IO[bytes], stats: InputStats, *,
                 local_ips: Iterable[str] = ()) -> Iterator[Row]:
    """Session rows of the SMTP connections in a capture read from ``stream``.

    ``local_ips``: this mail server's addresses; a connection whose server is one of them is
    inbound, one whose client is, outbound; otherwise the direction is null and the peer is
    the server. Damaged or truncated captures end the reading (counted as one unparseable
    record in ``stats``), never raise.
    """
    local = {_normal_ip(ip) for ip in local_ips}
    # Insertion-ordered: the oldest open connection is the first to give way when too many
    # are open (a capture that missed their FIN/RST), and it is reported, not dropped.
    flows: dict[tuple[Any, ...], _Flow] = {}
    tracked = _ShortReads(stream)
    try:
        reader = _reader(tracked, stats)
        decode = _link_decoder(reader.datalink())
        for number, (ts, buf) in enumerate(reader, 1):
            stats.lines = number
            packet = _tcp(decode, buf)
            if packet is None:
                continue
            src, dst, tcp = packet
            key = (min(src, dst), max(src, dst))
            flow = flows.get(key)
            syn = bool(tcp.flags & dpkt.tcp.TH_SYN)
            ack = bool(tcp.flags & dpkt.tcp.TH_ACK)
            if flow is None or (syn and not ack and flow.closed):
                if flow is not None:
                    yield from _finish(flow, stats, local)
                client, server = _ends(src, dst, syn=syn, ack=ack)
                flow = flows[key] = _Flow(client, server, ts, number)
                if len(flows) > MAX_OPEN:
                    oldest = next(iter(flows))
                    yield from _finish(flows.pop(oldest), stats, local)
            up = src == flow.client
            half = flow.up if up else flow.down
            if syn:
                half.start = (tcp.seq + 1) & 0xFFFFFFFF
            elif tcp.data:
                half.add(tcp.seq, bytes(tcp.data))
            if tcp.flags & dpkt.tcp.TH_FIN:
                half.fin = True
            if tcp.flags & dpkt.tcp.TH_RST:
                flow.reset = True
            if flow.closed:
                del flows[key]
                yield from _finish(flow, stats, local)
    except (dpkt.dpkt.NeedData, dpkt.dpkt.UnpackError, ValueError, EOFError, OSError,
            struct.error):
        # dpkt raises these for a cut-off or damaged file: keep what was read, count the rest.
        stats.unparseable += 1
    else:
        if tracked.short:
            # dpkt's pcap reader hands out a cut-off last packet without complaint.
            stats.unparseable += 1
    for flow in list(flows.values()):
        yield from _finish(flow, stats, local)


class _ShortReads:
    """A binary stream that remembers whether a read came back short but not empty (a file
    cut off inside a record)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.name = getattr(stream, "name", "capture")
        self.short = False

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if size > 0 and 0 < len(data) < size:
            self.short = True
        return data


SMTP_PORTS = frozenset({25, 465, 587, 2525})


def _ends(src: tuple[str, int], dst: tuple[str, int], *, syn: bool,
          ack: bool) -> tuple[tuple[str, int], tuple[str, int]]:
    """(client, server) of a connection from its first packet seen."""
    if syn:
        return (dst, src) if ack else (src, dst)
    # The capture began mid-connection: the side on a mail port (else the lower port) serves.
    if src[1] in SMTP_PORTS and dst[1] not in SMTP_PORTS:
        return dst, src
    if dst[1] in SMTP_PORTS and src[1] not in SMTP_PORTS:
        return src, dst
    return (dst, src) if src[1] < dst[1] else (src, dst)


def _reader(stream: Any, stats: InputStats) -> Any:
    if stats.kind == InputKind.PCAPNG:
        return dpkt.pcapng.Reader(stream)
    return dpkt.pcap.Reader(stream)


def _link_decoder(datalink: int) -> Any:
    if datalink == dpkt.pcap.DLT_EN10MB:
        return lambda buf: dpkt.ethernet.Ethernet(buf).data
    if datalink in (dpkt.pcap.DLT_NULL, dpkt.pcap.DLT_LOOP):
        return lambda buf: dpkt.loopback.Loopback(buf).data
    if datalink == dpkt.pcap.DLT_LINUX_SLL:
        return lambda buf: dpkt.sll.SLL(buf).data
    if datalink == 276:  # DLT_LINUX_SLL2 (tcpdump -i any)
        return lambda buf: dpkt.sll2.SLL2(buf).data
    # Raw IP (DLT_RAW and its aliases) and anything else: try the bytes as IP.
    return lambda buf: dpkt.ip6.IP6(buf) if buf[:1] and buf[0] >> 4 == 6 else dpkt.ip.IP(buf)


def _tcp(decode: Any, buf: bytes) -> tuple[tuple[str, int], tuple[str, int], Any] | None:
    try:
        ip = decode(buf)
    except (dpkt.dpkt.UnpackError, dpkt.dpkt.NeedData, struct.error, ValueError, IndexError):
        return None
    if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6) or not isinstance(ip.data, dpkt.tcp.TCP):
        return None
    tcp = ip.data
    src_ip = str(ipaddress.ip_address(bytes(ip.src)))
    dst_ip = str(ipaddress.ip_address(bytes(ip.dst)))
    return (src_ip, tcp.sport), (dst_ip, tcp.dport), tcp


def _normal_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return text.strip()


def _finish(flow: _Flow, stats: InputStats, local: set[str]) -> Iterator[Row]:
    hello = read_hellos(flow.up.bytes(), flow.down.bytes())
    if not hello.smtp:
        return
    if flow.server[0] in local:
        direction: Direction | None = Direction.INBOUND
        peer = Peer(None, flow.client[0], flow.client[1])
    elif flow.client[0] in local:
        direction, peer = Direction.OUTBOUND, Peer(None, flow.server[0], flow.server[1])
    else:
        direction, peer = None, Peer(None, flow.server[0], flow.server[1])
    row = session_row(source=SOURCE, file=stats.path, line=flow.packet,
                      time=dt.datetime.fromtimestamp(flow.time, dt.UTC), direction=direction,
                      peer=peer, tls=None)
    row.update({
        "tls": hello.version is not None,
        "starttls_offered": hello.starttls_offered,
        "starttls_used": hello.starttls_used,
        "tls_version": hello.version,
        "cipher": hello.cipher,
        "bits": cipher_bits(hello.cipher),
        "offered_versions": hello.offered_versions,
        "offered_ciphers": hello.offered_ciphers,
    })
    stats.sessions += 1
    stats.sources[SOURCE] += 1
    yield row


def read_hellos(client: bytes, server: bytes) -> Hello:
    """Read one connection's client-to-server and server-to-client bytes (see module doc)."""
    hello = Hello()
    server_tls = _smtp_replies(server, hello)
    client_tls = _smtp_commands(client, hello)
    if client_tls is not None:
        hello.starttls_used = True
        message = _handshake(client[client_tls:], 1)
        if message is not None:
            _client_hello(message, hello)
    if server_tls is not None and hello.starttls_used:
        message = _handshake(server[server_tls:], 2)
        if message is not None:
            _server_hello(message, hello)
    return hello


def _lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(offset, line) for CRLF-terminated lines until the first TLS record (0x16 0x03)."""
    pos = 0
    while pos < len(data):
        if data[pos:pos + 2] == b"\x16\x03":
            return
        end = data.find(b"\n", pos)
        if end < 0:
            return
        yield pos, data[pos:end].rstrip(b"\r")
        pos = end + 1


def _smtp_replies(data: bytes, hello: Hello) -> int | None:
    """Scan the server's replies; return where its TLS records start, if they do."""
    end = 0
    for offset, line in _lines(data):
        end = offset + len(line)
        if line[:4] in (b"220 ", b"220-") and offset == 0:
            hello.smtp = True
        if line[:4] in (b"250-", b"250 "):
            keyword = line[4:].split(b" ", 1)[0].upper()
            if keyword == b"STARTTLS":
                hello.starttls_offered = True
            elif hello.starttls_offered is None and line[:4] == b"250 " and offset > 0:
                hello.starttls_offered = False
    pos = data.find(b"\n", end) + 1 if end else 0
    return pos if data[pos:pos + 2] == b"\x16\x03" else None


def _smtp_commands(data: bytes, hello: Hello) -> int | None:
    """Scan the client's commands; return where its TLS records start after STARTTLS."""
    for offset, line in _lines(data):
        verb = line.split(b" ", 1)[0].upper()
        if verb in (b"EHLO", b"HELO"):
            hello.smtp = True
        if verb == b"STARTTLS":
            start = offset + len(line) + 2 if data[offset + len(line):][:2] == b"\r\n" else (
                offset + len(line) + 1)
            return start if data[start:start + 2] == b"\x16\x03" else None
    return None


def _handshake(data: bytes, wanted: int) -> bytes | None:
    """The first handshake message of type ``wanted`` in a stream of TLS records."""
    fragments = bytearray()
    pos = 0
    while pos + 5 <= len(data):
        kind, _version, length = struct.unpack("!BHH", data[pos:pos + 5])
        if kind != 22:
            break
        fragments += data[pos + 5:pos + 5 + length]
        pos += 5 + length
        if len(fragments) >= 4:
            size = int.from_bytes(fragments[1:4], "big")
            if len(fragments) >= 4 + size:
                break
    if len(fragments) < 4 or fragments[0] != wanted:
        return None
    size = int.from_bytes(fragments[1:4], "big")
    body = bytes(fragments[4:4 + size])
    return body if len(body) == size else None


def _extension(extensions: Iterable[tuple[int, bytes]], kind: int) -> bytes | None:
    for ext_type, data in extensions:
        if ext_type == kind:
            return bytes(data)
    return None


def _client_hello(body: bytes, hello: Hello) -> None:
    try:
        parsed = dpkt.ssl.TLSClientHello(body)
    except (dpkt.dpkt.UnpackError, dpkt.dpkt.NeedData, struct.error, ValueError):
        return
    hello.offered_ciphers = [_suite_name(s.code) for s in parsed.ciphersuites
                             if s.code not in _GREASE]
    versions = _extension(getattr(parsed, "extensions", []), _SUPPORTED_VERSIONS)
    if versions:
        count = min(versions[0], len(versions) - 1) // 2
        codes: tuple[int, ...] = struct.unpack(f"!{count}H", versions[1:1 + 2 * count])
    else:
        codes = (parsed.version,)  # no extension: the legacy version is the newest offered
    labels = {_VERSIONS[c] for c in codes if c in _VERSIONS}
    hello.offered_versions = sorted(labels, key=lambda v: VERSION_BY_LABEL[v].rank)


def _server_hello(body: bytes, hello: Hello) -> None:
    try:
        parsed = dpkt.ssl.TLSServerHello(body)
    except (dpkt.dpkt.UnpackError, dpkt.dpkt.NeedData, struct.error, ValueError):
        return
    chosen = _extension(getattr(parsed, "extensions", []), _SUPPORTED_VERSIONS)
    code = struct.unpack("!H", chosen[:2])[0] if chosen and len(chosen) >= 2 else parsed.version
    hello.version = _VERSIONS.get(code)
    hello.cipher = _suite_name(parsed.ciphersuite.code)


def _suite_name(code: int) -> str:
    suite = ssl_ciphersuites.BY_CODE.get(code)
    return suite.name if suite is not None else f"0x{code:04X}"
