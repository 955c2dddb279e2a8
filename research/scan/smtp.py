"""One polite SMTP session per address: banner, EHLO, STARTTLS, a default-client handshake, QUIT.

At a distance of one round trip (RTT) it costs: the TCP connect 1, the greeting 1, EHLO 1,
STARTTLS 1, the handshake 1 (TLS 1.3) or 2 (TLS 1.2), QUIT over TLS 1 (7 RTT against TLS 1.2).

The probe never sends MAIL, RCPT or DATA, and never speaks before the greeting is complete
(postscreen drops a client that does). It bounds everything a hostile server controls: each
reply line's length, the number of lines in a reply, the time for the greeting and the time for
the rest of the session.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from dataclasses import dataclass, field

from research.policy.ciphers import iana_name_for_openssl
from research.settings import ProbeSettings
from research.store.schema import HostStatus

MAX_LINE = 2048
"""RFC 5321 §4.5.3.1.5 allows 512 octets per reply line; leave generous room, then give up."""
MAX_LINES = 200
"""Lines in one multi-line reply before we call it hostile."""
SESSION_BUDGET = 4
"""A session may take at most this many ``timeout`` periods in total (slow-drip servers)."""

_OPENSSL_TO_LABEL = {"TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2",
                     "TLSv1.3": "TLS 1.3", "SSLv3": "SSL 3.0"}


@dataclass
class SmtpProbe:
    """What one SMTP session to ``ip`` learned.

    ``status`` is final except when ``starttls_accepted`` is true: then whether TLS works is for
    the TLS scan to decide (``starttls`` or ``tls_failed``).
    """

    mx_host: str
    ip: str
    port: int
    status: HostStatus | None = None
    banner: str | None = None
    ehlo_extensions: list[str] = field(default_factory=list)
    starttls_offered: bool | None = None
    starttls_accepted: bool = False
    negotiated_version: str | None = None
    negotiated_cipher: str | None = None
    certificate_der: bytes | None = None
    error: str | None = None
    duration_s: float = 0.0
    greeting_code: int | None = None
    """The greeting's reply code; None when no greeting came."""
    greeting_s: float | None = None
    """Seconds the greeting took to arrive in full after the connection was made."""


class SmtpClosed(Exception):
    """The peer closed or reset the connection."""


class SmtpHostile(Exception):
    """The peer broke a bound (line too long, too many lines) or is not speaking SMTP."""


class SmtpDeadline(Exception):
    """The whole-session time budget ran out."""


class SmtpUnexpected(Exception):
    """A reply other than the one the dialogue needs (:meth:`SmtpSession.expect`)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        """The reply code that came instead, if a reply came."""


class SmtpNoGreeting(Exception):
    """The greeting did not come, or not in full, within the greeting timeout."""


@dataclass
class Reply:
    code: int
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(f"{self.code} {line}".rstrip() for line in self.lines)


class SmtpSession:
    """Reads and writes one SMTP session (RFC 5321 §4.2) within every bound a hostile server
    could stretch: line length, lines per reply, and the whole session's time.

    A reply that does not come within ``timeout`` raises TimeoutError; a session that outlives
    :data:`SESSION_BUDGET` × ``timeout`` raises :class:`SmtpDeadline`.
    """

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout * SESSION_BUDGET
        self.buffer = b""
        self._wait = timeout
        """Longest wait for one read: ``timeout``, or the greeting timeout while greeted."""
        self.greeting_s: float | None = None
        """Seconds from the start of :meth:`read_greeting` to the greeting's last line."""

    def read_greeting(self, greeting_timeout: float) -> Reply:
        """The server's greeting, however many lines, waiting up to ``greeting_timeout`` for all
        of it (RFC 5321 §4.5.3.2.1 gives a greeting five minutes; greet pauses and postscreen
        hold it back for seconds). The rest of the session then has its own budget.

        Raises :class:`SmtpNoGreeting` if it is not complete in time.
        """
        started = time.monotonic()
        self.deadline, self._wait = started + greeting_timeout, greeting_timeout
        try:
            reply = self.read_reply()
        except (TimeoutError, SmtpDeadline):
            if self.buffer:
                raise SmtpNoGreeting(
                    f"greeting not complete after {greeting_timeout:g} s") from None
            raise SmtpNoGreeting(f"no greeting in {greeting_timeout:g} s") from None
        finally:
            self._wait = self.timeout
        self.greeting_s = time.monotonic() - started
        self.deadline = time.monotonic() + self.timeout * SESSION_BUDGET
        return reply

    def _recv(self) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise SmtpDeadline()
        self.sock.settimeout(min(self._wait, remaining))
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            if remaining < self._wait:
                # What ran out is the session's budget, not the server's patience per reply.
                raise SmtpDeadline() from None
            raise
        except ConnectionResetError:
            raise SmtpClosed("connection reset") from None
        if not data:
            raise SmtpClosed("connection closed")
        return data

    def read_line(self) -> bytes:
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE:
                raise SmtpHostile(f"reply line longer than {MAX_LINE} bytes")
            self.buffer += self._recv()
        line, _, self.buffer = self.buffer.partition(b"\n")
        if len(line) > MAX_LINE:
            raise SmtpHostile(f"reply line longer than {MAX_LINE} bytes")
        return line.rstrip(b"\r")

    def read_reply(self) -> Reply:
        lines: list[str] = []
        code = 0
        while True:
            raw = self.read_line()
            text = raw.decode("utf-8", "replace")
            if len(text) < 3 or not text[:3].isdigit() or (len(text) > 3 and text[3] not in " -"):
                shown = text[:80]
                # A web server on the SMTP port is common enough to name it.
                what = "not an SMTP server, HTTP reply" if text.startswith("HTTP/") else (
                    "not an SMTP reply")
                raise SmtpHostile(f"{what}: {shown!r}")
            if code and int(text[:3]) != code:
                raise SmtpHostile("reply code changed inside a multi-line reply")
            code = int(text[:3])
            lines.append(text[4:])
            if len(text) == 3 or text[3] == " ":
                return Reply(code, lines)
            if len(lines) >= MAX_LINES:
                raise SmtpHostile(f"reply longer than {MAX_LINES} lines")

    def command(self, line: str) -> Reply:
        self.send(line)
        return self.read_reply()

    def send(self, line: str) -> None:
        try:
            self.sock.sendall(line.encode("ascii") + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            raise SmtpClosed("connection reset") from None

    def expect(self, command: str, code: int) -> Reply:
        """Send ``command`` and return the reply if its code is ``code``; raise
        :class:`SmtpUnexpected` naming what came instead."""
        return _expected(self.command(command), command, code)

    def expect_greeting(self, greeting_timeout: float) -> Reply:
        """:meth:`read_greeting`, which must be ``220``, else :class:`SmtpUnexpected`."""
        return _expected(self.read_greeting(greeting_timeout), "greeting", 220)


def _expected(reply: Reply, what: str, code: int) -> Reply:
    if reply.code != code:
        said = f"{reply.code} {reply.lines[0] if reply.lines else ''}".strip()
        raise SmtpUnexpected(f"{what}: {said}", reply.code)
    return reply


def _default_client_context() -> ssl.SSLContext:
    # A modern client as OpenSSL ships it; verification is off because we want to see the
    # handshake even where the certificate is bad (certificates are judged separately).
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def probe_smtp(mx_host: str, ip: str, settings: ProbeSettings | None = None) -> SmtpProbe:
    """Greet ``ip`` on ``settings.port`` as ``settings.ehlo_name``, ask for STARTTLS if offered,
    shake hands, QUIT.

    Never raises for network or protocol failures: they become ``status`` and ``error``.
    """
    settings = settings or ProbeSettings()
    port, ehlo_name, timeout = settings.port, settings.ehlo_name, settings.timeout
    greeting_timeout = settings.greeting_timeout
    result = SmtpProbe(mx_host=mx_host, ip=ip, port=port)
    started = time.monotonic()
    try:
        sock = socket.create_connection((ip, port), timeout=timeout)
    except ConnectionRefusedError:
        result.status, result.error = HostStatus.REFUSED, "connection refused"
    except TimeoutError:
        result.status, result.error = HostStatus.TIMEOUT, f"no TCP connection in {timeout:g} s"
    except OSError as exc:
        # Unreachable networks look like a firewall's silent drop to a sender: no connection.
        result.status, result.error = HostStatus.TIMEOUT, f"connect failed: {exc.strerror or exc}"
    else:
        with contextlib.closing(sock):
            _converse(SmtpSession(sock, timeout), result, ehlo_name, greeting_timeout)
    result.duration_s = time.monotonic() - started
    return result


def _converse(session: SmtpSession, result: SmtpProbe, ehlo_name: str,
              greeting_timeout: float) -> None:
    stage = "banner"
    try:
        greeting = session.read_greeting(greeting_timeout)
        result.greeting_code, result.greeting_s = greeting.code, session.greeting_s
        result.banner = greeting.text
        if greeting.code != 220:
            result.status, result.error = HostStatus.SMTP_ERROR, f"greeting: {greeting.text}"
            _quit(session)
            return
        stage = "EHLO"
        if not _ehlo(session, result, ehlo_name):
            return
        if not result.starttls_offered:
            result.status = HostStatus.NO_STARTTLS
            _quit(session)
            return
        stage = "STARTTLS"
        reply = session.command("STARTTLS")
        if reply.code != 220:
            result.status = HostStatus.STARTTLS_REJECTED
            result.error = f"STARTTLS: {reply.text}"
            _quit(session)
            return
        result.starttls_accepted = True
        stage = "TLS"
        _handshake(session, result)
    except SmtpNoGreeting as exc:
        result.status, result.error = HostStatus.TIMEOUT, f"{stage}: {exc}"
    except SmtpDeadline:
        result.status = result.status or HostStatus.TIMEOUT
        result.error = f"{stage}: session took longer than {session.timeout * SESSION_BUDGET:g} s"
    except (SmtpClosed, SmtpHostile, OSError) as exc:
        status, reason = _failure(exc, session.timeout)
        # After STARTTLS was accepted, whether TLS works is the TLS scan's to decide.
        if not result.starttls_accepted:
            result.status = status
        result.error = f"{stage}: {reason}"


def _failure(exc: BaseException, timeout: float) -> tuple[HostStatus, str]:
    """The status and reason of a session that broke: silence is a timeout, a broken protocol
    an SMTP error, a closed or reset connection (or any other socket error) a refusal."""
    if isinstance(exc, TimeoutError):
        return HostStatus.TIMEOUT, f"no answer in {timeout:g} s"
    if isinstance(exc, SmtpHostile):
        return HostStatus.SMTP_ERROR, str(exc)
    return HostStatus.REFUSED, str(exc)


def _ehlo(session: SmtpSession, result: SmtpProbe, ehlo_name: str) -> bool:
    """EHLO, falling back to HELO; False when the session is over (status set)."""
    reply = session.command(f"EHLO {ehlo_name}")
    if reply.code == 250:
        # The first line is the server's name; the rest are extension keywords with parameters.
        result.ehlo_extensions = [ln.split()[0].upper() for ln in reply.lines[1:] if ln.split()]
        result.starttls_offered = "STARTTLS" in result.ehlo_extensions
        return True
    helo = session.command(f"HELO {ehlo_name}")
    if helo.code == 250:
        result.starttls_offered = False
        result.error = f"EHLO refused ({reply.text}); HELO accepted"
        return True
    result.status = HostStatus.SMTP_ERROR
    result.error = f"EHLO: {reply.text}; HELO: {helo.text}"
    _quit(session)
    return False


def _handshake(session: SmtpSession, result: SmtpProbe) -> None:
    try:
        tls = _default_client_context().wrap_socket(
            session.sock, server_hostname=result.mx_host, do_handshake_on_connect=False
        )
        tls.settimeout(session.timeout)
        tls.do_handshake()
    except (ssl.SSLError, OSError) as exc:
        # The TLS scan decides whether *any* client can get through; record why this one could not.
        result.error = f"default client handshake failed: {_ssl_reason(exc)}"
        return
    version = tls.version() or ""
    result.negotiated_version = _OPENSSL_TO_LABEL.get(version, version)
    cipher = tls.cipher()
    result.negotiated_cipher = iana_name_for_openssl(cipher[0]) if cipher else None
    result.certificate_der = tls.getpeercert(binary_form=True)
    tls_session = SmtpSession(tls, session.timeout)
    tls_session.deadline = session.deadline
    # No EHLO over TLS (RFC 3207 §4.2 asks for one before a transaction; the probe has none):
    # its reply would answer nothing and cost a round trip. QUIT is allowed at any time (RFC
    # 5321 §4.1.4) and still waits for its 221 (§4.1.1.10).
    _quit(tls_session)


def _quit(session: SmtpSession) -> None:
    # Politeness only: a server that hangs up instead of answering 221 changes nothing.
    with contextlib.suppress(SmtpClosed, SmtpHostile, SmtpDeadline, OSError):
        session.command("QUIT")


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason
    return str(exc) or type(exc).__name__


