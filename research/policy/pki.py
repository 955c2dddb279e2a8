"""Certificate chains as a sender that enforces TLS judges them: trust, time, names, keys.

Network-free. sslyze validates with cryptography's WebPKI verifier too, but only as "valid for
this host name or not"; a sender's TLS report (RFC 8460) and a researcher need the reasons
apart: a chain that leads nowhere (``certificate-not-trusted``), a good chain past its dates
(``certificate-expired``), a good chain for another name (``certificate-host-mismatch``), or a
chain that reaches a trusted root but breaks the WebPKI profile (``validation-failure``).
:func:`assess_chain` separates them by validating the chain without a name, at several times,
and with and without the profile's extension rules.
"""

from __future__ import annotations

import base64
import datetime as dt
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from research.errors import InputError
from research.policy.certs import dns_names, name_matches
from research.store.schema import TlsResult


class CertTrust:
    """The roots a sender trusts: sslyze's Mozilla store, plus extra PEM roots if given."""

    def __init__(self, roots: Sequence[x509.Certificate], sources: Sequence[str]) -> None:
        if not roots:
            raise InputError("a trust store needs at least one root certificate")
        self.roots = list(roots)
        self.sources = list(sources)
        self.store = Store(self.roots)

    def __repr__(self) -> str:
        return f"<CertTrust {len(self.roots)} roots from {', '.join(self.sources)}>"


def mozilla_roots_path() -> Path:
    """The Mozilla (NSS) root store that sslyze ships and validates against."""
    from sslyze.plugins.certificate_info.trust_stores.trust_store_repository import (
        TrustStoresRepository,
    )

    with warnings.catch_warnings():
        # One Mozilla root has a negative serial number; cryptography warns when sslyze loads
        # the store, which says nothing about the hosts being judged.
        warnings.simplefilter("ignore")
        return TrustStoresRepository.get_default().get_main_store().path


def load_trust(extra: str | Path | None = None, *, mozilla: bool = True) -> CertTrust:
    """A :class:`CertTrust` of the Mozilla roots (unless ``mozilla=False``) and ``extra``.

    Raises:
        InputError: ``extra`` cannot be read or holds no PEM certificate, or no roots at all.
    """
    roots: list[x509.Certificate] = []
    sources: list[str] = []
    with warnings.catch_warnings():
        # The same root's warning, now from loading the store ourselves.
        warnings.simplefilter("ignore")
        if mozilla:
            roots += x509.load_pem_x509_certificates(mozilla_roots_path().read_bytes())
            sources.append("Mozilla")
        if extra is not None:
            try:
                roots += x509.load_pem_x509_certificates(Path(extra).read_bytes())
            except OSError as exc:
                raise InputError(f"{extra}: cannot read trust anchors ({exc.strerror})") from None
            except ValueError:
                raise InputError(f"{extra}: no PEM certificate in it") from None
            sources.append(str(extra))
    return CertTrust(roots, sources)


@dataclass(frozen=True)
class KeyFacts:
    key_type: str
    key_bits: int | None


def key_facts(cert: x509.Certificate) -> KeyFacts:
    """Type and size of the certificate's public key."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return KeyFacts("RSA", key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return KeyFacts("EC", key.curve.key_size)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeyFacts("Ed25519", 256)
    if isinstance(key, ed448.Ed448PublicKey):
        return KeyFacts("Ed448", 456)
    if isinstance(key, dsa.DSAPublicKey):
        return KeyFacts("DSA", key.key_size)
    return KeyFacts(type(key).__name__, None)


def signature_algorithm(cert: x509.Certificate) -> str:
    """The signature algorithm's name (e.g. ``ecdsa-with-SHA256``), else its dotted OID."""
    oid = cert.signature_algorithm_oid
    name = oid._name
    return name if name and name != "Unknown OID" else oid.dotted_string


def spki_der(cert: x509.Certificate) -> bytes:
    """The SubjectPublicKeyInfo, DER: what TLSA selector 1 refers to."""
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def certificate_rows(chain: Sequence[x509.Certificate]) -> list[dict[str, Any]]:
    """The ``certificates`` table's columns (except ``mx_host``/``ip``) for each certificate."""
    rows = []
    for position, cert in enumerate(chain):
        key = key_facts(cert)
        der = cert.public_bytes(serialization.Encoding.DER)
        rows.append({
            "position": position,
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "sans": dns_names(cert),
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "self_signed": cert.issuer == cert.subject,
            "is_ca": _is_ca(cert),
            "key_type": key.key_type,
            "key_bits": key.key_bits,
            "signature_algorithm": signature_algorithm(cert),
            "sha256": cert.fingerprint(hashes.SHA256()).hex(),
            "spki_sha256": _sha256(spki_der(cert)),
            "der_base64": base64.b64encode(der).decode("ascii"),
        })
    return rows


def _sha256(data: bytes) -> str:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize().hex()


def chain_from_rows(rows: Sequence[Mapping[Any, Any]]) -> list[x509.Certificate]:
    """The chain back from ``certificates`` rows (sorted by ``position``); rows whose DER does
    not parse are skipped."""
    chain = []
    for row in sorted(rows, key=lambda r: int(r["position"])):
        text = row.get("der_base64")
        if not isinstance(text, str):
            continue
        try:
            chain.append(x509.load_der_x509_certificate(base64.b64decode(text)))
        except ValueError:
            continue
    return chain


@dataclass(frozen=True)
class ChainVerdict:
    """What a sender enforcing authenticated TLS to ``host`` makes of a presented chain."""

    result: TlsResult
    """``ok`` or the RFC 8460 failure, in the order: not trusted, expired, name, other."""
    chain_trusted: bool
    """A path to a trusted root exists (names aside, at a time its certificates are valid)."""
    expired: bool
    """Outside a validity period now (the trusted path's certificates, else the leaf's)."""
    matches_host: bool
    error: str | None
    """The verifier's message when the chain is not valid for ``host`` now."""


def _server_auth_eku(_policy: Policy, _cert: x509.Certificate,
                     eku: x509.ExtendedKeyUsage | None) -> None:
    # The name-free verifier is a "client" verifier, whose default demands clientAuth; a
    # server certificate must instead allow serverAuth (or say nothing about usage).
    if eku is not None and not {ExtendedKeyUsageOID.SERVER_AUTH,
                                ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE} & set(eku):
        raise ValueError("extended key usage does not allow serverAuth")


_EE_POLICY = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _server_auth_eku)
# The lax policies waive the WebPKI extension rules; a CA must still be marked as one.
_LAX_CA_POLICY = ExtensionPolicy.permit_all().require_present(
    x509.BasicConstraints, Criticality.AGNOSTIC, None)
_LAX_EE_POLICY = ExtensionPolicy.permit_all()


def _verify(trust: CertTrust, leaf: x509.Certificate, intermediates: list[x509.Certificate],
            when: dt.datetime, *, strict: bool = True) -> str | None:
    """None if a path to a trusted root validates at ``when`` (names aside), else why not."""
    builder = PolicyBuilder().store(trust.store).time(when)
    if strict:
        builder = builder.extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                                             ee_policy=_EE_POLICY)
    else:
        builder = builder.extension_policies(ca_policy=_LAX_CA_POLICY, ee_policy=_LAX_EE_POLICY)
    try:
        builder.build_client_verifier().verify(leaf, intermediates)
    except VerificationError as exc:
        return _message(exc)
    return None


def _message(exc: VerificationError) -> str:
    # cryptography appends "(encountered processing <Certificate(...)>)": noise in a table.
    return str(exc).split(" (encountered processing", 1)[0]


def _times_inside(leaf: x509.Certificate) -> list[dt.datetime]:
    """Times at which the leaf is valid: the middle, and just inside either end (a CA younger
    than its expired leaf's middle still covers the end)."""
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if end <= start:
        return [start]
    inside = dt.timedelta(seconds=min(60.0, (end - start).total_seconds() / 4))
    return [start + (end - start) / 2, end - inside, start + inside]


def assess_chain(chain: Sequence[x509.Certificate], host: str, trust: CertTrust, *,
                 now: dt.datetime | None = None) -> ChainVerdict:
    """Judge ``chain`` (leaf first, as presented) for ``host`` against ``trust`` at ``now``.

    ``result`` is ``certificate-not-trusted`` when no path to a trusted root validates at any
    time the leaf is valid; ``certificate-expired`` when one does but not now; then
    ``certificate-host-mismatch`` when the leaf's names (RFC 6125, see
    :func:`research.policy.certs.name_matches`) do not cover ``host``; ``validation-failure`` when a
    path exists only if the WebPKI extension rules are waived (e.g. a leaf without serverAuth);
    else ``ok``. Raises ValueError for an empty chain.
    """
    if not chain:
        raise ValueError("empty certificate chain")
    now = now or dt.datetime.now(dt.UTC)
    leaf, intermediates = chain[0], list(chain[1:])
    matches = name_matches(host, dns_names(leaf))
    leaf_expired = not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc
    error_now = _verify(trust, leaf, intermediates, now)
    if error_now is None:
        result = TlsResult.OK if matches else TlsResult.CERTIFICATE_HOST_MISMATCH
        error = None if matches else f"certificate is not valid for {host}"
        return ChainVerdict(result, True, False, matches, error)
    times = _times_inside(leaf)
    if any(_verify(trust, leaf, intermediates, t) is None for t in times):
        return ChainVerdict(TlsResult.CERTIFICATE_EXPIRED, True, True, matches, error_now)
    if any(_verify(trust, leaf, intermediates, t, strict=False) is None for t in [now, *times]):
        return ChainVerdict(TlsResult.VALIDATION_FAILURE, False, leaf_expired, matches,
                            error_now)
    if leaf.issuer == leaf.subject and not intermediates:
        # The verifier's message then names whatever WebPKI rule it tripped over first.
        error_now = "self-signed certificate, not in the trust store"
    return ChainVerdict(TlsResult.CERTIFICATE_NOT_TRUSTED, False, leaf_expired, matches,
                        error_now)


def parse_chain(ders: Sequence[bytes]) -> list[x509.Certificate]:
    """Certificates from DER blobs, stopping at the first that does not parse."""
    chain = []
    for der in ders:
        try:
            chain.append(x509.load_der_x509_certificate(der))
        except ValueError:
            break
    return chain
