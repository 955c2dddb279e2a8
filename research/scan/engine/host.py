"""The probe engine's scan of one host: every lane, within the connections the host allows.

A lane is enumerated by iterative removal: offer every suite of the lane, note the one the
server chooses, remove it and offer the rest, until the server refuses. A session that got no
answer pauses the whole host with exponential backoff and is retried; when the retries run out,
the host is left alone — no lane opens another session to it — and what was not decided is
reported in ``undecided``, never as rejected.
"""

from __future__ import annotations

import contextlib
import threading
import time
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

from research.policy.certs import summarise
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
from research.settings import ProbeSettings
from research.store.schema import TLS_VERSIONS, Engine, TlsVersion


@dataclass
class EngineScan(TlsScan):
    """A :class:`TlsScan` from this engine, with what it could not decide and what it cost."""

    undecided: list[str] = field(default_factory=list)
    """Labels of versions not decided (``TLS 1.2``), or of versions found accepted whose suite
    list may be incomplete (``TLS 1.2 suites``); empty when everything was decided."""
    sessions: int = 0
    """SMTP sessions (TCP connections) this scan opened."""


class _HostGate:
    """Pauses every lane of one host after a session that got no answer, and closes for good
    once one lane has run out of retries: the host has stopped talking to us, and the other
    lanes would only spend their own retries on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0
        self.sessions = 0
        self.gave_up: str | None = None
        """Why the host was given up on; None while it still answers."""

    def wait(self) -> bool:
        """Wait out any pause and count a session; False (no session) once given up."""
        while True:
            with self._lock:
                if self.gave_up is not None:
                    return False
                delay = self._until - time.monotonic()
                if delay <= 0:
                    self.sessions += 1
                    return True
            time.sleep(delay)

    def give_up(self, reason: str) -> None:
        with self._lock:
            self.gave_up = self.gave_up or reason

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)


@dataclass
class _LaneResult:
    lane: Lane
    accepted: list[_Accepted] = field(default_factory=list)
    decided: bool = False
    """Every suite of the lane was answered (accepted or rejected)."""
    chain: list[str] = field(default_factory=list)
    error: str | None = None


def _run_lane(target: TlsTarget, settings: ProbeSettings, lane: Lane,
              gate: _HostGate) -> _LaneResult:
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
             offered: Sequence[CipherSuite], want_chain: bool, gate: _HostGate) -> _Outcome:
    last: _Outcome = _NoAnswer("not tried")
    for attempt in range(settings.retries + 1):
        if not gate.wait():
            return _Failed(f"not asked: {gate.gave_up}")
        last = run_session(target, settings, lane, offered, want_chain)
        if not isinstance(last, _NoAnswer):
            return last
        if attempt < settings.retries:
            gate.pause(settings.backoff * 2**attempt)
    assert isinstance(last, _NoAnswer)
    tries = settings.retries + 1
    reason = f"{last.reason} ({tries} attempt{'s' if tries > 1 else ''})"
    gate.give_up(f"host stopped answering: {reason}")
    return _Failed(reason)


def scan_host(target: TlsTarget, settings: ProbeSettings) -> EngineScan:
    """Versions (and, in ``full`` mode, accepted suites) and the certificate of one target.

    Never raises for what the server does: failures are in ``errors`` and ``undecided``.
    Raises ValueError for the ``sslyze`` engine, which this function does not run.
    """
    work = lanes(settings.engine)
    gate = _HostGate()

    def run(lane: Lane) -> _LaneResult:
        return _run_lane(target, settings, lane, gate)

    if settings.per_host_connections <= 1:
        results = [run(lane) for lane in work]
    else:
        with ThreadPoolExecutor(max_workers=min(settings.per_host_connections, len(work)),
                                thread_name_prefix="lane") as pool:
            results = list(pool.map(run, work))
    scan = _combine(target, settings.engine, results)
    scan.sessions = gate.sessions
    return scan


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
        chain = next((r.chain for r in mine if r.chain), chain)
        if engine is Engine.FULL:
            found = [(_suite(r.lane, a), a) for r in mine for a in r.accepted]
            # sslyze's order: by IANA name, descending.
            for suite, hit in sorted(found, key=lambda pair: pair[0].name, reverse=True):
                scan.ciphers.append(_accepted_cipher(version, suite, hit.ephemeral_key))
    # As for sslyze, a host where no handshake ever succeeded has no version columns (status
    # tls_failed), unless some version is undecided: then its rejections are findings too.
    scan.connected = any(scan.versions.values()) or bool(scan.undecided)
    if chain:
        _add_certificate(scan, chain)
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


def _add_certificate(scan: EngineScan, chain: list[str]) -> None:
    host = scan.target.mx_host
    try:
        leaf = x509.load_pem_x509_certificate(chain[0].encode("ascii"))
    except ValueError as exc:
        scan.errors.append(f"certificate: does not parse ({exc})")
        return
    scan.certificate = summarise(leaf, host)
    with contextlib.suppress(ValueError):
        scan.chain = [x509.load_pem_x509_certificate(pem.encode("ascii")).public_bytes(
            serialization.Encoding.DER) for pem in chain]
    with warnings.catch_warnings():
        # The bundled Mozilla store holds a root with a negative serial number; cryptography
        # warns about it on load, which says nothing about the host.
        warnings.filterwarnings("ignore", message="Parsed a serial number which wasn't positive")
        store = _mozilla_store()
        try:
            validation = store.verify_certificate_chain(chain, DNSName(host))
        except ValueError as exc:
            scan.errors.append(f"certificate: cannot be validated ({exc})")
            return
    scan.trusted_mozilla = validation.was_validation_successful
