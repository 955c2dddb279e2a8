"""The testbed's certificates: a throw-away CA and one leaf per TLS host, made at start-up.

Files in the certificate directory (the SMTP server reads them by these names):

- ``ca.pem``: the CA certificate (ECDSA P-256, CN "starttls-survey testbed CA");
- ``leaf-key.pem``: one RSA 2048 key shared by all leaves, so TLS 1.0/1.1 RSA suites work and
  start-up does not pay for a key per host;
- ``hosts/<host name>.pem``: each TLS host's certificate, of the kind its scenario asks for
  (followed by its CA's certificate for hosts with ``send_ca``); MTA-STS policy hosts
  (``mta-sts.<domain>``) get theirs here too;
- ``hosts/<host name>.key.pem``: the key of a host that does not use the shared one
  (``certificate_key = "ecdsa-p256"``: one P-256 key shared by those hosts);
- ``dnssec-zone-key.pem`` and ``dnssec-anchor.txt``: the key that signs the ``test.`` zone and
  its DS record, the trust anchor a validating scanner is given (see
  :mod:`research.testbed.dnssec_zone`).

The CA's validity starts a year back, so that an ``expired`` leaf was once valid under it, as
with a real CA. ``untrusted`` leaves come from a second CA whose certificate is not written out.
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

from research.testbed.dnssec_zone import write_zone_key
from research.testbed.scenario import Certificate, CertificateKey, Scenario

CA_COMMON_NAME = "starttls-survey testbed CA"
ORGANISATION = "starttls-survey testbed"
CA_FILE = "ca.pem"
KEY_FILE = "leaf-key.pem"
HOSTS_DIR = "hosts"
ROGUE_CA_COMMON_NAME = "starttls-survey untrusted CA"

_LEAF_DAYS = 90
_CA_DAYS = 365


@dataclass(frozen=True)
class CertificateFiles:
    """Where one host's TLS material is."""

    cert_path: Path
    key_path: Path


def host_files(cert_dir: Path, host_name: str) -> CertificateFiles:
    """The files :func:`write_certificates` made for ``host_name`` in ``cert_dir``."""
    own_key = cert_dir / HOSTS_DIR / f"{host_name}.key.pem"
    return CertificateFiles(cert_dir / HOSTS_DIR / f"{host_name}.pem",
                            own_key if own_key.exists() else cert_dir / KEY_FILE)


def write_certificates(scenario: Scenario, cert_dir: Path) -> Path:
    """Make the CA and every TLS host's certificate in ``cert_dir``; return the CA's path.

    Raises OSError if the directory cannot be written.
    """
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ca_key, ca_cert = _ca(CA_COMMON_NAME, now)
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    (cert_dir / HOSTS_DIR).mkdir(parents=True, exist_ok=True)
    ca_path = cert_dir / CA_FILE
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    key_path = cert_dir / KEY_FILE
    key_path.touch(mode=0o600)
    key_path.write_bytes(leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    issuers = _Issuers(ca_key, ca_cert, now)
    ec_key: ec.EllipticCurvePrivateKey | None = None
    for host in scenario.hosts:
        if host.certificate is None:
            continue
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = leaf_key
        if host.certificate_key is CertificateKey.ECDSA_P256:
            ec_key = ec_key or ec.generate_private_key(ec.SECP256R1())
            key = ec_key
            own_key = cert_dir / HOSTS_DIR / f"{host.name}.key.pem"
            own_key.touch(mode=0o600)
            own_key.write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
        _write_leaf(cert_dir, host.name, host.leaf_names, host.certificate, key, issuers,
                    send_ca=host.send_ca)
    for policy in scenario.policy_hosts():
        _write_leaf(cert_dir, policy.host, policy.leaf_names, policy.certificate, leaf_key,
                    issuers, send_ca=False)
    write_zone_key(cert_dir)
    return ca_path


class _Issuers:
    """The testbed CA, and the untrusted one, made only if a leaf needs it; and the leaves
    already issued, so that hosts asking for the same leaf (a provider's pool names under one
    wildcard) share one."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate,
                 now: dt.datetime) -> None:
        self.trusted = (key, cert)
        self._rogue: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None
        self.now = now
        self.issued: dict[tuple[object, ...], bytes] = {}

    def for_kind(self, kind: Certificate) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        if kind is not Certificate.UNTRUSTED:
            return self.trusted
        if self._rogue is None:
            self._rogue = _ca(ROGUE_CA_COMMON_NAME, self.now)
        return self._rogue


def _ca(common_name: str, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey,
                                                      x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (
        _builder(name, name, key.public_key(), now - dt.timedelta(days=_CA_DAYS),
                 now + dt.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _write_leaf(cert_dir: Path, host_name: str, names: tuple[str, ...], kind: Certificate,
                key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, issuers: _Issuers, *,
                send_ca: bool) -> None:
    ca_key, ca_cert = issuers.for_kind(kind)
    wanted = (names, kind, key.public_key().public_numbers(), send_ca)
    pem = issuers.issued.get(wanted)
    if pem is None:
        leaf = _leaf(names, kind, key, ca_cert, ca_key, issuers.now)
        pem = leaf.public_bytes(serialization.Encoding.PEM)
        if send_ca:
            pem += ca_cert.public_bytes(serialization.Encoding.PEM)
        issuers.issued[wanted] = pem
    host_files(cert_dir, host_name).cert_path.write_bytes(pem)


def _leaf(names: tuple[str, ...], kind: Certificate,
          key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
          ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
          now: dt.datetime) -> x509.Certificate:
    cert_name = names[0]
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
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False, rsa_key=isinstance(key, rsa.RSAPrivateKey)),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage([
            ExtendedKeyUsageOID.CLIENT_AUTH if kind is Certificate.CLIENT_ONLY
            else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
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


def _key_usage(*, ca: bool, rsa_key: bool = True) -> x509.KeyUsage:
    # keyEncipherment: TLS 1.0-1.2 RSA key exchange encrypts the premaster secret to this key.
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=rsa_key and not ca,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )
