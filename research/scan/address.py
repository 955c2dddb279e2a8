"""One address (IP, port) surveyed from start to end for every MX name that points at it: the
task a dispatcher runs wherever it runs (:mod:`research.scan.dispatch`).

Mail is concentrated: a provider gives each customer domain an MX name of its own on a small
pool of shared addresses. What a server does before TLS cannot depend on the name the client
looked up — only the certificate can, through SNI — so the address is the unit of probing:

1. the SMTP probe and the TLS enumeration (versions, accepted suites, certificate) run once,
   with the first (in name order) of the MX names known when it starts;
2. each further name costs at most one session: a handshake with SNI set to that name, for its
   own certificate and name verdicts; where no handshake works there is nothing to ask by name,
   and it costs none.

Every session passes the address's gate (:mod:`research.scan.limits`), so the address's
connection cap, pauses and learned limits hold across all its names; the provider's gate paces
it with the provider's other addresses. The task returns one ``host`` record per (name, IP) —
the ``hosts`` contract is unchanged — and the address's ``address_probe`` record last.

A streaming survey (:mod:`research.scan.survey`) probes an address as soon as it is known, so a
further name may point at it only once its probe has started or finished. The probe therefore
also hands back a :class:`KnownAddress`; a name that arrives late is a :class:`FollowUp` of it:
one session with that name's SNI, under the address's learned limits, exactly the session it
would have cost in the task. N names still cost one enumeration and at most N−1 sessions.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from research.policy.pki import CertTrust
from research.scan.engine import (
    EngineScan,
    TlsTarget,
    certificate_facts,
    certificate_for,
    scan_host,
)
from research.scan.limits import (
    PROVIDERS,
    THROTTLING_CODES,
    AddressGate,
    AddressLimits,
    Signal,
    register,
    unregister,
)
from research.scan.smtp import SmtpProbe, probe_smtp
from research.scan.target import certificate_columns, certificate_fields, host_record, trust_for
from research.settings import ProbeSettings
from research.store.records import Record, RecordKind, now
from research.store.schema import HostStatus


@dataclass(frozen=True)
class AddressTask:
    """One address to survey, with everything the worker needs (picklable)."""

    ip: str
    port: int
    names: tuple[str, ...]
    """The MX names that point here, the one probed in full first."""
    provider: str
    """Whose limits its sessions share (:func:`research.policy.names.provider_of`)."""
    survey: str
    """Which survey it belongs to: provider gates are per survey."""
    learned: dict[str, Any] | None = None
    """An earlier run's ``address_probe`` record of it, to start from."""


@dataclass(frozen=True)
class KnownAddress:
    """An address probed in full, kept by the survey so that a name arriving later costs one
    session, not another enumeration (picklable)."""

    task: AddressTask
    """The task as probed: its names so far."""
    base: Record
    """The ``host`` record of the name probed in full."""
    scan: EngineScan | None
    """Its TLS scan (None: no STARTTLS), whose certificate lane a further name reuses."""
    probe: Record
    """Its latest ``address_probe`` record: what probing it has cost and taught so far."""


@dataclass(frozen=True)
class FollowUp:
    """Names that point at an address already probed in full: one session each at most."""

    known: KnownAddress
    names: tuple[str, ...]

    @property
    def ip(self) -> str:
        return self.known.task.ip

    @property
    def port(self) -> int:
        return self.known.task.port

    @property
    def provider(self) -> str:
        return self.known.task.provider


AddressWork = AddressTask | FollowUp
"""What a dispatcher runs for one address."""


@dataclass(frozen=True)
class AddressOutcome:
    """What a piece of :data:`AddressWork` returns: its raw-log records (the ``host`` records,
    the ``address_probe`` record last) and the address as now known."""

    records: list[Record]
    known: KnownAddress


def run_work(work: AddressWork, settings: ProbeSettings) -> AddressOutcome:
    """:func:`probe_address` of a task, or :func:`follow_up` of a follow-up; runs wherever the
    executor puts it."""
    if isinstance(work, FollowUp):
        return follow_up(work, settings)
    return probe_address(work, settings)


def probe_address(task: AddressTask, settings: ProbeSettings) -> AddressOutcome:
    """Probe ``task``'s address for all its names: its ``host`` records, then its
    ``address_probe`` record, and the address as known afterwards. Runs wherever the executor
    puts it. Never raises for what the server does."""
    trust = trust_for(settings.trust_ca)
    provider = PROVIDERS.get(task.survey, task.provider, settings)
    learned = (AddressLimits.from_record(task.learned, settings.per_host_connections)
               if task.learned else None)
    gate = AddressGate(settings, provider, learned)
    register(task.survey, task.ip, task.port, gate)
    try:
        first = task.names[0]
        probe = _probe(first, task, settings, gate)
        scan: EngineScan | None = None
        if probe.starttls_accepted:
            scan = scan_host(TlsTarget(first, task.ip, task.port), settings, gate)
        base = host_record(probe, scan, trust=trust)
        if scan is not None:
            base["undecided"] = scan.undecided
        records = [base, *_name_records(base, scan, task.names[1:], task, settings, gate,
                                        trust)]
        last = address_record(task, gate.limits, budget_spent=gate.budget_spent,
                              duration_s=time.monotonic() - gate.started, finished=True)
        records.append(last)
        return AddressOutcome(records, KnownAddress(task, _kept_record(base), _kept_scan(scan),
                                                    last))
    finally:
        unregister(task.survey, task.ip, task.port)


def _kept_record(base: Record) -> Record:
    """What a follow-up needs of the full name's record: all but its certificate rows, which
    every further name replaces with its own (kept per address, so small matters)."""
    return {k: v for k, v in base.items() if k != "certificates"}


def _kept_scan(scan: EngineScan | None) -> EngineScan | None:
    """What a follow-up needs of the scan (:func:`certificate_for`): the certificate lane, its
    accepted suites and the chain, not the findings."""
    if scan is None:
        return None
    return EngineScan(target=scan.target, certificate_lane=scan.certificate_lane,
                      certificate_suites=scan.certificate_suites, chain_pem=scan.chain_pem)


def follow_up(work: FollowUp, settings: ProbeSettings) -> AddressOutcome:
    """The ``host`` records of ``work``'s late names, then the address's ``address_probe``
    record updated (all its names, its sessions counted from the first): a gate that starts from
    what the address taught, one session per name where a handshake works (none otherwise)."""
    known = work.known
    task = replace(known.task, names=known.task.names + work.names)
    trust = trust_for(settings.trust_ca)
    provider = PROVIDERS.get(task.survey, task.provider, settings)
    gate = AddressGate(settings, provider,
                       AddressLimits.from_record(known.probe, settings.per_host_connections))
    register(task.survey, task.ip, task.port, gate)
    try:
        records = _name_records(known.base, known.scan, work.names, task, settings, gate, trust)
        spent = time.monotonic() - gate.started
        last = address_record(task, gate.limits,
                              budget_spent=bool(known.probe.get("budget_spent"))
                              or gate.budget_spent,
                              duration_s=(known.probe.get("duration_s") or 0.0) + spent,
                              finished=True)
        records.append(last)
        return AddressOutcome(records, replace(known, task=task, probe=last))
    finally:
        unregister(task.survey, task.ip, task.port)


def address_record(task: AddressTask, limits: AddressLimits, *, budget_spent: bool,
                   duration_s: float | None, finished: bool) -> Record:
    """The ``address_probe`` record of ``task``: what probing it cost and learned. Its names,
    in name order, are the task's and those an earlier run's record of it named (resumed)."""
    names = sorted({*((task.learned or {}).get("mx_hosts") or []), *task.names})
    return {"kind": RecordKind.ADDRESS_PROBE.value, "ip": task.ip, "port": task.port,
            "provider": task.provider, "mx_hosts": names, **limits.as_record(),
            "budget_spent": budget_spent, "duration_s": duration_s, "finished": finished,
            "probed_at": now()}


def _signal(probe: SmtpProbe) -> Signal:
    if probe.greeting_code in THROTTLING_CODES:
        return Signal.THROTTLED
    if probe.status is HostStatus.REFUSED:
        return Signal.DROPPED
    if probe.status is HostStatus.TIMEOUT:
        return Signal.SILENT
    return Signal.ANSWERED


def _probe(name: str, task: AddressTask, settings: ProbeSettings, gate: AddressGate
           ) -> SmtpProbe:
    """The SMTP probe, tried again while the greeting says "not now" (421, 450, 451) and the
    address's budget lasts; any other outcome, a refusal or silence included, is final."""
    last: SmtpProbe | None = None
    while True:
        permit = gate.acquire()
        if permit is None:
            break
        probe = probe_smtp(name, task.ip, settings)
        permit.greeted(probe.greeting_s)
        signal = _signal(probe)
        permit.release(signal, probe.error)
        if signal is not Signal.THROTTLED:
            return probe
        last = probe
    if last is None:
        return SmtpProbe(name, task.ip, task.port, status=HostStatus.TIMEOUT,
                         error=f"not probed: {gate.gave_up}")
    # How many attempts that took is in the address's row (``throttled``): timing, not a result.
    why = (f"time budget of {settings.host_budget:g} s spent" if gate.budget_spent
           else gate.gave_up)
    last.error = f"{last.error} (tried again until: {why})"
    return last


def _name_records(base: Record, scan: EngineScan | None, names: tuple[str, ...],
                  task: AddressTask, settings: ProbeSettings, gate: AddressGate,
                  trust: CertTrust) -> list[Record]:
    """The records of further MX names on the address (:func:`_name_record`), as many at once
    as the address may have connections."""
    if not names:
        return []
    with ThreadPoolExecutor(max_workers=min(settings.per_host_connections, len(names)),
                            thread_name_prefix="name") as pool:
        return list(pool.map(
            lambda name: _name_record(base, scan, name, task, settings, gate, trust), names))


def _name_record(base: Record, scan: EngineScan | None, name: str, task: AddressTask,
                 settings: ProbeSettings, gate: AddressGate, trust: CertTrust) -> Record:
    """The record of a further MX name on the address: the address's findings, with this
    name's own certificate and verdicts when a handshake works."""
    record = {**base, "mx_host": name, "scanned_at": now()}
    status = base["status"]
    if status != HostStatus.STARTTLS.value:
        # Nothing was, or could be, asked by name: the address's answer is the name's.
        record.update(certificate_fields(status, [], name, trust))
        return record
    gate.extend(settings.host_budget)
    chain: list[str] = []
    error: str | None = "no handshake to ask for this name's certificate with"
    if scan is not None:
        chain, error = certificate_for(TlsTarget(name, task.ip, task.port), settings, gate, scan)
    errors = [e for e in (base.get("error"),) if e]
    if not chain:
        record.update(certificate_columns(None))
        record.update({"cert_trusted_mozilla": None, "certificates": [], "webpki_result": None,
                       "cert_chain_trusted": None, "cert_expired": None,
                       "cert_trust_error": None, "cert_chain_length": None,
                       "cert_key_type": None, "cert_key_bits": None,
                       "cert_signature_algorithm": None})
        record["undecided"] = [*base.get("undecided", []), "certificate"]
        record["error"] = "; ".join([*errors, error or "no certificate"])
        return record
    facts = certificate_facts(chain, name)
    record.update(certificate_columns(facts.certificate))
    record["cert_trusted_mozilla"] = facts.trusted_mozilla
    record.update(certificate_fields(status, facts.chain, name, trust))
    record["error"] = "; ".join([*errors, *facts.errors]) or None
    return record
