"""The engine's lanes: one TLS version with one of nassl's clients, and the suites it offers.

sslyze splits TLS 1.2's suites between its legacy (OpenSSL 1.0.2) and modern (OpenSSL 1.1.1)
clients; the lanes mirror that split, so the engine covers exactly the suites sslyze covers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

from nassl.ssl_client import OpenSslVerifyEnum, OpenSslVersionEnum, SslClient
from sslyze.plugins.openssl_cipher_suites._tls12_workaround import (
    WorkaroundForTls12ForCipherSuites,
)
from sslyze.plugins.openssl_cipher_suites.cipher_suites import (
    CipherSuite,
    CipherSuitesRepository,
)
from sslyze.server_connectivity import TlsVersionEnum

from research.policy.ciphers import iana_name_for_openssl
from research.store.schema import TLS_VERSIONS, Engine, TlsVersion


@dataclass(frozen=True)
class Lane:
    """One version with one of nassl's clients, and the suites that client offers for it."""

    version: TlsVersion
    legacy: bool
    """nassl's LegacySslClient (OpenSSL 1.0.2) rather than SslClient (OpenSSL 1.1.1)."""
    suites: tuple[CipherSuite, ...]

    @property
    def name(self) -> str:
        return f"{self.version.label} ({'legacy' if self.legacy else 'modern'} client)"


def sslyze_version(version: TlsVersion) -> TlsVersionEnum:
    return TlsVersionEnum(version.rank + 1)


@cache
def lanes(engine: Engine) -> tuple[Lane, ...]:
    """The lanes a scan with ``engine`` asks, longest first (they are shared out in this order).

    ``full`` mirrors sslyze: TLS 1.2 suites the legacy client supports go to it, the others to
    the modern client. ``versions`` has one lane per version; TLS 1.2's is the modern client
    with every TLS 1.2 suite it knows.
    """
    if engine is Engine.SSLYZE:
        raise ValueError("the sslyze engine has no lanes; it runs sslyze's own scan")
    by_label = {v.label: v for v in TLS_VERSIONS}
    found: list[Lane] = []
    for version in TLS_VERSIONS:
        suites = sorted(CipherSuitesRepository.get_all_cipher_suites(sslyze_version(version)),
                        key=lambda s: s.name)
        if version.label == "TLS 1.2":
            legacy = tuple(s for s in suites
                           if WorkaroundForTls12ForCipherSuites.requires_legacy_openssl(
                               s.openssl_name))
            if engine is Engine.VERSIONS:
                # The repository names a suite the way one client does; the modern client may
                # know the same suite by another OpenSSL name (EDH-... vs DHE-...).
                modern = _modern_tls12_names()
                found.append(Lane(version, False, tuple(
                    replace(s, openssl_name=modern[s.name]) for s in suites if s.name in modern)))
            else:
                found.append(Lane(version, True, legacy))
                found.append(Lane(version, False, tuple(s for s in suites if s not in legacy)))
        else:
            found.append(Lane(version, version.label != "TLS 1.3", tuple(suites)))
    # Longest expected first: TLS 1.2, then 1.0/1.1, 1.3 and the rarely accepted SSL versions.
    order = ["TLS 1.2", "TLS 1.0", "TLS 1.1", "TLS 1.3", "SSL 3.0", "SSL 2.0"]
    found.sort(key=lambda lane: (order.index(lane.version.label), not lane.legacy))
    assert {lane.version.label for lane in found} == set(by_label)
    return tuple(found)


@cache
def _modern_tls12_names() -> dict[str, str]:
    """IANA name → OpenSSL name of every TLS 1.2 suite nassl's modern client can offer."""
    client = SslClient(ssl_version=OpenSslVersionEnum.TLSV1_2, ssl_verify=OpenSslVerifyEnum.NONE)
    client.set_cipher_list("ALL:COMPLEMENTOFALL:-PSK:-SRP")
    return {iana_name_for_openssl(name): name for name in client.get_cipher_list()}
