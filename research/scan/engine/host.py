"""The probe engine's scan of one address: every lane, within the sessions the address allows.

A lane is enumerated by iterative removal: offer every suite of the lane, note the one the
server chooses, remove it and offer the rest, until the server refuses. Every session passes
the address's gate (:mod:`research.scan.limits`), which learns the address's limits from the
sessions it refuses; a refused session is tried again when the gate allows, a silent one after
a pause, up to ``retries`` times in a row. Once the address is given up (silent too often, or
its time budget spent) no lane opens another session, and what was not decided is reported in
``undecided``, never as rejected.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import DNSName
from nassl.ephemeral_key_info import DhEphemeralKeyInfo, EphemeralKeyInfo
from sslyze.plugins.certificate_info.trust_stores.trust_store import TrustStore
from sslyze.plugins.certificate_info.trust_stores.trust_store_repository import (
    TrustStoresRepository,
)
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuite

from research.policy.certs import CertSummary, summarise
from research.scan.engine._session import (
    _Accepted,
    _Exhausted,
    _Failed,
    _NoAnswer,
    _Outcome,
    _Rejected,
    _Ssl2Hello,
    run_session,
)
from research.scan.engine.lanes import Lane, lanes
from research.scan.engine.result import AcceptedCipher, TlsScan, TlsTarget, accepted_cipher
from research.scan.limits import AddressGate, Signal
from research.settings import ProbeSettings
from research.store.schema import TLS_VERSIONS, Engine, TlsVersion


@dataclass
class EngineScan(TlsScan):
    """A :class:`TlsScan` from this engine, with what it could not decide and what it cost."""

    undecided: list[str] = field(default_factory=list)
    """Labels of versions not decided (``TLS 1.2``), or of versions found accepted whose suite
    list may be incomplete (``TLS 1.2 suites``); empty when everything was decided."""
    certificate_lane: Lane | None = None
    """The lane whose handshake gave the certificate, and ..."""
    certificate_suites: tuple[CipherSuite, ...] = ()
    """... the suites it accepted: what a session asking for another name's certificate
    offers (:func:`certificate_for`)."""
    chain_pem: list[str] = field(default_factory=list)
    """The chain as presented (PEM, leaf first)."""


@dataclass
class _LaneResult:
    lane: Lane
    accepted: list[_Accepted] = field(default_factory=list)
    decided: bool = False
    """Every suite of the lane was answered (accepted or rejected)."""
    chain: list[str] = field(default_factory=list)
    error: str | None = None


def _run_lane(target: TlsTarget, settings: ProbeSettings, lane: Lane,
              gate: AddressGate) -> _LaneResult:
    result = _LaneResult(lane)
    remaining = list(lane.suites)
    by_name = {s.openssl_name: s for s in lane.suites}
    while remaining:
        outcome = _attempt(target, settings, lane, remaining, not result.chain, gate)
        if isinstance(outcome, _Ssl2Hello):
            offered = {s.openssl_name for s in remaining}
            result.accepted = [_Accepted(name, None, []) for name in outcome.openssl_names
                               if name in offered]
            result.chain = outcome.chain
            break
        if isinstance(outcome, _Accepted):
            suite = by_name.get(outcome.openssl_name)
            if suite is None or suite not in remaining:
                result.error = f"server chose {outcome.openssl_name}, which was not offered"
                return result
            remaining.remove(suite)
            result.accepted.append(outcome)
            result.chain = result.chain or outcome.chain
            if settings.engine is Engine.VERSIONS:
                break
        elif isinstance(outcome, _Rejected | _Exhausted):
            break
        else:
            result.error = outcome.reason
            return result
    result.decided = True
    return result


def _attempt(target: TlsTarget, settings: ProbeSettings, lane: Lane,
             offered: Sequence[CipherSuite], want_chain: bool, gate: AddressGate) -> _Outcome:
    silent = 0
    while True:
        permit = gate.acquire()
        if permit is None:
            return _Failed(f"not asked: {gate.gave_up}")
        outcome = run_session(target, settings, lane, offered, want_chain, permit.greeted)
        if not isinstance(outcome, _NoAnswer):
            permit.release(Signal.ANSWERED)
            return outcome
        permit.release(outcome.signal, outcome.reason)
        if outcome.signal is Signal.SILENT:
            silent += 1
            if silent > settings.retries:
                reason = f"{outcome.reason} ({silent} attempt{'s' if silent > 1 else ''})"
                gate.give_up(f"address stopped answering: {reason}")
                return _Failed(reason)


def scan_host(target: TlsTarget, settings: ProbeSettings, gate: AddressGate) -> EngineScan:
    """Versions (and, in ``full`` mode, accepted suites) and the certificate of the address of
    ``target``, asked with its name (SNI); every session passes ``gate``.

    Never raises for what the server does: failures are in ``errors`` and ``undecided``.
    Raises ValueError for the ``sslyze`` engine, which this function does not run.
    """
    work = lanes(settings.engine)

    def run(lane: Lane) -> _LaneResult:
        return _run_lane(target, settings, lane, gate)

    if settings.per_host_connections <= 1:
        results = [run(lane) for lane in work]
    else:
        # As many lanes at once as the survey allows an address; the gate may allow fewer.
        with ThreadPoolExecutor(max_workers=min(settings.per_host_connections, len(work)),
                                thread_name_prefix="lane") as pool:
            results = list(pool.map(run, work))
    return _combine(target, settings.engine, results)


def certificate_for(target: TlsTarget, settings: ProbeSettings, gate: AddressGate,
                    scan: EngineScan) -> tuple[list[str], str | None]:
    """The certificate chain (PEM, leaf first) the address of ``scan`` presents to ``target``'s
    name (SNI), in one session offering what ``scan``'s certificate lane accepted; or no chain
    and why. SSL 2.0 has no SNI: its chain is the address's, asked again for nothing."""
    lane = scan.certificate_lane
    if lane is None:
        return [], "no handshake to ask for this name's certificate with"
    if lane.version.label == "SSL 2.0":
        return scan.chain_pem, None
    outcome = _attempt(target, settings, lane, scan.certificate_suites, True, gate)
    if isinstance(outcome, _Accepted) and outcome.chain:
        return outcome.chain, None
    reason = getattr(outcome, "reason", None) or "no certificate in the handshake"
    return [], f"certificate for {target.mx_host}: {reason}"


def _combine(target: TlsTarget, engine: Engine, results: list[_LaneResult]) -> EngineScan:
    scan = EngineScan(target=target)
    chain: list[str] = []
    for version in TLS_VERSIONS:
        mine = [r for r in results if r.lane.version == version]
        accepted = any(r.accepted for r in mine)
        complete = all(r.decided for r in mine)
        scan.versions[version.column] = True if accepted else (False if complete else None)
        if not complete:
            scan.undecided.append(f"{version.label} suites" if accepted else version.label)
        scan.errors.extend(f"{r.lane.name}: {r.error}" for r in mine if r.error)
        # Prefer the newest version's chain, as sslyze's certificate scan does.
        giver = next((r for r in mine if r.chain), None)
        if giver is not None:
            chain = giver.chain
            scan.certificate_lane = giver.lane
            offered = {a.openssl_name for a in giver.accepted}
            scan.certificate_suites = tuple(s for s in giver.lane.suites
                                            if s.openssl_name in offered)
        if engine is Engine.FULL:
            found = [(_suite(r.lane, a), a) for r in mine for a in r.accepted]
            # sslyze's order: by IANA name, descending.
            for suite, hit in sorted(found, key=lambda pair: pair[0].name, reverse=True):
                scan.ciphers.append(_accepted_cipher(version, suite, hit.ephemeral_key))
    # As for sslyze, a host where no handshake ever succeeded has no version columns (status
    # tls_failed), unless some version is undecided: then its rejections are findings too.
    scan.connected = any(scan.versions.values()) or bool(scan.undecided)
    if chain:
        scan.chain_pem = chain
        facts = certificate_facts(chain, target.mx_host)
        scan.certificate, scan.chain, scan.trusted_mozilla = (
            facts.certificate, facts.chain, facts.trusted_mozilla)
        scan.errors.extend(facts.errors)
    return scan


def _suite(lane: Lane, accepted: _Accepted) -> CipherSuite:
    return next(s for s in lane.suites if s.openssl_name == accepted.openssl_name)


def _accepted_cipher(version: TlsVersion, suite: CipherSuite,
                     key: EphemeralKeyInfo | None) -> AcceptedCipher:
    family = None if key is None else ("DHE" if isinstance(key, DhEphemeralKeyInfo) else "ECDHE")
    return accepted_cipher(version.label, suite.name, key_bits=suite.key_size,
                           anonymous=suite.is_anonymous, group_family=family)


_store_lock = threading.Lock()


def _mozilla_store() -> TrustStore:
    with _store_lock:  # sslyze's repository is not thread-safe to create
        return TrustStoresRepository.get_default().get_main_store()


@dataclass
class CertificateFacts:
    """A presented chain judged for one name: its leaf's summary, the chain as DER and whether
    it validates against the Mozilla store bundled with sslyze."""

    certificate: CertSummary | None = None
    chain: list[bytes] = field(default_factory=list)
    trusted_mozilla: bool | None = None
    errors: list[str] = field(default_factory=list)


def certificate_facts(chain: list[str], name: str) -> CertificateFacts:
    """:class:`CertificateFacts` of ``chain`` (PEM, leaf first) for the MX host ``name``."""
    found = CertificateFacts()
    try:
        leaf = x509.load_pem_x509_certificate(chain[0].encode("ascii"))
    except ValueError as exc:
        found.errors.append(f"certificate: does not parse ({exc})")
        return found
    found.certificate = summarise(leaf, name)
    with contextlib.suppress(ValueError):
        found.chain = [x509.load_pem_x509_certificate(pem.encode("ascii")).public_bytes(
            serialization.Encoding.DER) for pem in chain]
    with warnings.catch_warnings():
        # The bundled Mozilla store holds a root with a negative serial number; cryptography
        # warns about it on load, which says nothing about the host.
        warnings.filterwarnings("ignore", message="Parsed a serial number which wasn't positive")
        store = _mozilla_store()
        try:
            validation = store.verify_certificate_chain(chain, DNSName(name))
        except ValueError as exc:
            found.errors.append(f"certificate: cannot be validated ({exc})")
            return found
    found.trusted_mozilla = validation.was_validation_successful
    return found
