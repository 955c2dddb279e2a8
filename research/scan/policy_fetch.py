"""Fetching an MTA-STS policy as a sender would (RFC 8461 §3.3).

HTTPS with the standard library only, to the address the injected resolver gives for the policy
host, on an injectable port, trusting the Mozilla roots plus an injectable CA file: HTTP 200 only,
redirects not followed, ``text/plain``, a certificate valid for ``mta-sts.<domain>``.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import dns.resolver

from research.policy.mtasts import HTTPS_PORT, MAX_POLICY_BYTES, POLICY_PATH, policy_host
from research.policy.pki import mozilla_roots_path
from research.scan.mx import resolve_addresses
from research.scan.optout import OptOutList
from research.settings import DEFAULT_TIMEOUT
from research.store.schema import FetchStatus

USER_AGENT = "starttls-survey (MTA-STS policy check)"


@dataclass
class PolicyFetch:
    host: str
    status: FetchStatus
    ip: str | None = None
    http_status: int | None = None
    content_type: str | None = None
    body: str | None = None
    error: str | None = None


def tls_context(trust_ca: str | Path | None = None) -> ssl.SSLContext:
    """What a sender fetching a policy trusts: the Mozilla roots, plus ``trust_ca`` if given.

    Certificate and host name checks are on (Python's defaults). Raises OSError or
    ssl.SSLError if ``trust_ca`` cannot be loaded.
    """
    context = ssl.create_default_context(cafile=str(mozilla_roots_path()))
    if trust_ca is not None:
        context.load_verify_locations(cafile=str(trust_ca))
    return context


def fetch_policy(
    domain: str,
    *,
    resolver: dns.resolver.Resolver | None = None,
    port: int = HTTPS_PORT,
    context: ssl.SSLContext | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    opt_out: OptOutList | None = None,
) -> PolicyFetch:
    """GET ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` as RFC 8461 §3.3 says.

    The policy host is resolved with ``resolver`` and its addresses tried in order until one
    accepts the connection; a name or address on ``opt_out`` is never contacted. ``context``
    defaults to :func:`tls_context` (Mozilla roots). Never raises for network or server
    failures: ``status`` and ``error`` say what happened.
    """
    host = policy_host(domain)
    context = context or tls_context()
    rule = opt_out.match_name(host) if opt_out else None
    if rule is not None:
        return PolicyFetch(host, FetchStatus.OPTED_OUT,
                           error=f"on the opt-out list ({rule}): not looked up or contacted")
    found = resolve_addresses(host, resolver=resolver)
    if not found.addresses:
        return PolicyFetch(host, FetchStatus.NO_ADDRESS, error=found.error or "no address")
    skipped = {ip: opt_out.match_ip(ip) for ip in found.addresses} if opt_out else {}
    allowed = [ip for ip in found.addresses if skipped.get(ip) is None]
    if not allowed:
        return PolicyFetch(host, FetchStatus.OPTED_OUT, error="; ".join(
            f"{ip}: in a network on the opt-out list ({net}): not contacted"
            for ip, net in skipped.items()))
    sock: socket.socket | None = None
    ip = None
    errors = []
    for ip in allowed:
        try:
            sock = socket.create_connection((ip, port), timeout=timeout)
            break
        except TimeoutError:
            errors.append(f"{ip}: timed out")
        except OSError as exc:
            errors.append(f"{ip}: {exc.strerror or exc}")
    if sock is None:
        status = (FetchStatus.TIMEOUT if all(e.endswith("timed out") for e in errors)
                  else FetchStatus.CONNECT_FAILED)
        return PolicyFetch(host, status, ip, error="; ".join(errors))
    try:
        return _get(host, ip, sock, context, timeout)
    finally:
        sock.close()


def _get(host: str, ip: str | None, sock: socket.socket, context: ssl.SSLContext,
         timeout: float) -> PolicyFetch:
    try:
        tls = context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        return PolicyFetch(host, FetchStatus.CERTIFICATE_INVALID, ip,
                           error=exc.verify_message or str(exc))
    except TimeoutError:
        return PolicyFetch(host, FetchStatus.TIMEOUT, ip, error="TLS handshake timed out")
    except (ssl.SSLError, OSError) as exc:
        return PolicyFetch(host, FetchStatus.TLS_FAILED, ip, error=str(exc))
    connection = http.client.HTTPConnection(host, timeout=timeout)
    connection.sock = tls  # already connected and verified; http.client only speaks HTTP on it
    try:
        connection.request("GET", POLICY_PATH, headers={
            "Host": host, "User-Agent": USER_AGENT, "Accept": "text/plain",
            "Connection": "close"})
        response = connection.getresponse()
        body = response.read(MAX_POLICY_BYTES + 1)
    except TimeoutError:
        return PolicyFetch(host, FetchStatus.TIMEOUT, ip, error="HTTP answer timed out")
    except (http.client.HTTPException, OSError) as exc:
        return PolicyFetch(host, FetchStatus.PROTOCOL_ERROR, ip,
                           error=f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()
    content_type = response.getheader("Content-Type")
    fetched = PolicyFetch(host, FetchStatus.OK, ip, response.status, content_type)
    if 300 <= response.status < 400:
        fetched.status = FetchStatus.REDIRECT
        fetched.error = f"HTTP {response.status} to {response.getheader('Location') or '?'}"
    elif response.status != 200:
        fetched.status = FetchStatus.HTTP_ERROR
        fetched.error = f"HTTP {response.status} {response.reason}"
    elif _media_type(content_type) != "text/plain":
        fetched.status = FetchStatus.CONTENT_TYPE
        fetched.error = f"Content-Type {content_type or 'missing'}, not text/plain"
    elif len(body) > MAX_POLICY_BYTES:
        fetched.status = FetchStatus.TOO_LARGE
        fetched.error = f"policy larger than {MAX_POLICY_BYTES} bytes"
    fetched.body = body[:MAX_POLICY_BYTES].decode("utf-8", "replace")
    return fetched


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


