"""The probe engine's scan of one address: every lane, within the sessions the address allows.

A lane (one TLS version with one of nassl's clients, :mod:`research.scan.engine.lanes`) is
enumerated by iterative removal: offer every suite of the lane, note the one the server
chooses, remove it and offer the rest, until the server refuses. That is a chain of sessions,
one after another, and the TLS 1.2 lanes are long ones: run lane by lane, an address's time
is its longest lane, however many connections it may have open.

So a lane's remaining suites can be split into *parts*, each enumerated by iterative removal
on its own: the server accepts from a part exactly the suites of it that it would accept from
the whole, so the union of the parts' accepted suites is the lane's, at the cost of one more
refusing session per extra part. Up to ``per_host_connections`` workers take parts (the lanes,
longest first); a running part gives every other one of its remaining suites to a new part
only while a worker is idle with nothing else waiting, it is the running part with the most
suites left, and the address would let one more session be open and let through: the
concurrency its gate has learned, its provider's connections, and the sessions its provider's
rate starts in the time one session takes (:meth:`AddressGate.useful_concurrency`). A host's
time then approaches its sessions ÷ the connections it may have open × one session's time.
Versions mode stops a lane at its first accepted suite and SSL 2.0 answers a lane in one
session: neither is split; nor is anything with ``per_host_connections`` of 1 (one session
after another). :attr:`EngineScan.parts` says how many parts were asked.

Every session passes the address's gate (:mod:`research.scan.limits`), which learns the
address's limits from the sessions it refuses; a refused session is tried again when the gate
allows, a silent one after a pause, up to ``retries`` times in a row. Once the address is given
up (silent too often, or its time budget spent) no part opens another session, and what was
not decided is reported in ``undecided``, never as rejected.
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
    parts: int = 0
    """Parts the enumeration was asked in: one per lane, plus one per split (module doc);
    each part beyond the lanes cost one session more than enumerating its lane whole."""


@dataclass
class _LaneResult:
    lane: Lane
    accepted: list[_Accepted] = field(default_factory=list)
    decided: bool = False
    """Every suite of the lane was answered (accepted or rejected)."""
    chain: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class _Part:
    """Some of a lane's suites, enumerated by iterative removal on their own."""

    lane: Lane
    remaining: list[CipherSuite]
    result: _LaneResult
    """What the part found, merged into its lane's result when it ends."""


class _Parts:
    """The parts of one scan waiting for a connection, and the workers running them (module
    doc): a running part gives half of its remaining suites to an idle worker while nothing
    else waits and the address would let one more session be open."""

    def __init__(self, work: Sequence[Lane], workers: int, gate: AddressGate,
                 split: bool) -> None:
        self._cond = threading.Condition()
        self._waiting = [_Part(lane, list(lane.suites), _LaneResult(lane)) for lane in work]
        self._running: list[_Part] = []
        self._workers = workers
        self._gate = gate
        self._split = split
        self._found: dict[Lane, list[_LaneResult]] = {
            part.lane: [part.result] for part in self._waiting}
        self.asked = len(self._waiting)
        """Parts asked: one per lane, one more per split."""

    def take(self) -> _Part | None:
        """The next part to run, waiting while a running part may still give one; None when
        every part is done."""
        with self._cond:
            while True:
                if self._waiting:
                    part = self._waiting.pop(0)
                    self._running.append(part)
                    return part
                if not self._running:
                    return None
                self._cond.wait()

    def want_chain(self, lane: Lane) -> bool:
        """No part of ``lane`` has the certificate chain yet."""
        with self._cond:
            return not any(found.chain for found in self._found[lane])

    def maybe_split(self, part: _Part) -> None:
        """Give half of ``part``'s remaining suites to an idle worker, if one is idle, no other
        part waits, ``part`` is the running part with the most suites left, and the address
        (and its provider) would let one more session be open at once."""
        if not self._split or len(part.remaining) < 2 or part.lane.version.label == "SSL 2.0":
            # One SSL 2.0 SERVER-HELLO lists every cipher the server shares: nothing to split.
            return
        with self._cond:
            if self._waiting or len(self._running) >= self._workers:
                return
            if any(len(p.remaining) > len(part.remaining) for p in self._running):
                return
        allowed = self._gate.useful_concurrency()  # outside our lock: it takes the gate's
        with self._cond:
            if self._waiting or len(self._running) >= min(self._workers, allowed):
                return
            # Every other suite, so that both halves keep a share of the lane's kinds of suite
            # (sorted by name, a server's accepted suites sit together).
            given = part.remaining[1::2]
            part.remaining[:] = part.remaining[::2]
            given_part = _Part(part.lane, given, _LaneResult(part.lane))
            self._waiting.append(given_part)
            self._found[part.lane].append(given_part.result)
            self.asked += 1
            self._cond.notify_all()

    def done(self, part: _Part) -> None:
        with self._cond:
            self._running.remove(part)
            self._cond.notify_all()

    def results(self) -> list[_LaneResult]:
        """Each lane's parts merged: the union of what they accepted; decided if every part
        was; the first chain and the first error."""
        merged = []
        for lane, found in self._found.items():
            result = _LaneResult(lane, decided=all(f.decided for f in found))
            for one in found:
                result.accepted.extend(one.accepted)
                result.chain = result.chain or one.chain
                result.error = result.error or one.error
            merged.append(result)
        return merged


def _run_part(target: TlsTarget, settings: ProbeSettings, part: _Part, parts: _Parts,
              gate: AddressGate) -> None:
    """Iterative removal over ``part``'s suites: its result says what it found."""
    lane, result, remaining = part.lane, part.result, part.remaining
    by_name = {s.openssl_name: s for s in lane.suites}
    while remaining:
        parts.maybe_split(part)
        want_chain = not result.chain and parts.want_chain(lane)
        # A TLS 1.3 suite's name does not say its key exchange: the ciphers table needs it.
        want_key = settings.engine is Engine.FULL and lane.version.label == "TLS 1.3"
        outcome = _attempt(target, settings, lane, remaining, gate, want_chain=want_chain,
                           want_key=want_key)
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
                return
            remaining.remove(suite)
            result.accepted.append(outcome)
            result.chain = result.chain or outcome.chain
            if settings.engine is Engine.VERSIONS:
                break
        elif isinstance(outcome, _Rejected | _Exhausted):
            break
        else:
            result.error = outcome.reason
            return
    result.decided = True

def _attempt(target: TlsTarget, settings: ProbeSettings, lane: Lane,
             offered: Sequence[CipherSuite], gate: AddressGate, *, want_chain: bool,
             want_key: bool) -> _Outcome:
    silent = 0
    while True:
        permit = gate.acquire()
        if permit is None:
            return _Failed(f"not asked: {gate.gave_up}")
        outcome = run_session(target, settings, lane, offered, want_chain, want_key,
                              permit.greeted)
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
    # Versions mode stops a lane at its first accepted suite: a part would only add a session.
    split = settings.engine is not Engine.VERSIONS and settings.per_host_connections > 1
    workers = max(1, settings.per_host_connections if split
                  else min(settings.per_host_connections, len(work)))
    parts = _Parts(work, workers, gate, split)

    def worker() -> None:
        while (part := parts.take()) is not None:
            try:
                _run_part(target, settings, part, parts, gate)
            finally:
                parts.done(part)

    if workers == 1:
        worker()
    else:
        # As many parts at once as the survey allows an address; the gate may allow fewer.
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lane") as pool:
            for running in [pool.submit(worker) for _ in range(workers)]:
                running.result()
    scan = _combine(target, settings.engine, parts.results())
    scan.parts = parts.asked
    gate.count_parts(parts.asked)
    return scan


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
    outcome = _attempt(target, settings, lane, scan.certificate_suites, gate, want_chain=True,
                       want_key=False)
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
