"""What a cipher suite's name says: key exchange, forward secrecy, AEAD, weakness. Network-free."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

_AEAD_MARKERS = ("_GCM_", "_CCM", "CHACHA20_POLY1305")
_WEAK_MARKERS = {
    "NULL": "_WITH_NULL_",
    "EXPORT": "EXPORT",
    "anonymous": "_anon_",
    "RC4": "_RC4_",
    "RC2": "_RC2_",
    "DES": "_DES_",
    "3DES": "_3DES_",
    "IDEA": "_IDEA_",
    "MD5": "_MD5",
}


@dataclass(frozen=True)
class CipherTraits:
    key_exchange: str
    forward_secrecy: bool
    aead: bool
    anonymous: bool


def key_exchange(name: str) -> str:
    """Key-exchange family of an IANA suite name: ``ECDHE``, ``DHE``, ``RSA``, ``ECDH``, ``DH``…

    TLS 1.3 names (``TLS_AES_128_GCM_SHA256``) carry no key exchange: returns ``TLS13``, which the
    caller replaces with the negotiated group's family when it knows it. SSL 2.0 suites are RSA.
    """
    if name.startswith("SSL_CK_"):
        return "RSA"
    body = name.removeprefix("TLS_").removeprefix("SSL_")
    if "_WITH_" not in body:
        return "TLS13"
    kx = body.split("_WITH_")[0]
    first = kx.split("_")[0]
    # DHE/ECDHE with PSK ("ECDHE_PSK") stays ephemeral; "RSA_EXPORT" is plain RSA.
    return "EDH" if first == "EDH" else first


def traits(name: str, *, tls13_group: str | None = None) -> CipherTraits:
    """Key exchange, forward secrecy, AEAD and anonymity of an IANA suite name.

    ``tls13_group`` is the family (``ECDHE``/``DHE``) of the group negotiated for a TLS 1.3 suite,
    which the suite name does not say; TLS 1.3 key exchange is always ephemeral.
    """
    kx = key_exchange(name)
    if kx == "TLS13":
        kx = tls13_group or "ECDHE"
        forward = True
    else:
        if kx == "EDH":
            kx = "DHE"
        forward = kx in ("DHE", "ECDHE")
    return CipherTraits(
        key_exchange=kx,
        forward_secrecy=forward,
        aead=any(m in name for m in _AEAD_MARKERS),
        anonymous="_anon_" in name,
    )


def weaknesses(name: str) -> list[str]:
    """Why a suite is weak, as short labels (``RC4``, ``3DES``, ``EXPORT``, ``NULL``, ``anonymous``,
    ``DES``, ``RC2``, ``IDEA``, ``MD5``); empty for a sound suite."""
    # "_3DES_" never contains "_DES_", so single DES and triple DES stay apart.
    return [label for label, marker in _WEAK_MARKERS.items() if marker in name + "_"]


@cache
def _openssl_to_iana() -> dict[str, str]:
    try:
        from sslyze.plugins.openssl_cipher_suites import cipher_suites as table
    except ImportError:  # pragma: no cover - sslyze is a dependency; keep names usable without it
        return {}
    mapping: dict[str, str] = {}
    for per_version in table._OPENSSL_TO_RFC_NAMES_MAPPING.values():
        mapping.update(per_version)
    return mapping


def iana_name_for_openssl(openssl_name: str) -> str:
    """IANA name for an OpenSSL cipher name; TLS 1.3 and unknown names are returned unchanged."""
    if openssl_name.startswith("TLS_"):
        return openssl_name
    return _openssl_to_iana().get(openssl_name, openssl_name)
