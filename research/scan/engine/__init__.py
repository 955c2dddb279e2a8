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

``full`` (the default) enumerates each lane by iterative removal, (accepted + 1) sessions a
lane whether the server honours its own preference or the client's order; SSL 2.0's
SERVER-HELLO lists every shared cipher, so one hello answers its lane. ``versions`` asks each
version once, offering every suite the client knows for it (for TLS 1.2 the modern client's
whole list; see ``data/README.md``), and records no suites. The certificate comes from a session
already made, at the newest version accepted; a further MX name on the same address costs one
session for its own certificate (SNI). Up to ``per_host_connections`` lanes of one address run
at once, as its gate (:mod:`research.scan.limits`) allows; an address that refuses sessions
teaches the gate its limits, one that stops answering is paused, retried and finally left alone
(:mod:`~research.scan.engine.host`), and what it left open is ``undecided``, never rejected.

The modules: :mod:`~research.scan.engine.lanes` (which questions), ``_session`` (one SMTP
session and handshake, ``_ssl2`` for SSL 2.0's own hello), :mod:`~research.scan.engine.host` (one
host's lanes, retries and verdicts), :mod:`~research.scan.engine.result` (what any engine finds)
and :mod:`~research.scan.engine.sslyze` (sslyze's own scan, ``--engine sslyze``).
"""

from __future__ import annotations

from research.scan.engine._ssl2 import parse_ssl2_server_hello, ssl2_client_hello
from research.scan.engine.host import (
    CertificateFacts,
    EngineScan,
    certificate_facts,
    certificate_for,
    scan_host,
)
from research.scan.engine.lanes import Lane, lanes
from research.scan.engine.result import AcceptedCipher, TlsScan, TlsTarget

__all__ = [
    "AcceptedCipher",
    "CertificateFacts",
    "EngineScan",
    "Lane",
    "TlsScan",
    "TlsTarget",
    "certificate_facts",
    "certificate_for",
    "lanes",
    "parse_ssl2_server_hello",
    "scan_host",
    "ssl2_client_hello",
]
