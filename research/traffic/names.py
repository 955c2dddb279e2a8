"""Names as MTAs log them, made comparable: cipher suites (OpenSSL, GnuTLS) to IANA names, key
bits from a suite name, host names and addresses to peers."""

from __future__ import annotations

import re
from functools import cache

from research.policy.ciphers import iana_name_for_openssl
from research.policy.names import is_ip_address, provider_of

_TLS13_HASH = {"AES_128_GCM": "SHA256", "AES_256_GCM": "SHA384", "CHACHA20_POLY1305": "SHA256",
               "AES_128_CCM": "SHA256", "AES_128_CCM_8": "SHA256"}


@cache
def _iana_names() -> frozenset[str]:
    """Every IANA suite name known to sslyze's OpenSSL table and dpkt's registry."""
    names: set[str] = set()
    try:
        from sslyze.plugins.openssl_cipher_suites import cipher_suites as table

        for per_version in table._OPENSSL_TO_RFC_NAMES_MAPPING.values():
            names.update(per_version.values())
    except ImportError:  # pragma: no cover - sslyze is a dependency
        pass
    try:
        from dpkt import ssl_ciphersuites

        names.update(s.name for s in ssl_ciphersuites.BY_CODE.values())
    except ImportError:  # pragma: no cover - dpkt is a dependency
        pass
    return frozenset(n for n in names if n.startswith("TLS_"))


def iana_cipher(name: str | None, version: str | None = None) -> str | None:
    """The IANA name for a suite as an MTA logged it; the logged name if it cannot be mapped.

    Handles OpenSSL names (``ECDHE-RSA-AES256-GCM-SHA384``, Postfix and Sendmail), IANA names
    (TLS 1.3 under OpenSSL) and both GnuTLS styles that Exim logs: the classic
    ``ECDHE_RSA_AES_256_GCM_SHA384`` and GnuTLS 3.6+'s description
    ``ECDHE_X25519__RSA_PSS_RSAE_SHA256__AES_256_GCM`` (key exchange, then signature when the
    server side logs it, then cipher and MAC). A GnuTLS description without the signature part
    (Exim as a client) does not say RSA or ECDSA, so it stays as logged.
    """
    if not name:
        return None
    if name.startswith("TLS_") and name in _iana_names():
        return name
    if "-" in name:
        mapped = iana_name_for_openssl(name)
        return mapped if mapped.startswith("TLS_") else name
    return _gnutls_to_iana(name, version) or name


def _gnutls_to_iana(name: str, version: str | None) -> str | None:
    known = _iana_names()
    if "__" in name:
        parts = name.split("__")
        kx = parts[0].split("_")[0]
        mac = parts[-1] if parts[-1] in ("SHA1", "SHA256", "SHA384", "AEAD") else None
        cipher = parts[-2] if mac else parts[-1]
        if version == "TLS 1.3":
            hash_ = _TLS13_HASH.get(cipher)
            candidate = f"TLS_{cipher}_{hash_}" if hash_ else None
            return candidate if candidate in known else None
        signature = parts[1] if len(parts) >= (4 if mac else 3) else None
        if signature is None and kx != "RSA":
            return None
        auth = "RSA" if kx == "RSA" else (signature or "").split("_")[0]
        if auth not in ("RSA", "ECDSA", "DSS"):
            return None
        prefix = "RSA" if kx == "RSA" else f"{kx}_{auth}"
        if mac is None or mac == "AEAD":
            hash_ = "SHA384" if "256_GCM" in cipher else "SHA256"
            candidate = f"TLS_{prefix}_WITH_{cipher}_{hash_}"
        else:
            candidate = f"TLS_{prefix}_WITH_{cipher}_{'SHA' if mac == 'SHA1' else mac}"
        return candidate if candidate in known else None
    # Classic GnuTLS names: KX[_AUTH]_CIPHER_MAC, e.g. ECDHE_RSA_AES_256_GCM_SHA384.
    m = re.fullmatch(r"(ECDHE_RSA|ECDHE_ECDSA|DHE_RSA|DHE_DSS|RSA)_(.+?)_(SHA1|SHA256|SHA384)",
                     name)
    if not m:
        return None
    mac = "SHA" if m.group(3) == "SHA1" else m.group(3)
    candidate = f"TLS_{m.group(1)}_WITH_{m.group(2)}_{mac}"
    return candidate if candidate in known else None


_BITS = (("CHACHA20", 256), ("AES_256", 256), ("AES256", 256), ("AES_128", 128),
         ("AES128", 128), ("CAMELLIA_256", 256), ("CAMELLIA256", 256), ("CAMELLIA_128", 128),
         ("CAMELLIA128", 128), ("ARIA_256", 256), ("ARIA_128", 128), ("3DES", 168),
         ("DES_CBC3", 168), ("DES-CBC3", 168), ("RC4_128", 128), ("RC4", 128), ("SEED", 128),
         ("IDEA", 128), ("DES", 56), ("NULL", 0))


def cipher_bits(name: str | None) -> int | None:
    """Symmetric key bits a suite name implies (``..._AES_256_GCM_...`` → 256); None if unknown."""
    if not name:
        return None
    upper = name.upper()
    for marker, bits in _BITS:
        if marker in upper:
            return bits
    return None


def split_peer(name: str | None, ip: str | None) -> tuple[str | None, str | None]:
    """``(host name, IP)`` from a logged pair: Postfix's ``unknown`` and names that are only
    the address again (``127.0.0.1[127.0.0.1]``) give no host name; a trailing dot is dropped."""
    host = (name or "").strip().rstrip(".")
    address = (ip or "").strip()
    if address.lower().startswith("ipv6:"):
        address = address[5:]
    if not host or host.lower() == "unknown" or host == address or is_ip_address(host):
        host = ""
    return (host.lower() or None), (address or None)


def peer_domain(host: str | None) -> str | None:
    """The peer's provider (registrable part of its host name), or None without a name."""
    return provider_of(host) if host else None


def mail_domain(address: str | None) -> str | None:
    """Domain of an e-mail address as logged (``<bob@Example.com>`` → ``example.com``)."""
    if not address:
        return None
    text = address.strip().strip("<>").split(",")[0].strip().strip("<>")
    if "@" not in text:
        return None
    return text.rsplit("@", 1)[1].strip().rstrip(".").lower() or None
