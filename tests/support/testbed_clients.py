"""Real clients of the testbed's servers (dnspython, smtplib, ssl) and the small scenario the
testbed tests start on their own."""

from __future__ import annotations

import errno
import os
import smtplib
import socket
import ssl
import warnings
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.resolver

from research.testbed import (
    Testbed,
    load_scenario,
)
from research.testbed.scenario import Host

CASES = load_scenario("cases")
VERSIONS = {
    "TLS 1.0": ssl.TLSVersion.TLSv1,
    "TLS 1.1": ssl.TLSVersion.TLSv1_1,
    "TLS 1.2": ssl.TLSVersion.TLSv1_2,
    "TLS 1.3": ssl.TLSVersion.TLSv1_3,
}
_OPENSSL_NAMES = {"TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2",
                  "TLSv1.3": "TLS 1.3"}

TINY = """\
[scenario]
name = "tiny"
description = "one host, one domain"

[[hosts]]
name = "mx.tiny.test"
addresses = ["127.0.201.1"]
tls_min = "1.2"
tls_max = "1.3"
expect = { status = "starttls", versions = ["TLS 1.2", "TLS 1.3"] }

[[domains]]
name = "tiny.test"
mx = [[10, "mx.tiny.test"]]
expect = { dns_status = "mx" }
"""




def resolver(tb: Testbed) -> dns.resolver.Resolver:
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [tb.dns_host]
    res.port = tb.dns_port
    res.lifetime = 2.0
    return res


def rcode(tb: Testbed, name: str, rdtype: str = "MX", *, tcp: bool = False) -> int:
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, tb.dns_host, port=tb.dns_port, timeout=2.0).rcode()


def client_context(version: str | None = None, *, cafile: Path | None = None,
                   check_hostname: bool = False) -> ssl.SSLContext:
    """A client context; pinned to one version if given, accepting anything TLS 1.0 needs."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = check_hostname
    if cafile is None:
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cafile=str(cafile))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        if version is not None:
            ctx.minimum_version = ctx.maximum_version = VERSIONS[version]
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


def smtp(tb: Testbed, ip: str) -> smtplib.SMTP:
    return smtplib.SMTP(ip, tb.smtp_port, local_hostname="client.test", timeout=5)


def starttls(tb: Testbed, host: Host, ip: str | None = None, *,
             context: ssl.SSLContext | None = None) -> tuple[str, bytes]:
    """STARTTLS handshake with ``host``; returns (version label, leaf certificate DER)."""
    with smtp(tb, ip or host.addresses[0]) as client:
        client.ehlo()
        code, _ = client.docmd("STARTTLS")
        assert code == 220
        assert client.sock is not None
        tls = (context or client_context()).wrap_socket(client.sock, server_hostname=host.name)
        try:
            cert = tls.getpeercert(binary_form=True)
            version = tls.version()
            assert cert is not None and version is not None
            tls.sendall(b"QUIT\r\n")
            return _OPENSSL_NAMES[version], cert
        finally:
            tls.close()


def host(name: str) -> Host:
    return CASES.host(name)


def free_to_bind(ip: str, port: int, kind: int = socket.SOCK_STREAM) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, kind) as sock:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError as err:
            assert err.errno == errno.EADDRINUSE
            return False
    return True


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
