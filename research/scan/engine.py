"""The probe engine: a STARTTLS host's TLS versions and accepted suites in few, polite sessions.

sslyze's cipher-suite scan opens a fresh SMTP session for every suite it knows, over 500 per
host; mail providers throttle or block a scanner long before that, and sslyze counts a probe
that timed out as a rejected suite. This engine asks the same questions with sslyze's own TLS
machinery — nassl's legacy (OpenSSL 1.0.2) client for SSL 2.0 to TLS 1.1 and the suites only it
speaks in TLS 1.2, the modern (OpenSSL 1.1.1) client for the other TLS 1.2 suites and for TLS
1.3, and sslyze's ``CipherSuitesRepository`` for which suites exist — so it covers exactly the
suites and versions sslyze covers. Each question is a *lane*: one version with one client and
the suites that client tests for it (TLS 1.2 has two lanes, as sslyze splits its suites between
the two clients).

``full`` (the default) enumerates each lane by iterative removal: offer every suite of the lane,
note the one the server chooses, remove it and offer the rest, until the server refuses. A lane
costs (accepted + 1) sessions whether the server honours its own preference or the client's
order. SSL 2.0 is the exception: its SERVER-HELLO lists every cipher the server shares with the
client, so one CLIENT-HELLO offering sslyze's seven SSL 2.0 ciphers answers the whole lane. That
hello is built here rather than by nassl, whose legacy SSL 2.0 client leaks about 35 KB of
native memory on every handshake (a survey's memory must not grow with its hosts); the server
sees the same CLIENT-HELLO, and the handshake is abandoned after the SERVER-HELLO.

``versions`` asks each version once, offering every suite the client knows for it (for TLS 1.2
the modern client's whole list; see ``data/README.md``), and records no suites. The
certificate comes from a session already made, at the newest version accepted.

What counts as an answer:

- a completed handshake: the chosen suite is accepted;
- a TLS alert, or the server closing or resetting the connection during the handshake: the
  offered suites are rejected (as sslyze counts them);
- a ``421`` (or any reply other than the expected one) before the handshake, a refused or reset
  TCP connection, or a timeout anywhere: *no answer*. The host is paused with exponential
  backoff (every lane of it waits) and the session retried; when the retries run out, the host
  is left alone — no lane opens another session to it — and what was not decided is reported
  in ``undecided``, never as rejected.

Every session identifies itself in EHLO, never sends MAIL, RCPT or DATA, and ends with QUIT
(over TLS after a handshake). ``per_host_connections`` lanes of one host run at once.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import DNSName
from nassl import _nassl
from nassl.ephemeral_key_info import DhEphemeralKeyInfo, EphemeralKeyInfo
from nassl.legacy_ssl_client import LegacySslClient
from nassl.ssl_client import (
    BaseSslClient,
    ClientCertificateRequested,
    OpenSslVerifyEnum,
    OpenSslVersionEnum,
    SslClient,
)
from sslyze.connection_helpers.tls_connection import _HANDSHAKE_REJECTED_TLS_ERRORS
from sslyze.plugins.certificate_info.trust_stores.trust_store import TrustStore
from sslyze.plugins.certificate_info.trust_stores.trust_store_repository import (
    TrustStoresRepository,
)
from sslyze.plugins.openssl_cipher_suites._tls12_workaround import (
    WorkaroundForTls12ForCipherSuites,
)
from sslyze.plugins.openssl_cipher_suites.cipher_suites import (
    CipherSuite,
    CipherSuitesRepository,
)
from sslyze.server_connectivity import TlsVersionEnum

from research.policy.certs import summarise
from research.policy.ciphers import iana_name_for_openssl, traits
from research.scan.smtp import MAX_LINE, MAX_LINES, SESSION_BUDGET
from research.scan.sslyze import AcceptedCipher, TlsScan, TlsTarget
from research.settings import DEFAULT_EHLO_NAME, DEFAULT_PER_HOST_CONNECTIONS, DEFAULT_TIMEOUT
from research.store.schema import TLS_VERSIONS, TlsVersion

DEFAULT_RETRIES = 3
"""Extra attempts of a session that got no answer (421, reset, timeout) before giving up."""
DEFAULT_BACKOFF = 5.0
"""Seconds a host is paused after its first unanswered session; doubles with each retry."""
QUIT_WAIT = 2.0
"""Longest wait, in seconds, for the server's 221 after QUIT: politeness, not a measurement."""


class Engine(StrEnum):
    """How TLS is enumerated (``run_survey(engine=...)``, ``--engine``)."""

    FULL = "full"
    """Versions and every accepted suite by iterative removal (about accepted + 1 sessions per
    version and client)."""
    VERSIONS = "versions"
    """Versions only: one session per version; the ``ciphers`` table stays empty."""
    SSLYZE = "sslyze"
    """sslyze's own scan: one session per suite it knows (over 500 per host); the cross-check."""


@dataclass(frozen=True)
class EngineSettings:
    """What a host's probes need; picklable, so a task can carry it to another process."""

    port: int = 25
    ehlo_name: str = DEFAULT_EHLO_NAME
    timeout: float = DEFAULT_TIMEOUT
    per_host_connections: int = DEFAULT_PER_HOST_CONNECTIONS
    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    engine: Engine = Engine.FULL
    trust_ca: str | None = None
    """Extra PEM roots for judging certificates (``--trust-ca``), as a path every worker reads."""


@dataclass(frozen=True)
class Lane:
    """One version with one of nassl's clients, and the suites that client offers for it."""

    version: TlsVersion
    legacy: bool
    """nassl's LegacySslClient (OpenSSL 1.0.2) rather than SslClient (OpenSSL 1.1.1)."""
    suites: tuple[CipherSuite, ...]

    @property
    def name(self) -> str:
        return f"{self.version.label} ({'legacy' if self.legacy else 'modern'} client)"


@dataclass
class EngineScan(TlsScan):
    """A :class:`TlsScan` from this engine, with what it could not decide and what it cost."""

    undecided: list[str] = field(default_factory=list)
    """Labels of versions not decided (``TLS 1.2``), or of versions found accepted whose suite
    list may be incomplete (``TLS 1.2 suites``); empty when everything was decided."""
    sessions: int = 0
    """SMTP sessions (TCP connections) this scan opened."""


def _sslyze_version(version: TlsVersion) -> TlsVersionEnum:
    return TlsVersionEnum(version.rank + 1)


@cache
def lanes(engine: Engine) -> tuple[Lane, ...]:
    """The lanes a scan with ``engine`` asks, longest first (they are shared out in this order).

    ``full`` mirrors sslyze: TLS 1.2 suites the legacy client supports go to it, the others to
    the modern client. ``versions`` has one lane per version; TLS 1.2's is the modern client
    with every TLS 1.2 suite it knows.
    """
    if engine is Engine.SSLYZE:
        raise ValueError("the sslyze engine has no lanes; it runs sslyze's own scan")
    by_label = {v.label: v for v in TLS_VERSIONS}
    found: list[Lane] = []
    for version in TLS_VERSIONS:
        suites = sorted(CipherSuitesRepository.get_all_cipher_suites(_sslyze_version(version)),
                        key=lambda s: s.name)
        if version.label == "TLS 1.2":
            legacy = tuple(s for s in suites
                           if WorkaroundForTls12ForCipherSuites.requires_legacy_openssl(
                               s.openssl_name))
            if engine is Engine.VERSIONS:
                # The repository names a suite the way one client does; the modern client may
                # know the same suite by another OpenSSL name (EDH-... vs DHE-...).
                modern = _modern_tls12_names()
                found.append(Lane(version, False, tuple(
                    replace(s, openssl_name=modern[s.name]) for s in suites if s.name in modern)))
            else:
                found.append(Lane(version, True, legacy))
                found.append(Lane(version, False, tuple(s for s in suites if s not in legacy)))
        else:
            found.append(Lane(version, version.label != "TLS 1.3", tuple(suites)))
    # Longest expected first: TLS 1.2, then 1.0/1.1, 1.3 and the rarely accepted SSL versions.
    order = ["TLS 1.2", "TLS 1.0", "TLS 1.1", "TLS 1.3", "SSL 3.0", "SSL 2.0"]
    found.sort(key=lambda lane: (order.index(lane.version.label), not lane.legacy))
    assert {lane.version.label for lane in found} == set(by_label)
    return tuple(found)


@cache
def _modern_tls12_names() -> dict[str, str]:
    """IANA name → OpenSSL name of every TLS 1.2 suite nassl's modern client can offer."""
    client = SslClient(ssl_version=OpenSslVersionEnum.TLSV1_2, ssl_verify=OpenSslVerifyEnum.NONE)
    client.set_cipher_list("ALL:COMPLEMENTOFALL:-PSK:-SRP")
    return {iana_name_for_openssl(name): name for name in client.get_cipher_list()}


# -- one session ----------------------------------------------------------------------------


@dataclass
class _Accepted:
    openssl_name: str
    ephemeral_key: EphemeralKeyInfo | None
    chain: list[str]


@dataclass
class _Rejected:
    reason: str


@dataclass
class _Ssl2Hello:
    """An SSL 2.0 SERVER-HELLO: the ciphers (OpenSSL names) the server shares with us."""

    openssl_names: list[str]
    chain: list[str]


@dataclass
class _Exhausted:
    """The client has no suite of the offered ones that it can send for this version."""


@dataclass
class _NoAnswer:
    """Throttled, reset, timed out: worth retrying after a pause."""

    reason: str


@dataclass
class _Failed:
    """An answer this engine cannot interpret; retrying would not help."""

    reason: str


_Outcome = _Accepted | _Ssl2Hello | _Rejected | _Exhausted | _NoAnswer | _Failed


class _Unexpected(Exception):
    """The server said something other than what the STARTTLS dialogue needs."""


class _Smtp:
    """Just enough SMTP to reach STARTTLS, with every bound the SMTP probe has."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout * SESSION_BUDGET
        self.buffer = b""

    def _line(self) -> bytes:
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE:
                raise _Unexpected(f"reply line longer than {MAX_LINE} bytes")
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("SMTP dialogue took too long")
            self.sock.settimeout(min(self.timeout, remaining))
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionResetError("connection closed")
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r")

    def reply(self) -> tuple[int, list[str]]:
        lines: list[str] = []
        while True:
            text = self._line().decode("utf-8", "replace")
            if len(text) < 3 or not text[:3].isdigit() or (len(text) > 3 and text[3] not in " -"):
                raise _Unexpected(f"not an SMTP reply: {text[:80]!r}")
            lines.append(text[4:])
            if len(text) == 3 or text[3] == " ":
                return int(text[:3]), lines
            if len(lines) >= MAX_LINES:
                raise _Unexpected(f"reply longer than {MAX_LINES} lines")

    def expect(self, command: str | None, code: int) -> list[str]:
        if command is not None:
            self.sock.sendall(command.encode("ascii") + b"\r\n")
        got, lines = self.reply()
        if got != code:
            said = f"{got} {lines[0] if lines else ''}".strip()
            raise _Unexpected(f"{command or 'greeting'}: {said}")
        return lines


def _starttls(sock: socket.socket, ehlo_name: str, timeout: float) -> None:
    smtp = _Smtp(sock, timeout)
    smtp.expect(None, 220)
    extensions = smtp.expect(f"EHLO {ehlo_name}", 250)[1:]
    if not any(line.split()[:1] == ["STARTTLS"] for line in (e.upper() for e in extensions)):
        # Advertised when the host was probed: a server that stops offering it is shedding load.
        raise _Unexpected("STARTTLS no longer advertised")
    smtp.expect("STARTTLS", 220)
    if smtp.buffer:
        raise _Unexpected("data after the STARTTLS reply")
    sock.settimeout(timeout)


def _client(lane: Lane, offered: Sequence[CipherSuite], sni: str) -> BaseSslClient:
    version = OpenSslVersionEnum(_sslyze_version(lane.version).value)
    client: BaseSslClient
    if lane.legacy:
        client = LegacySslClient(ssl_version=version, ssl_verify=OpenSslVerifyEnum.NONE,
                                 ignore_client_authentication_requests=True)
    else:
        client = SslClient(ssl_version=version, ssl_verify=OpenSslVerifyEnum.NONE,
                           ignore_client_authentication_requests=True)
    names = ":".join(s.openssl_name for s in offered)
    if isinstance(client, SslClient) and lane.version.label == "TLS 1.3":
        client.set_ciphersuites(names)
    else:
        client.set_cipher_list(names)
    if lane.version.label != "SSL 2.0":
        client.set_tlsext_host_name(sni)
    return client


def _connect(target: TlsTarget, settings: EngineSettings) -> socket.socket | _NoAnswer:
    """A connection that has just been told ``220`` to STARTTLS, or why there is none."""
    try:
        sock = socket.create_connection((target.ip, target.port), timeout=settings.timeout)
    except TimeoutError:
        return _NoAnswer(f"no TCP connection in {settings.timeout:g} s")
    except OSError as exc:
        return _NoAnswer(f"connect: {exc.strerror or exc}")
    try:
        _starttls(sock, settings.ehlo_name, settings.timeout)
    except _Unexpected as exc:
        _close_politely(sock)
        return _NoAnswer(str(exc))
    except TimeoutError:
        sock.close()
        return _NoAnswer(f"no SMTP answer in {settings.timeout:g} s")
    except OSError as exc:
        sock.close()
        return _NoAnswer(f"SMTP: {exc.strerror or exc}")
    return sock


def _session(target: TlsTarget, settings: EngineSettings, lane: Lane,
             offered: Sequence[CipherSuite], want_chain: bool) -> _Outcome:
    """One SMTP session: STARTTLS, one handshake offering ``offered`` in ``lane``, QUIT."""
    sock = _connect(target, settings)
    if isinstance(sock, _NoAnswer):
        return sock
    if lane.version.label == "SSL 2.0":
        try:
            return _ssl2_hello(sock, offered)
        finally:
            sock.close()
    try:
        client = _client(lane, offered, target.mx_host)
    except _nassl.OpenSSLError as exc:
        _close_politely(sock)
        return _Failed(f"client setup: {_first_line(exc)}")
    client.set_underlying_socket(sock)
    try:
        # Only a TLS 1.3 suite's key exchange needs the ephemeral key (its name does not say);
        # nassl leaks a little memory on every get_ephemeral_key() call, so ask only there.
        return _handshake(client, want_chain, want_key=lane.version.label == "TLS 1.3")
    finally:
        client.shutdown()


def _handshake(client: BaseSslClient, want_chain: bool, want_key: bool) -> _Outcome:
    try:
        client.do_handshake()
    except ClientCertificateRequested:
        # The server chose a suite and asked for a certificate: the suite is accepted (sslyze).
        return _Accepted(client.get_current_cipher_name(), None, [])
    except TimeoutError:
        return _NoAnswer("no answer during the TLS handshake")
    except _nassl.OpenSSLError as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        if "dh key too small" in message:
            # nassl refuses the server's weak DH group after the server chose the suite (sslyze).
            return _Accepted(client.get_current_cipher_name(), None, [])
        if "no ciphers available" in message:
            return _Exhausted()
        for pattern, meaning in _HANDSHAKE_REJECTED_TLS_ERRORS.items():
            if pattern in message:
                return _Rejected(meaning)
        return _Failed(f"TLS handshake: {_first_line(exc)}")
    except ConnectionError:
        return _Rejected("connection reset during the TLS handshake")
    except OSError as exc:
        if "Nassl SSL handshake failed" in str(exc):
            return _Rejected("server closed the connection during the TLS handshake")
        return _NoAnswer(f"TLS handshake: {exc.strerror or exc}")
    accepted = _Accepted(client.get_current_cipher_name(),
                         client.get_ephemeral_key() if want_key else None,
                         client.get_received_chain() if want_chain else [])
    _quit_over_tls(client)
    return accepted


# SSL 2.0 (draft-hickman-netscape-ssl-00): cipher kinds are three bytes each.
_SSL2_CIPHER_KINDS = {
    "RC4-MD5": b"\x01\x00\x80", "EXP-RC4-MD5": b"\x02\x00\x80",
    "RC2-CBC-MD5": b"\x03\x00\x80", "EXP-RC2-CBC-MD5": b"\x04\x00\x80",
    "IDEA-CBC-MD5": b"\x05\x00\x80", "DES-CBC-MD5": b"\x06\x00\x40",
    "DES-CBC3-MD5": b"\x07\x00\xc0", "RC4-64-MD5": b"\x08\x00\x80",
}
_SSL2_MSG_SERVER_HELLO = 4


def ssl2_client_hello(openssl_names: Sequence[str], challenge: bytes) -> bytes:
    """An SSL 2.0 CLIENT-HELLO record offering ``openssl_names`` (no session id).

    Raises KeyError for a name that is no SSL 2.0 cipher.
    """
    specs = b"".join(_SSL2_CIPHER_KINDS[name] for name in openssl_names)
    body = (bytes([1]) + b"\x00\x02" + len(specs).to_bytes(2, "big") + b"\x00\x00"
            + len(challenge).to_bytes(2, "big") + specs + challenge)
    return (0x8000 | len(body)).to_bytes(2, "big") + body


def parse_ssl2_server_hello(record: bytes) -> tuple[list[str], bytes] | None:
    """The OpenSSL names of the ciphers and the certificate (DER) in an SSL 2.0 SERVER-HELLO
    record (header included), or None if ``record`` is anything else or incomplete."""
    if len(record) < 2 or not record[0] & 0x80:
        return None
    length = ((record[0] & 0x7F) << 8) | record[1]
    body = record[2:2 + length]
    if len(body) < length or length < 11 or body[0] != _SSL2_MSG_SERVER_HELLO:
        return None
    cert_len = int.from_bytes(body[5:7], "big")
    specs_len = int.from_bytes(body[7:9], "big")
    if body[3:5] != b"\x00\x02" or specs_len % 3 or 11 + cert_len + specs_len > length:
        return None
    certificate = body[11:11 + cert_len]
    specs = body[11 + cert_len:11 + cert_len + specs_len]
    by_kind = {kind: name for name, kind in _SSL2_CIPHER_KINDS.items()}
    kinds = [specs[i:i + 3] for i in range(0, len(specs), 3)]
    return [by_kind[k] for k in kinds if k in by_kind], certificate


def _ssl2_record_complete(record: bytes) -> bool:
    """Whether ``record`` holds a whole SSL 2.0 record, or enough to tell it is none."""
    if record and not record[0] & 0x80:
        return True  # a TLS alert, or garbage: certainly no SERVER-HELLO
    return len(record) >= 2 and len(record) >= 2 + (((record[0] & 0x7F) << 8) | record[1])


def _ssl2_hello(sock: socket.socket, offered: Sequence[CipherSuite]) -> _Outcome:
    hello = ssl2_client_hello([s.openssl_name for s in offered], os.urandom(16))
    record = b""
    try:
        sock.sendall(hello)
        while not _ssl2_record_complete(record):
            data = sock.recv(4096)
            if not data:
                break
            record += data
    except TimeoutError:
        return _NoAnswer("no answer to the SSL 2.0 CLIENT-HELLO")
    except OSError:
        return _Rejected("connection reset during the SSL 2.0 handshake")
    parsed = parse_ssl2_server_hello(record)
    if parsed is None:
        return _Rejected("no SSL 2.0 SERVER-HELLO")
    names, certificate = parsed
    if not names:
        return _Rejected("SSL 2.0 SERVER-HELLO without a common cipher")
    chain = []
    with contextlib.suppress(ValueError):
        chain = [x509.load_der_x509_certificate(certificate).public_bytes(
            serialization.Encoding.PEM).decode("ascii")]
    return _Ssl2Hello(names, chain)


def _quit_over_tls(client: BaseSslClient) -> None:
    # Politeness only: whatever the server answers, or fails to, changes no result.
    with contextlib.suppress(OSError, _nassl.OpenSSLError, ClientCertificateRequested):
        sock = client.get_underlying_socket()
        if sock is not None:
            sock.settimeout(QUIT_WAIT)
        client.write(b"QUIT\r\n")
        received = b""
        while b"\n" not in received and len(received) < MAX_LINE:
            received += client.read(MAX_LINE)


def _close_politely(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.settimeout(QUIT_WAIT)
        sock.sendall(b"QUIT\r\n")
        sock.recv(MAX_LINE)
    sock.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


# -- one host -------------------------------------------------------------------------------


class _HostGate:
    """Pauses every lane of one host after a session that got no answer, and closes for good
    once one lane has run out of retries: the host has stopped talking to us, and the other
    lanes would only spend their own retries on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0
        self.sessions = 0
        self.gave_up: str | None = None
        """Why the host was given up on; None while it still answers."""

    def wait(self) -> bool:
        """Wait out any pause and count a session; False (no session) once given up."""
        while True:
            with self._lock:
                if self.gave_up is not None:
                    return False
                delay = self._until - time.monotonic()
                if delay <= 0:
                    self.sessions += 1
                    return True
            time.sleep(delay)

    def give_up(self, reason: str) -> None:
        with self._lock:
            self.gave_up = self.gave_up or reason

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)


@dataclass
class _LaneResult:
    lane: Lane
    accepted: list[_Accepted] = field(default_factory=list)
    decided: bool = False
    """Every suite of the lane was answered (accepted or rejected)."""
    chain: list[str] = field(default_factory=list)
    error: str | None = None


def _run_lane(target: TlsTarget, settings: EngineSettings, lane: Lane,
              gate: _HostGate) -> _LaneResult:
    result = _LaneResult(lane)
    remaining = list(lane.suites)
    by_name = {s.openssl_name: s for s in lane.suites}
    while remaining:
        outcome = _attempt(target, settings, lane, remaining, not result.chain, gate)
        if isinstance(outcome, _Ssl2Hello):
            offered = {s.openssl_name for s in remaining}
            result.accepted = [_Accepted(name, None, []) for name in outcome.openssl_names
                               if name in offered]
            result.chain = outcome.chain
            break
        if isinstance(outcome, _Accepted):
            suite = by_name.get(outcome.openssl_name)
            if suite is None or suite not in remaining:
                result.error = f"server chose {outcome.openssl_name}, which was not offered"
                return result
            remaining.remove(suite)
            result.accepted.append(outcome)
            result.chain = result.chain or outcome.chain
            if settings.engine is Engine.VERSIONS:
                break
        elif isinstance(outcome, _Rejected | _Exhausted):
            break
        else:
            result.error = outcome.reason
            return result
    result.decided = True
    return result


def _attempt(target: TlsTarget, settings: EngineSettings, lane: Lane,
             offered: Sequence[CipherSuite], want_chain: bool, gate: _HostGate) -> _Outcome:
    last: _Outcome = _NoAnswer("not tried")
    for attempt in range(settings.retries + 1):
        if not gate.wait():
            return _Failed(f"not asked: {gate.gave_up}")
        last = _session(target, settings, lane, offered, want_chain)
        if not isinstance(last, _NoAnswer):
            return last
        if attempt < settings.retries:
            gate.pause(settings.backoff * 2**attempt)
    assert isinstance(last, _NoAnswer)
    tries = settings.retries + 1
    reason = f"{last.reason} ({tries} attempt{'s' if tries > 1 else ''})"
    gate.give_up(f"host stopped answering: {reason}")
    return _Failed(reason)


def scan_host(target: TlsTarget, settings: EngineSettings) -> EngineScan:
    """Versions (and, in ``full`` mode, accepted suites) and the certificate of one target.

    Never raises for what the server does: failures are in ``errors`` and ``undecided``.
    Raises ValueError for the ``sslyze`` engine, which this function does not run.
    """
    work = lanes(settings.engine)
    gate = _HostGate()

    def run(lane: Lane) -> _LaneResult:
        return _run_lane(target, settings, lane, gate)

    if settings.per_host_connections <= 1:
        results = [run(lane) for lane in work]
    else:
        with ThreadPoolExecutor(max_workers=min(settings.per_host_connections, len(work)),
                                thread_name_prefix="lane") as pool:
            results = list(pool.map(run, work))
    scan = _combine(target, settings.engine, results)
    scan.sessions = gate.sessions
    return scan


def _combine(target: TlsTarget, engine: Engine, results: list[_LaneResult]) -> EngineScan:
    scan = EngineScan(target=target)
    chain: list[str] = []
    for version in TLS_VERSIONS:
        mine = [r for r in results if r.lane.version == version]
        accepted = any(r.accepted for r in mine)
        complete = all(r.decided for r in mine)
        scan.versions[version.column] = True if accepted else (False if complete else None)
        if not complete:
            scan.undecided.append(f"{version.label} suites" if accepted else version.label)
        scan.errors.extend(f"{r.lane.name}: {r.error}" for r in mine if r.error)
        # Prefer the newest version's chain, as sslyze's certificate scan does.
        chain = next((r.chain for r in mine if r.chain), chain)
        if engine is Engine.FULL:
            found = [(_suite(r.lane, a), a) for r in mine for a in r.accepted]
            # sslyze's order: by IANA name, descending.
            for suite, hit in sorted(found, key=lambda pair: pair[0].name, reverse=True):
                scan.ciphers.append(_accepted_cipher(version, suite, hit.ephemeral_key))
    # As for sslyze, a host where no handshake ever succeeded has no version columns (status
    # tls_failed), unless some version is undecided: then its rejections are findings too.
    scan.connected = any(scan.versions.values()) or bool(scan.undecided)
    if chain:
        _add_certificate(scan, chain)
    return scan


def _suite(lane: Lane, accepted: _Accepted) -> CipherSuite:
    return next(s for s in lane.suites if s.openssl_name == accepted.openssl_name)


def _accepted_cipher(version: TlsVersion, suite: CipherSuite,
                     key: EphemeralKeyInfo | None) -> AcceptedCipher:
    family = None if key is None else ("DHE" if isinstance(key, DhEphemeralKeyInfo) else "ECDHE")
    found = traits(suite.name, tls13_group=family)
    return AcceptedCipher(
        tls_version=version.label, cipher=suite.name, key_exchange=found.key_exchange,
        forward_secrecy=found.forward_secrecy, aead=found.aead,
        anonymous=found.anonymous or suite.is_anonymous, key_bits=suite.key_size,
    )


_store_lock = threading.Lock()


def _mozilla_store() -> TrustStore:
    with _store_lock:  # sslyze's repository is not thread-safe to create
        return TrustStoresRepository.get_default().get_main_store()


def _add_certificate(scan: EngineScan, chain: list[str]) -> None:
    host = scan.target.mx_host
    try:
        leaf = x509.load_pem_x509_certificate(chain[0].encode("ascii"))
    except ValueError as exc:
        scan.errors.append(f"certificate: does not parse ({exc})")
        return
    scan.certificate = summarise(leaf, host)
    with contextlib.suppress(ValueError):
        scan.chain = [x509.load_pem_x509_certificate(pem.encode("ascii")).public_bytes(
            serialization.Encoding.DER) for pem in chain]
    with warnings.catch_warnings():
        # The bundled Mozilla store holds a root with a negative serial number; cryptography
        # warns about it on load, which says nothing about the host.
        warnings.filterwarnings("ignore", message="Parsed a serial number which wasn't positive")
        store = _mozilla_store()
        try:
            validation = store.verify_certificate_chain(chain, DNSName(host))
        except ValueError as exc:
            scan.errors.append(f"certificate: cannot be validated ({exc})")
            return
    scan.trusted_mozilla = validation.was_validation_successful

