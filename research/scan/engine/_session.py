"""One engine session: SMTP up to STARTTLS, one handshake offering some suites of a lane, QUIT.

What counts as an answer:

- a completed handshake: the chosen suite is accepted;
- a TLS alert, or the server closing or resetting the connection during the handshake: the
  offered suites are rejected (as sslyze counts them);
- a ``421`` (or any reply other than the expected one) before the handshake, a refused or reset
  TCP connection, or a timeout anywhere: *no answer*, worth retrying; its
  :class:`~research.scan.limits.Signal` says which kind, for the address's gate to learn from.

Every session identifies itself in EHLO, never sends MAIL, RCPT or DATA, and ends with QUIT
(over TLS after a handshake).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from nassl import _nassl
from nassl.ephemeral_key_info import EphemeralKeyInfo
from nassl.legacy_ssl_client import LegacySslClient
from nassl.ssl_client import (
    BaseSslClient,
    ClientCertificateRequested,
    OpenSslVerifyEnum,
    OpenSslVersionEnum,
    SslClient,
)
from sslyze.connection_helpers.tls_connection import _HANDSHAKE_REJECTED_TLS_ERRORS
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuite

from research.scan.engine._ssl2 import parse_ssl2_server_hello, record_complete, ssl2_client_hello
from research.scan.engine.lanes import Lane, sslyze_version
from research.scan.engine.result import TlsTarget
from research.scan.limits import Signal
from research.scan.smtp import (
    MAX_LINE,
    SmtpClosed,
    SmtpDeadline,
    SmtpHostile,
    SmtpNoGreeting,
    SmtpSession,
    SmtpUnexpected,
)
from research.settings import ProbeSettings

QUIT_WAIT = 2.0
"""Longest wait, in seconds, for the server's 221 after QUIT: politeness, not a measurement."""


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
    """Throttled, refused, reset, timed out: worth retrying once the address allows."""

    reason: str
    signal: Signal = Signal.SILENT


@dataclass
class _Failed:
    """An answer this engine cannot interpret; retrying would not help."""

    reason: str


_Outcome = _Accepted | _Ssl2Hello | _Rejected | _Exhausted | _NoAnswer | _Failed


def _starttls(sock: socket.socket, settings: ProbeSettings,
              on_greeting: Callable[[float | None], None]) -> None:
    ehlo_name, timeout = settings.ehlo_name, settings.timeout
    smtp = SmtpSession(sock, timeout)
    try:
        smtp.expect_greeting(settings.greeting_timeout)
    finally:
        on_greeting(smtp.greeting_s)
    extensions = smtp.expect(f"EHLO {ehlo_name}", 250).lines[1:]
    if not any(line.split()[:1] == ["STARTTLS"] for line in (e.upper() for e in extensions)):
        # Advertised when the host was probed: a server that stops offering it is shedding load.
        raise SmtpUnexpected("STARTTLS no longer advertised")
    smtp.expect("STARTTLS", 220)
    if smtp.buffer:
        raise SmtpUnexpected("data after the STARTTLS reply")
    sock.settimeout(timeout)


def _client(lane: Lane, offered: Sequence[CipherSuite], sni: str) -> BaseSslClient:
    version = OpenSslVersionEnum(sslyze_version(lane.version).value)
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


def _connect(target: TlsTarget, settings: ProbeSettings,
             on_greeting: Callable[[float | None], None]) -> socket.socket | _NoAnswer:
    """A connection that has just been told ``220`` to STARTTLS, or why there is none."""
    try:
        sock = socket.create_connection((target.ip, target.port), timeout=settings.timeout)
    except TimeoutError:
        return _NoAnswer(f"no TCP connection in {settings.timeout:g} s")
    except OSError as exc:
        return _NoAnswer(f"connect: {exc.strerror or exc}", Signal.DROPPED)
    try:
        _starttls(sock, settings, on_greeting)
    except SmtpUnexpected as exc:
        _close_politely(sock)
        # 421/450/451 say "not now"; any other reply where 220/250 came before is a server
        # shedding load too (it answered the probe), so neither is an answer about TLS.
        return _NoAnswer(str(exc), Signal.THROTTLED)
    except SmtpHostile as exc:
        _close_politely(sock)
        return _NoAnswer(str(exc), Signal.DROPPED)
    except SmtpNoGreeting as exc:
        sock.close()
        return _NoAnswer(str(exc))
    except (TimeoutError, SmtpDeadline):
        sock.close()
        return _NoAnswer(f"no SMTP answer in {settings.timeout:g} s")
    except SmtpClosed as exc:
        sock.close()
        return _NoAnswer(f"SMTP: {exc}", Signal.DROPPED)
    except OSError as exc:
        sock.close()
        return _NoAnswer(f"SMTP: {exc.strerror or exc}", Signal.DROPPED)
    return sock


def _ignore(seconds: float | None) -> None:
    pass


def run_session(target: TlsTarget, settings: ProbeSettings, lane: Lane,
                offered: Sequence[CipherSuite], want_chain: bool, want_key: bool,
                on_greeting: Callable[[float | None], None] = _ignore) -> _Outcome:
    """One SMTP session: STARTTLS, one handshake offering ``offered`` in ``lane``, QUIT.

    ``want_key``: ask for the ephemeral key, only where it is needed, since nassl leaks the
    Python objects of every answer (about 150 bytes; 0.8 MB by the end of a 10,000-domain
    survey that asked on every TLS 1.3 session). ``on_greeting`` is told how many seconds the
    greeting took (None if none came).
    """
    sock = _connect(target, settings, on_greeting)
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
        return _handshake(client, want_chain, want_key)
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
        return _NoAnswer(f"TLS handshake: {exc.strerror or exc}", Signal.DROPPED)
    accepted = _Accepted(client.get_current_cipher_name(),
                         client.get_ephemeral_key() if want_key else None,
                         client.get_received_chain() if want_chain else [])
    _quit_over_tls(client)
    return accepted


def _ssl2_hello(sock: socket.socket, offered: Sequence[CipherSuite]) -> _Outcome:
    hello = ssl2_client_hello([s.openssl_name for s in offered], os.urandom(16))
    record = b""
    try:
        sock.sendall(hello)
        while not record_complete(record):
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
