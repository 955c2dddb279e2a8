"""Hand-built certificates for the network-free certificate and DANE tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
_EC_KEY = ec.generate_private_key(ec.SECP256R1())


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class Ca:
    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes


def make_ca(common_name: str = "Test Root", *, issuer: Ca | None = None,
            not_before: dt.datetime = NOW - 400 * DAY,
            not_after: dt.datetime = NOW + 400 * DAY) -> Ca:
    """A CA (self-signed root, or an intermediate when ``issuer`` is given), ECDSA P-256."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder().subject_name(name(common_name))
        .issuer_name(issuer.cert.subject if issuer else name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(_aki(issuer), critical=False)
    return Ca(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


def _aki(issuer: Ca) -> x509.AuthorityKeyIdentifier:
    ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def make_leaf(names: Sequence[str], issuer: Ca | None, *, not_before: dt.datetime = NOW - DAY,
              not_after: dt.datetime = NOW + 90 * DAY, eku: Sequence[x509.ObjectIdentifier] = (
                  ExtendedKeyUsageOID.SERVER_AUTH,), key: str = "ec") -> x509.Certificate:
    """A leaf for ``names`` signed by ``issuer`` (self-signed when None); ``key`` is ``ec``
    (a shared P-256 key), ``rsa`` (2048) or ``ed25519``."""
    private = {"ec": lambda: _EC_KEY, "rsa": lambda: rsa.generate_private_key(65537, 2048),
               "ed25519": ed25519.Ed25519PrivateKey.generate}[key]()
    builder = (
        x509.CertificateBuilder().subject_name(name(names[0]))
        .issuer_name(issuer.cert.subject if issuer else name(names[0]))
        .public_key(private.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    )
    if issuer is None:
        algorithm = None if key == "ed25519" else hashes.SHA256()
        return builder.sign(private, algorithm)
    return builder.add_extension(_aki(issuer), critical=False).sign(issuer.key, hashes.SHA256())
