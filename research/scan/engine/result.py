"""What a TLS scan of one (MX host, IP) finds, whichever engine made it."""

from __future__ import annotations

from dataclasses import dataclass, field

from research.policy.certs import CertSummary
from research.policy.ciphers import traits


@dataclass(frozen=True)
class TlsTarget:
    mx_host: str
    ip: str
    port: int


@dataclass(frozen=True)
class AcceptedCipher:
    tls_version: str
    """Version label, e.g. ``TLS 1.2``."""
    cipher: str
    """IANA name."""
    key_exchange: str
    forward_secrecy: bool
    aead: bool
    anonymous: bool
    key_bits: int


@dataclass
class TlsScan:
    """sslyze's findings for one target. ``versions`` maps version columns to accepted (or None)."""

    target: TlsTarget
    connected: bool = False
    """Whether sslyze completed at least one handshake (its connectivity test)."""
    versions: dict[str, bool | None] = field(default_factory=dict)
    ciphers: list[AcceptedCipher] = field(default_factory=list)
    certificate: CertSummary | None = None
    trusted_mozilla: bool | None = None
    chain: list[bytes] = field(default_factory=list)
    """The certificate chain as the server presented it (DER, leaf first)."""
    errors: list[str] = field(default_factory=list)


def accepted_cipher(version_label: str, name: str, *, key_bits: int, anonymous: bool,
                    group_family: str | None) -> AcceptedCipher:
    """The ``ciphers`` row of an accepted suite (IANA ``name``); ``group_family`` is the TLS 1.3
    key exchange seen in the handshake (``ECDHE``/``DHE``), which the suite's name does not say."""
    found = traits(name, tls13_group=group_family)
    return AcceptedCipher(
        tls_version=version_label, cipher=name, key_exchange=found.key_exchange,
        forward_secrecy=found.forward_secrecy, aead=found.aead,
        anonymous=found.anonymous or anonymous, key_bits=key_bits,
    )
