"""Cipher-suite traits and certificate summaries: pure functions on known inputs."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from research.policy.certs import name_matches, summarise
from research.policy.ciphers import iana_name_for_openssl, key_exchange, traits


@pytest.mark.parametrize(
    ("name", "kx", "fs", "aead", "anon"),
    [
        ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE", True, True, False),
        ("TLS_DHE_RSA_WITH_AES_256_CBC_SHA", "DHE", True, False, False),
        ("TLS_RSA_WITH_AES_128_CBC_SHA", "RSA", False, False, False),
        ("TLS_RSA_WITH_AES_128_CCM", "RSA", False, True, False),
        ("TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA", "ECDH", False, False, False),
        ("TLS_DH_anon_WITH_AES_128_CBC_SHA", "DH", False, False, True),
        ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE", True, True, False),
        ("TLS_RSA_EXPORT_WITH_RC4_40_MD5", "RSA", False, False, False),
        ("SSL_CK_RC4_128_WITH_MD5", "RSA", False, False, False),
        ("TLS_AES_256_GCM_SHA384", "ECDHE", True, True, False),
    ],
)
def test_traits_from_iana_names(name: str, kx: str, fs: bool, aead: bool, anon: bool) -> None:
    got = traits(name)
    assert (got.key_exchange, got.forward_secrecy, got.aead, got.anonymous) == (kx, fs, aead, anon)


def test_tls13_key_exchange_comes_from_the_group() -> None:
    assert key_exchange("TLS_AES_128_GCM_SHA256") == "TLS13"
    assert traits("TLS_AES_128_GCM_SHA256", tls13_group="DHE").key_exchange == "DHE"



def test_openssl_names_map_to_iana() -> None:
    assert iana_name_for_openssl("ECDHE-RSA-AES128-GCM-SHA256") == (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    )
    assert iana_name_for_openssl("TLS_AES_128_GCM_SHA256") == "TLS_AES_128_GCM_SHA256"
    assert iana_name_for_openssl("UNKNOWN-NAME") == "UNKNOWN-NAME"


@pytest.mark.parametrize(
    ("host", "names", "ok"),
    [
        ("mx.example.test", ["mx.example.test"], True),
        ("MX.Example.Test.", ["mx.example.test"], True),
        ("mx.example.test", ["*.example.test"], True),
        ("a.mx.example.test", ["*.example.test"], False),
        ("example.test", ["*.example.test"], False),
        ("mx.example.test", ["*.test"], False),
        ("mx.example.test", ["other.example.test"], False),
        ("mx.example.test", [], False),
    ],
)
def test_name_matching_follows_rfc6125(host: str, names: list[str], ok: bool) -> None:
    assert name_matches(host, names) is ok


def _cert(
    subject_cn: str, sans: list[str] | None, issuer_cn: str | None = None
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn or subject_cn)])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
        .public_key(key.public_key()).serial_number(7)
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=90))
    )
    if sans is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False
        )
    return builder.sign(key, hashes.SHA256())


def test_summary_of_a_ca_signed_leaf() -> None:
    cert = _cert("mx1.example.test", ["mx1.example.test", "mx2.example.test"], "Test CA")
    got = summarise(cert, "mx2.example.test")
    assert got.sans == ["mx1.example.test", "mx2.example.test"]
    assert got.matches and not got.self_signed
    assert got.issuer == "CN=Test CA" and got.subject == "CN=mx1.example.test"
    assert got.not_after == dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    assert len(got.sha256) == 64


def test_cn_counts_only_without_san_and_self_signed_is_seen() -> None:
    no_san = summarise(_cert("mx.example.test", None), "mx.example.test")
    assert no_san.matches and no_san.self_signed
    san_elsewhere = summarise(_cert("mx.example.test", ["other.test"]), "mx.example.test")
    assert not san_elsewhere.matches
