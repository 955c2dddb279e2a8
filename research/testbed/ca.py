"""The testbed's certificates: a throw-away CA and one leaf per TLS host, made at start-up.

Files in the certificate directory (the SMTP server reads them by these names):

- ``ca.pem``: the CA certificate (ECDSA P-256, CN "starttls-survey testbed CA");
- ``leaf-key.pem``: one RSA 2048 key shared by all leaves, so TLS 1.0/1.1 RSA suites work and
  start-up does not pay for a key per host;
- ``hosts/<host name>.pem``: each TLS host's certificate, of the kind its scenario asks for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from research.testbed.scenario import Certificate, Scenario

CA_COMMON_NAME = "starttls-survey testbed CA"
ORGANISATION = "starttls-survey testbed"
CA_FILE = "ca.pem"
KEY_FILE = "leaf-key.pem"
HOSTS_DIR = "hosts"

_LEAF_DAYS = 90
_CA_DAYS = 365


@dataclass(frozen=True)
class CertificateFiles:
    """Where one host's TLS material is."""

    cert_path: Path
    key_path: Path


def host_files(cert_dir: Path, host_name: str) -> CertificateFiles:
    """The files :func:`write_certificates` made for ``host_name`` in ``cert_dir``."""
    return CertificateFiles(cert_dir / HOSTS_DIR / f"{host_name}.pem", cert_dir / KEY_FILE)


def write_certificates(scenario: Scenario, cert_dir: Path) -> Path:
    """Make the CA and every TLS host's certificate in ``cert_dir``; return the CA's path.

    Raises OSError if the directory cannot be written.
    """
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(CA_COMMON_NAME)
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key(), now - dt.timedelta(hours=1),
                 now + dt.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    (cert_dir / HOSTS_DIR).mkdir(parents=True, exist_ok=True)
    ca_path = cert_dir / CA_FILE
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    key_path = cert_dir / KEY_FILE
    key_path.touch(mode=0o600)
    key_path.write_bytes(leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    for host in scenario.hosts:
        if host.certificate is None:
            continue
        leaf = _leaf(host.name, host.certificate, leaf_key, ca_cert, ca_key, now)
        host_files(cert_dir, host.name).cert_path.write_bytes(
            leaf.public_bytes(serialization.Encoding.PEM))
    return ca_path


def _leaf(host_name: str, kind: Certificate, key: rsa.RSAPrivateKey,
          ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
          now: dt.datetime) -> x509.Certificate:
    cert_name = f"wrong.{host_name}" if kind is Certificate.WRONG_NAME else host_name
    subject = _name(cert_name)
    if kind is Certificate.EXPIRED:
        not_after = now - dt.timedelta(days=30)
        not_before = not_after - dt.timedelta(days=_LEAF_DAYS)
    else:
        not_before, not_after = now - dt.timedelta(hours=1), now + dt.timedelta(days=_LEAF_DAYS)
    self_signed = kind is Certificate.SELF_SIGNED
    builder = (
        _builder(subject, subject if self_signed else ca_cert.subject, key.public_key(),
                 not_before, not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cert_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if self_signed:
        return builder.sign(key, hashes.SHA256())
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
    ).sign(ca_key, hashes.SHA256())


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _builder(subject: x509.Name, issuer: x509.Name, public_key: CertificatePublicKeyTypes,
             not_before: dt.datetime, not_after: dt.datetime) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    # keyEncipherment: TLS 1.0-1.2 RSA key exchange encrypts the premaster secret to this key.
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=not ca,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )
