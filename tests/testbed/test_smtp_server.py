"""The testbed's SMTP servers, checked with real clients (smtplib, ssl): each behaviour, the TLS
version ranges and the certificates.

Nothing here sends MAIL/RCPT/DATA to the shared ``cases_testbed``: other tests read its log and
check that no client ever did.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time

import pytest
from cryptography import x509
from support.testbed_clients import CASES, VERSIONS, client_context, host, smtp, starttls

from research.testbed import (
    Testbed,
)
from research.testbed.scenario import Host

# -- SMTP behaviours -------------------------------------------------------------------------

def test_normal_host_session(cases_testbed: Testbed) -> None:
    spec = host("mx.tls10-13.test")
    with smtp(cases_testbed, spec.addresses[0]) as client:
        code, reply = client.ehlo()
        assert code == 250
        keywords = reply.decode().splitlines()
        assert keywords[0] == "mx.tls10-13.test"
        assert {"PIPELINING", "STARTTLS", "8BITMIME"} <= set(keywords)
        assert not any(k.startswith("AUTH") for k in keywords)
        client.starttls(context=client_context())
        code, reply = client.ehlo()  # a fresh EHLO after TLS
        assert code == 250 and "STARTTLS" not in reply.decode()
        assert client.noop()[0] == 250
        assert client.docmd("STARTTLS")[0] == 503
        assert client.quit()[0] == 221


def test_banner_names_host_and_software(cases_testbed: Testbed) -> None:
    with socket.create_connection(("127.0.200.7", cases_testbed.smtp_port), timeout=5) as sock:
        assert sock.recv(512) == b"220 mx.tls10-13.test ESMTP Exim 4.92\r\n"
        sock.sendall(b"QUIT\r\n")


def test_ipv6_host(cases_testbed: Testbed) -> None:
    with smtp(cases_testbed, "::1") as client:
        assert "STARTTLS" in client.ehlo()[1].decode()
        client.quit()
    assert starttls(cases_testbed, host("mx.tls10-13.test"), "::1")[0] == "TLS 1.3"


@pytest.mark.testbed
def test_server_accepts_no_mail(tiny_testbed: Testbed) -> None:
    with smtp(tiny_testbed, "127.0.201.1") as client:
        client.ehlo()
        assert client.mail("someone@client.test")[0] == 502
        assert client.rcpt("user@tiny.test")[0] == 503
        assert client.docmd("DATA")[0] == 503
        assert client.docmd("AUTH", "PLAIN")[0] == 502
        client.quit()


def test_no_starttls(cases_testbed: Testbed) -> None:
    with smtp(cases_testbed, "127.0.200.8") as client:
        code, reply = client.ehlo()
        assert code == 250 and "STARTTLS" not in reply.decode()
        assert client.docmd("STARTTLS")[0] == 502
        client.quit()


def test_starttls_rejected(cases_testbed: Testbed) -> None:
    with smtp(cases_testbed, "127.0.200.9") as client:
        assert "STARTTLS" in client.ehlo()[1].decode()
        code, reply = client.docmd("STARTTLS")
        assert (code, reply) == (454, b"4.7.0 TLS not available due to temporary reason")
        client.quit()


def test_tls_garbage(cases_testbed: Testbed) -> None:
    with pytest.raises(ssl.SSLError):
        starttls(cases_testbed, host("mx.tls-garbage.test"))


def test_greeting_error(cases_testbed: Testbed) -> None:
    with pytest.raises(smtplib.SMTPConnectError) as info:
        smtp(cases_testbed, "127.0.200.11")
    assert info.value.smtp_code == 554
    with socket.create_connection(("127.0.200.11", cases_testbed.smtp_port), timeout=5) as sock:
        assert sock.recv(512).startswith(b"554 5.7.1 ")
        sock.sendall(b"EHLO client.test\r\n")
        assert sock.recv(512).startswith(b"503 ")
        assert sock.recv(512) == b""  # closed


def test_tarpit_never_speaks(cases_testbed: Testbed) -> None:
    with socket.create_connection(("127.0.200.12", cases_testbed.smtp_port), timeout=5) as sock:
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(512)


def test_down_host_refuses(cases_testbed: Testbed) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.200.13", cases_testbed.smtp_port), timeout=5)


def test_every_isc_address_greets(isc_testbed: Testbed) -> None:
    for spec, ip in isc_testbed.scenario.targets():
        assert ip is not None
        with smtp(isc_testbed, ip) as client:
            assert ("STARTTLS" in client.ehlo()[1].decode()) is spec.serves_tls, spec.name
            client.quit()


# -- TLS versions and certificates -----------------------------------------------------------

TLS_HOSTS = [h for h in CASES.hosts if h.serves_tls and h.addresses]


@pytest.mark.parametrize("spec", TLS_HOSTS, ids=lambda h: h.name)
def test_tls_version_range_is_enforced(cases_testbed: Testbed, spec: Host) -> None:
    accepted = []
    for version in VERSIONS:
        try:
            got, _ = starttls(cases_testbed, spec, context=client_context(version))
        except (ssl.SSLError, ConnectionError):
            continue
        assert got == version
        accepted.append(version)
    assert tuple(accepted) == spec.versions == spec.expect_versions


def test_isc_tls_1_0_only_provider(isc_testbed: Testbed) -> None:
    spec = isc_testbed.scenario.host("mx1.libertel.test")
    assert starttls(isc_testbed, spec, context=client_context("TLS 1.0"))[0] == "TLS 1.0"
    with pytest.raises(ssl.SSLError):
        starttls(isc_testbed, spec, context=client_context("TLS 1.2"))
    with pytest.raises(ssl.SSLError):  # what a sender requiring TLS 1.2 would see
        starttls(isc_testbed, spec, context=ssl.create_default_context())


def test_ca_signed_certificate_verifies(cases_testbed: Testbed) -> None:
    spec = host("mx.tls10-13.test")
    ctx = client_context(cafile=cases_testbed.ca_cert_path, check_hostname=True)
    _, der = starttls(cases_testbed, spec, context=ctx)
    cert = x509.load_der_x509_certificate(der)
    ca = x509.load_pem_x509_certificate(cases_testbed.ca_cert_pem)
    assert cert.issuer == ca.subject
    assert "starttls-survey testbed CA" in ca.subject.rfc4514_string()
    assert _sans(cert) == ["mx.tls10-13.test"]


def test_self_signed_certificate(cases_testbed: Testbed) -> None:
    spec = host("mx.tls12-only.test")
    ctx = client_context(cafile=cases_testbed.ca_cert_path)
    with pytest.raises(ssl.SSLCertVerificationError, match="self-signed"):
        starttls(cases_testbed, spec, context=ctx)
    cert = x509.load_der_x509_certificate(starttls(cases_testbed, spec)[1])
    assert cert.issuer == cert.subject and _sans(cert) == ["mx.tls12-only.test"]


def test_wrong_name_certificate(cases_testbed: Testbed) -> None:
    spec = host("mx.tls13-only.test")
    chain_only = client_context(cafile=cases_testbed.ca_cert_path)
    cert = x509.load_der_x509_certificate(starttls(cases_testbed, spec, context=chain_only)[1])
    assert _sans(cert) == ["wrong.mx.tls13-only.test"]
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        starttls(cases_testbed, spec,
                 context=client_context(cafile=cases_testbed.ca_cert_path, check_hostname=True))


def test_expired_certificate(cases_testbed: Testbed) -> None:
    spec = host("mx.tls10-11.test")
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        starttls(cases_testbed, spec, context=client_context(cafile=cases_testbed.ca_cert_path))
    cert = x509.load_der_x509_certificate(starttls(cases_testbed, spec)[1])
    assert cert.not_valid_after_utc.timestamp() < time.time()


def test_isc_certificates_are_clean(isc_testbed: Testbed) -> None:
    for name in ("in1.smtp.globemail.test", "mx.eurohost.test", "mx1.libertel.test"):
        spec = isc_testbed.scenario.host(name)
        ctx = client_context(cafile=isc_testbed.ca_cert_path, check_hostname=True)
        starttls(isc_testbed, spec, context=ctx)


def _sans(cert: x509.Certificate) -> list[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return ext.value.get_values_for_type(x509.DNSName)
