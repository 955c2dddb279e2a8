"""What a cipher suite's name says: key exchange, forward secrecy, AEAD, weakness. Network-free.

Names are IANA names (``TLS_RSA_WITH_3DES_EDE_CBC_SHA``), SSL 2.0 names as sslyze reports them
(``SSL_CK_DES_192_EDE3_CBC_WITH_MD5``) and, for weakness, OpenSSL names too (``DES-CBC3-SHA``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

_AEAD_MARKERS = ("_GCM_", "_CCM", "CHACHA20_POLY1305")


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

WEAKNESSES: tuple[str, ...] = ("NULL", "anon", "EXPORT", "RC4", "RC2", "DES", "3DES")
"""Weakness tags in the order :func:`classify_cipher` reports them.

``NULL``: no encryption; ``anon``: no server authentication; ``EXPORT``: export-grade (40/56-bit)
keys; ``RC4``: biased stream cipher (RFC 7465 bans it); ``RC2``: export-era block cipher; ``DES``:
single 56-bit DES; ``3DES``: 64-bit block cipher open to Sweet32.
"""

_SPLIT = re.compile(r"[_\-]")


def classify_cipher(name: str) -> tuple[str, ...]:
    """Return the weakness tags of a cipher suite, in :data:`WEAKNESSES` order.

    An empty tuple means none of the listed weaknesses (it does not certify the suite as strong:
    e.g. CBC with SHA-1 is not flagged). Matching is by whole name tokens, case-insensitive for
    the keywords, so ``TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`` is never mistaken for DES.
    """
    tokens = [t.upper() for t in _SPLIT.split(name.strip()) if t]
    found: set[str] = set()
    if "NULL" in tokens:
        found.add("NULL")
    # IANA spells anonymous suites DH_anon / ECDH_anon; OpenSSL prefixes ADH- / AECDH-.
    if "ANON" in tokens or any(t in ("ADH", "AECDH") for t in tokens):
        found.add("anon")
    if any(t.startswith("EXPORT") or t in ("EXP", "EXP1024") for t in tokens):
        found.add("EXPORT")
    if any(t.startswith("RC4") for t in tokens):
        found.add("RC4")
    if any(t.startswith("RC2") for t in tokens):
        found.add("RC2")
    # Triple DES: IANA "3DES_EDE", SSL 2.0 "DES_192_EDE3", OpenSSL "DES-CBC3" / "EDH-...-DES-CBC3".
    if any(t in ("3DES", "EDE3", "CBC3", "DES3") for t in tokens):
        found.add("3DES")
    elif any(t in ("DES", "DES40") for t in tokens):
        found.add("DES")
    return tuple(tag for tag in WEAKNESSES if tag in found)


def is_weak_cipher(name: str) -> bool:
    """Whether :func:`classify_cipher` finds any weakness in ``name``."""
    return bool(classify_cipher(name))
