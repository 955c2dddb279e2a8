"""The survey runner: domains → MX → (MX host, IP) targets → addresses → SMTP probe → TLS scan.

A stream, not phases: each piece of work starts as soon as what it needs is known. A domain's
MX answer starts its MX names' address lookups at once; an address is probed as soon as an
answer names it; a domain's MTA-STS, TLS-RPT and MX DNSSEC lookups and its MX names' TLSA
lookups (:mod:`research.scan.lookups`) run beside the probes. Nothing waits for the slowest
domain of a phase. Domains are read from the list only while the work in flight is below a
bound, so memory does not grow with the list.

Each address is probed once however many MX names and domains share it
(:mod:`research.scan.address`); a name that points at it only once its probe has started is a
follow-up of the address (one session for that name's certificate), so N names still cost one
enumeration and at most N−1 sessions; an address of many names is worked in parts of
:data:`NAMES_PER_WORK`. Every finished domain, address lookup, host and address
probe is appended to the raw log at once, so ``resume=True`` skips all finished work and starts
the unfinished addresses from the limits they were learned to have; an interrupt (Ctrl-C,
SIGTERM through the CLI) still records what the addresses being probed had taught and writes
the tables of what finished. Names and addresses on the opt-out list are recorded as
``opted_out`` and never contacted.

The TLS scan is this project's engine (:mod:`research.scan.engine`: ``full`` or ``versions``), one
task per address on local threads or a caller's executor (:class:`research.scan.dispatch.
AddressQueue`), or, with ``engine="sslyze"``, sslyze's own per-suite scan of each (MX host, IP)
(:mod:`research.scan.engine.sslyze`) for cross-checks, after the stream.
"""

from __future__ import annotations

import queue
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import closing
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import dns.resolver
from tqdm.auto import tqdm

from research.errors import InputError
from research.memory import give_back_memory
from research.policy.names import provider_of
from research.scan import dispatch, lookups
from research.scan.address import (
    AddressOutcome,
    AddressTask,
    AddressWork,
    FollowUp,
    KnownAddress,
    address_record,
)
from research.scan.engine import TlsTarget
from research.scan.engine.sslyze import scan_tls
from research.scan.inputs import DomainInput, DomainList, from_arguments
from research.scan.limits import live
from research.scan.mx import resolve_addresses, resolve_mx
from research.scan.optout import OptOutList, read_opt_out
from research.scan.resolver import describe_resolver, make_resolver
from research.scan.smtp import SmtpProbe, probe_smtp
from research.scan.target import host_record, trust_for
from research.settings import SurveySettings
from research.store.diskmap import DiskMap
from research.store.files import RAW_LOG_NAME
from research.store.rawlog import RawLogWriter, read_records, repair
from research.store.records import (
    Record,
    RecordKind,
    address_key,
    domain_key,
    host_key,
    not_contacted,
    now,
)
from research.store.schema import MAIL_DNS_STATUSES, DnsStatus, Engine, HostStatus

if TYPE_CHECKING:
    from research.store.results import SurveyResults

T = TypeVar("T")
R = TypeVar("R")


def run_survey(
    domains: DomainList | Iterable[str],
    out_dir: str | Path,
    settings: SurveySettings | None = None,
    *,
    resume: bool = False,
    progress: bool | None = None,
    executor: Any = None,
) -> SurveyResults:
    """Survey ``domains`` with ``settings`` and write the raw log, the tables and ``meta.json``
    into ``out_dir``.

    The per-run choices: ``resume`` continues the survey already in ``out_dir``, skipping all
    finished work; ``progress=None`` shows progress bars on a terminal or in a notebook only;
    ``executor`` (a ``concurrent.futures.Executor`` or a Dask client) runs the host probes
    instead of local threads, at most ``settings.concurrency`` in flight (the ``sslyze`` engine
    always runs in this process). On KeyboardInterrupt the tables of the work finished so far
    are written, then the interrupt propagates.

    Raises:
        InputError: an unusable opt-out list, an ``out_dir`` that cannot be written, an
            ``out_dir`` that already holds a survey without ``resume``, ``resume`` with a
            different domain list, a ``trust_ca``/``dnssec_anchor`` file that cannot be used, or
            an ``executor`` that is not one.
        KeyboardInterrupt: passed on, after writing the tables.
    """
    settings = settings or SurveySettings()
    opt_out = read_opt_out(settings.opt_out) if settings.opt_out else None
    domain_list = domains if isinstance(domains, DomainList) else from_arguments(domains)
    resolver = make_resolver(settings.resolvers, timeout=settings.timeout)
    context = lookups.make_context(resolver, settings, opt_out)
    trust_for(settings.trust_ca)  # a --trust-ca that cannot be used fails before any probe
    out = _prepare_out_dir(Path(out_dir), resume)
    log_path = out / RAW_LOG_NAME
    repair(log_path)
    done = _Done.from_log(log_path, domain_list)
    try:
        if done.opt_out is not None and opt_out is None:
            # Resuming without the list would contact exactly those who asked not to be.
            raise InputError(f"{out}: this survey was started with the opt-out list "
                             f"{done.opt_out}; pass --opt-out again to resume it")
        with (RawLogWriter(log_path) as writer,
              closing(_Run(settings, resolver, writer, done, progress, context, opt_out,
                           executor)) as run):
            writer.append(run.start_record(domain_list))
            try:
                run.stream(domain_list)
                if run.sslyze:
                    run.scan_with_sslyze()
            except KeyboardInterrupt:
                run.record_learned()
                raise
            writer.append({"kind": RecordKind.FINISH.value, "finished_at": now()})
    except KeyboardInterrupt:
        # Whatever finished is in the raw log: give the user its tables before stopping.
        _write_tables(log_path, out)
        raise
    finally:
        done.close()
    # Streamed from the raw log: memory stays flat however many hosts were scanned.
    return _write_tables(log_path, out)


def _write_tables(log_path: Path, out: Path) -> SurveyResults:
    # What the stream freed goes back to the system before the tables' libraries and batches
    # are laid on top of it. The tables need pandas and pyarrow, which the stream does not:
    # they load once the probes are done, not before the first one.
    give_back_memory()
    from research.store.tables import write_tables

    return write_tables(log_path, out)


def _prepare_out_dir(out: Path, resume: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: output path exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"{out}: output directory is not writable ({exc.strerror})") from None
    log = out / RAW_LOG_NAME
    if log.exists() and log.stat().st_size and not resume:
        raise InputError(
            f"{out} already holds a survey; pass --resume to continue it, or choose another --out"
        )
    return out


@dataclass
class _Done:
    """What is done: what an earlier run of the same survey finished (empty for a fresh survey),
    and the names and domains this run has seen to. Per domain and per name, so on disk
    (:class:`DiskMap`): it grows with the list."""

    domains: DiskMap[Record] = field(default_factory=lambda: DiskMap(int, str))
    """(rank, input) → the domain's record, from an earlier run."""
    addresses: DiskMap[Record] = field(default_factory=lambda: DiskMap(str))
    """MX host name → its address lookup."""
    hosts: DiskMap[None] = field(default_factory=lambda: DiskMap(str, str))
    """:func:`host_key` of each host an earlier run recorded (``(name, "")``: no address)."""
    probes: dict[tuple[str, int], Record] = field(default_factory=dict)
    """(IP, port) → its latest address probe record: what it was learned to allow."""
    opt_out: str | None = None
    """The opt-out list an earlier run used, if any."""
    policies: DiskMap[None] = field(default_factory=lambda: DiskMap(str))
    """Domains whose policy lookups are done."""
    tlsa: DiskMap[None] = field(default_factory=lambda: DiskMap(str))
    """MX names whose TLSA lookup is done or asked."""

    @classmethod
    def from_log(cls, path: Path, domain_list: DomainList) -> _Done:
        done = cls()
        try:
            done._read(path, domain_list)
        except BaseException:
            done.close()
            raise
        return done

    def _read(self, path: Path, domain_list: DomainList) -> None:
        for record in read_records(path):
            kind = record.get("kind")
            if kind == RecordKind.START and record.get("domain_list_sha256") != domain_list.sha256:
                # The checksum covers the entries taken (see read_domain_list), so the same
                # file with the same --top resumes, and anything else is another list.
                started = _describe_list(record.get("domain_list"), record.get("domain_list_top"),
                                         record.get("domain_list_sha256"))
                given = _describe_list(domain_list.source, domain_list.top, domain_list.sha256)
                raise InputError(f"{path.parent}: --resume with a different domain list than "
                                 f"the one started (started: {started}; given: {given})")
            if kind == RecordKind.START:
                self.opt_out = (record.get("options") or {}).get("opt_out") or self.opt_out
            if kind == RecordKind.DOMAIN:
                self.domains[domain_key(record)] = record
            elif kind == RecordKind.ADDRESSES:
                self.addresses[record["mx_host"]] = record
            elif kind == RecordKind.HOST:
                self.hosts.add(host_key(record))
            elif kind == RecordKind.ADDRESS_PROBE:
                self.probes[address_key(record)] = record
            elif kind == RecordKind.POLICY:
                self.policies.add(record["domain"])
            elif kind == RecordKind.TLSA:
                self.tlsa.add(record["mx_host"])

    def close(self) -> None:
        for index in (self.domains, self.addresses, self.hosts, self.policies, self.tlsa):
            index.close()


def _describe_list(source: object, top: object, sha256: object) -> str:
    return (f"{source}" + (f" --top {top}" if top else "")
            + f", SHA-256 {str(sha256)[:12] if sha256 else 'unknown'}")


def _entry_key(entry: DomainInput) -> tuple[int, str]:
    return entry.rank, entry.input


WAKE_S = 1.0
"""Longest the stream's loop sleeps: how soon Ctrl-C or SIGTERM is handled at the latest."""
NAMES_PER_WORK = 16
"""Most MX names one piece of address work takes; the others wait for the follow-ups after it.
A provider may give thousands of customers' names one address: cut this way, what a task holds
and hands back (a ``host`` record per name) stays small however long the list, and each part
is in the raw log as soon as it is done. The names cost the same sessions either way (one each
after the first); each part adds an ``address_probe`` record."""
LOOKUPS_PER_WORKER = 4
"""Domains are taken from the list while the policy and TLSA lookups waiting or running are
below this many per lookup thread: enough to keep every thread busy, and no more in memory."""


class _Stage(Enum):
    """A kind of work in the stream, named as its progress bar is."""

    MX = "DNS domains"
    ADDRESSES = "DNS MX hosts"
    PROBE = "addresses"
    POLICY = "MTA-STS domains"
    TLSA = "TLSA hosts"


@dataclass(frozen=True, slots=True)
class _LateNames:
    """Names of an address already probed in full (they came later, or did not fit in its
    task), waiting in the address queue for their follow-up (:meth:`_Run._work` makes it)."""

    ip: str
    port: int
    provider: str
    names: tuple[str, ...]


@dataclass
class _Domain:
    """A domain whose record waits for its MX names' address answers (the alias note)."""

    record: Record
    waiting: int = 0


class _Run:
    def __init__(
        self,
        settings: SurveySettings,
        resolver: dns.resolver.Resolver,
        writer: RawLogWriter,
        done: _Done,
        progress: bool | None,
        context: lookups.EnforcementContext,
        opt_out: OptOutList | None,
        executor: Any,
    ) -> None:
        self.context = context
        self.opt_out = opt_out
        self.settings = settings
        self.port = settings.probe.port
        self.resolver = resolver
        self.writer = writer
        self.done = done
        self.progress = progress
        self.lock = threading.Lock()
        self.executor = executor
        self.survey_id = uuid.uuid4().hex
        """Names this run's provider gates, in every process that probes for it."""
        self.sslyze = settings.probe.engine is Engine.SSLYZE
        self.events: queue.SimpleQueue[tuple[_Stage, Future[Any]]] = queue.SimpleQueue()
        """Work finished, from whichever thread finished it: the stream's completion queue."""
        self.in_flight: Counter[_Stage] = Counter()
        """Work of each stage submitted and not yet handled (address probes not counted)."""
        self.addresses: dispatch.AddressQueue | None = None
        self._bars: dict[_Stage, Any] = {}
        self.hosts_seen: DiskMap[None] = DiskMap(str)
        self.resolving: dict[str, list[_Domain]] = {}
        """MX name whose address lookup is in flight → the domains that wait for it."""
        self.tasks: dict[tuple[str, int], AddressTask] = {}
        """(IP, port) → its work in the queue (waiting or running), as a task of all its
        names."""
        self.late: dict[tuple[str, int], list[str]] = {}
        """(IP, port) → names that wait for its work in the queue to finish (they arrived while
        it ran, or its task was full): its next follow-ups."""
        self.known: DiskMap[KnownAddress] = DiskMap(str, int)
        """(IP, port) → the address as probed in full by this run, for the follow-ups of late
        names (on disk: one per address, each with its accepted suites and chain)."""
        self.sslyze_targets: list[TlsTarget] = []

    def close(self) -> None:
        self.hosts_seen.close()
        self.known.close()

    def append(self, record: Record) -> None:
        with self.lock:
            self.writer.append(record)

    def start_record(self, domain_list: DomainList) -> Record:
        return {
            "kind": RecordKind.START.value,
            "started_at": now(),
            "resolver": describe_resolver(self.resolver),
            "domain_list": domain_list.source,
            "domain_list_sha256": domain_list.sha256,
            "domain_list_entries": len(domain_list),
            "domain_list_top": domain_list.top,
            "domain_list_id": domain_list.list_id,
            "domain_list_format": domain_list.format,
            "options": {**self.settings.as_options(),
                        "dispatcher": dispatch.describe(self.executor)},
            "resumed": bool(self.done.domains),
            "argv": sys.argv,
        }

    def _bar(self, total: int, desc: str) -> Any:
        disable = None if self.progress is None else not self.progress
        return tqdm(total=total, desc=desc, unit=desc.split()[-1], disable=disable, leave=True)

    def _parallel(self, items: Sequence[T], work: Callable[[T], R], desc: str, *,
                  dns: bool = False) -> Iterable[R]:
        """``work`` over ``items`` on a pool of ``concurrency`` threads (``dns_concurrency``
        for DNS-only work), yielding results as they finish, with a bar."""
        if not items:
            return
        workers = self.settings.dns_concurrency if dns else self.settings.concurrency
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            with self._bar(len(items), desc) as bar:
                futures: list[Future[R]] = [pool.submit(work, item) for item in items]
                for future in as_completed(futures):
                    bar.update(1)
                    yield future.result()
        except BaseException:
            # Interrupted (or the consumer stopped): drop the queued work and do not wait for
            # the running work, whose results nobody will record.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()

    # -- the stream ---------------------------------------------------------------------------

    def stream(self, entries: DomainList) -> None:
        """Survey ``entries``: every piece of work starts as soon as what it needs is known.

        A domain's MX answer starts its MX names' address lookups, its policy lookups and its
        names' TLSA lookups; an address answer starts the probe of each new address (the
        address-as-unit rule: one task per (IP, port) whatever names point at it; a name that
        arrives once its address is being or has been probed is a follow-up of it,
        :mod:`research.scan.address`). Everything finishes into one completion queue that the
        calling (main) thread empties, waking at least every :data:`WAKE_S` seconds so that a
        signal is handled promptly; only this thread writes the raw log. Domains are taken from
        the list only while fewer MX lookups than ``dns_concurrency`` are in flight (an address
        lookup waits behind at most those) and the policy and TLSA lookups are below a bound, so
        memory grows with the work in flight and the distinct names and addresses, not with the
        list.
        """
        settings = self.settings
        self.dns_pool = ThreadPoolExecutor(max_workers=settings.dns_concurrency,
                                           thread_name_prefix="dns")
        self.lookup_pool = ThreadPoolExecutor(max_workers=settings.concurrency,
                                              thread_name_prefix="lookup")
        if not self.sslyze:
            self.addresses = dispatch.AddressQueue(
                settings.probe, window=settings.concurrency, executor=self.executor,
                notify=lambda future: self.events.put((_Stage.PROBE, future)),
                start=self._work)
        lookups = LOOKUPS_PER_WORKER * settings.concurrency
        todo = (e for e in entries if _entry_key(e) not in self.done.domains)
        self._bars = {stage: self._bar(0, stage.value) for stage in _Stage
                      if not (self.sslyze and stage is _Stage.PROBE)}
        # The list is read once more as it is surveyed: the bar's total comes from its count.
        self._grow(_Stage.MX, len(entries) - len(self.done.domains))
        more = True
        try:
            for record in self.done.domains.values():
                self._domain(record)
            while True:
                while more and (self.in_flight[_Stage.MX] < settings.dns_concurrency
                                and self.in_flight[_Stage.POLICY] + self.in_flight[_Stage.TLSA]
                                < lookups):
                    entry = next(todo, None)
                    if entry is None:
                        more = False
                        break
                    self._submit(self.dns_pool, _Stage.MX, self._resolve_domain, entry)
                if not more and not self.in_flight.total() and not self._probing():
                    break
                try:
                    stage, future = self.events.get(timeout=WAKE_S)
                except queue.Empty:
                    continue
                self._finished(stage, future)
        except BaseException:
            # Interrupted (or a bug): drop what has not started and do not wait for the work
            # running, whose results nobody will record.
            self.dns_pool.shutdown(wait=False, cancel_futures=True)
            self.lookup_pool.shutdown(wait=False, cancel_futures=True)
            if self.addresses is not None:
                self.addresses.close(cancel=True)
            raise
        finally:
            for bar in self._bars.values():
                bar.close()
        self.dns_pool.shutdown()
        self.lookup_pool.shutdown()
        if self.addresses is not None:
            self.addresses.close()

    def _probing(self) -> int:
        return len(self.addresses) if self.addresses is not None else 0

    def _submit(self, pool: ThreadPoolExecutor, stage: _Stage, work: Callable[[T], Record],
                item: T) -> None:
        future = pool.submit(work, item)
        self.in_flight[stage] += 1
        if stage is not _Stage.MX:
            self._grow(stage)
        future.add_done_callback(lambda f: self.events.put((stage, f)))

    def _grow(self, stage: _Stage, by: int = 1) -> None:
        bar = self._bars.get(stage)
        if bar is not None:
            bar.total = (bar.total or 0) + by
            bar.refresh()

    def _finished(self, stage: _Stage, future: Future[Any]) -> None:
        if stage is _Stage.PROBE:
            assert self.addresses is not None
            work, outcome = self.addresses.finished(future)
            self._probed(work, outcome)
        else:
            self.in_flight[stage] -= 1
            record = future.result()
            self.append(record)
            if stage is _Stage.MX:
                self._domain(record)
            elif stage is _Stage.ADDRESSES:
                self.done.addresses[record["mx_host"]] = record
                self._host(record)
            elif stage is _Stage.POLICY:
                self.done.policies.add(record["domain"])
        self._bars[stage].update(1)

    def _domain(self, record: Record) -> None:
        """A domain's MX answer, just in or logged by an earlier run: start what it needs."""
        mail = record["dns_status"] in MAIL_DNS_STATUSES
        if mail and record["domain"] not in self.done.policies:
            self._submit(self.lookup_pool, _Stage.POLICY, self._policy, record)
        pending = _Domain(record)
        for _, host in record["mx"]:
            if self.hosts_seen.add(host):
                self._first_sight(host)
            if host in self.resolving:
                self.resolving[host].append(pending)
                pending.waiting += 1
            if mail and host not in self.done.tlsa:
                # Asked now is as good as done for whoever names the host next.
                self.done.tlsa.add(host)
                self._submit(self.lookup_pool, _Stage.TLSA, self._tlsa, host)
        if not pending.waiting:
            self._note_aliases(record)

    def _first_sight(self, host: str) -> None:
        """An MX name met for the first time: look up its addresses, unless it is on the
        opt-out list (recorded once, never looked up) or an earlier run did."""
        rule = self.opt_out.match_name(host) if self.opt_out else None
        if rule is not None:
            if (host, "") not in self.done.hosts:
                error = f"on the opt-out list ({rule}): not looked up or contacted"
                self.append(not_contacted(host, None, self.port, HostStatus.OPTED_OUT, error))
            return
        found = self.done.addresses.get(host)
        if found is not None:
            self._host(found)
            return
        self.resolving[host] = []
        self._submit(self.dns_pool, _Stage.ADDRESSES, self._resolve_host, host)

    def _host(self, record: Record) -> None:
        """An MX name's address answer: note aliases on the domains that waited for it, and
        probe each of its addresses (or add the name to the address's probe)."""
        host = record["mx_host"]
        for pending in self.resolving.pop(host, []):
            pending.waiting -= 1
            if not pending.waiting:
                self._note_aliases(pending.record)
        if not record["addresses"]:
            if (host, "") not in self.done.hosts:
                self.append(not_contacted(host, None, self.port, HostStatus.UNRESOLVED,
                                          record["error"] or "no address"))
            return
        for ip in record["addresses"]:
            if (host, ip) in self.done.hosts:
                continue
            network = self.opt_out.match_ip(ip) if self.opt_out else None
            if network is not None:
                error = f"address in a network on the opt-out list ({network}): not contacted"
                self.append(not_contacted(host, ip, self.port, HostStatus.OPTED_OUT, error))
            elif self.sslyze:
                self.sslyze_targets.append(TlsTarget(host, ip, self.port))
            else:
                self._target(host, ip)

    def _target(self, host: str, ip: str) -> None:
        """Probe (``ip``, port) for ``host``: a new task; a name more for its task if that has
        not started and has room (:data:`NAMES_PER_WORK`); otherwise a follow-up once its work
        finishes; once it has finished, a follow-up now."""
        assert self.addresses is not None
        key = (ip, self.port)
        queued = self.addresses.waiting(ip, self.port)
        if queued is not None and len(queued.names) < NAMES_PER_WORK:
            names = tuple(sorted((*queued.names, host)))
            task = replace(queued, names=names, provider=_provider(names))
            self.addresses.replace(task)
            self.tasks[key] = task
        elif key in self.tasks:
            self.late.setdefault(key, []).append(host)
        elif (known := self.known.get(key)) is not None:
            self._follow_up(known, (host,))
        else:
            task = AddressTask(ip, self.port, (host,), _provider((host,)), self.survey_id,
                               self.done.probes.get(key))
            self._start(task, task)

    def _follow_up(self, known: KnownAddress, names: tuple[str, ...]) -> None:
        task = known.task
        self._start(_LateNames(task.ip, task.port, task.provider, names),
                    replace(task, names=task.names + names))

    def _start(self, work: AddressTask | _LateNames, task: AddressTask) -> None:
        """Queue ``work``, the probe of ``task``'s address (all its names) or the follow-up
        of its late names."""
        assert self.addresses is not None
        self.tasks[(task.ip, task.port)] = task
        self._grow(_Stage.PROBE)
        self.addresses.add(work)

    def _work(self, queued: dispatch.Queued) -> AddressWork:
        """What runs of what waited in the address queue, as it starts: a follow-up takes its
        address as probed from disk only now, so the follow-ups waiting on a provider's pace
        (as many as its addresses) cost their names, not their addresses' scans."""
        if isinstance(queued, _LateNames):
            return FollowUp(self.known[(queued.ip, queued.port)], queued.names)
        assert isinstance(queued, AddressTask)
        return queued

    def _probed(self, work: AddressWork, outcome: AddressOutcome) -> None:
        for record in outcome.records:
            self.append(record)
        key = (work.ip, work.port)
        del self.tasks[key]
        self.known[key] = outcome.known
        late = self.late.pop(key, None)
        if late:
            if len(late) > NAMES_PER_WORK:
                self.late[key] = late[NAMES_PER_WORK:]
            self._follow_up(outcome.known, tuple(late[:NAMES_PER_WORK]))

    def _policy(self, record: Record) -> Record:
        hosts = [mx[1] for mx in record["mx"]]
        return lookups.policy_record(record["domain"], record["dns_status"], hosts, self.context)

    def _tlsa(self, host: str) -> Record:
        return lookups.tlsa_record(host, self.context)

    def _resolve_domain(self, entry: DomainInput) -> Record:
        base: Record = {"kind": RecordKind.DOMAIN.value, "rank": entry.rank, "input": entry.input}
        if entry.domain is None:
            return {**base, "domain": entry.input.strip(), "dns_status": DnsStatus.INVALID.value,
                    "error": entry.error, "mx": []}
        rule = self.opt_out.match_name(entry.domain) if self.opt_out else None
        if rule is not None:
            return {**base, "domain": entry.domain, "dns_status": DnsStatus.OPTED_OUT.value,
                    "error": f"on the opt-out list ({rule}): not looked up", "mx": []}
        found = resolve_mx(entry.domain, resolver=self.resolver,
                           retries=self.settings.dns_retries)
        return {**base, "domain": entry.domain, "dns_status": found.status.value,
                "error": found.error, "mx": [[m.preference, m.host] for m in found.mx]}

    def _note_aliases(self, record: Record) -> None:
        """Note on a domain whose MX names an alias (CNAME) that RFC 2181 §10.3 forbids it, once
        the domain's record and all its MX names' address answers are known.

        The domain's record is appended again with the note; later records win in the tables
        and on resume, so a resumed survey does not note twice.
        """
        if record["dns_status"] != DnsStatus.MX.value:
            return
        aliases = {host: found["canonical"] for _, host in record["mx"]
                   if (found := self.done.addresses.get(host)) and found.get("canonical")}
        if not aliases:
            return
        error = record.get("error") or ""
        notes = [f"MX host {host} is an alias (CNAME) of {aliases[host]}, which RFC 2181 "
                 "§10.3 forbids; followed, as mail servers do"
                 for _, host in record["mx"] if host in aliases]
        missing = [n for n in notes if n not in error]
        if missing:
            self.append({**record, "error": "; ".join([error, *missing] if error else missing)})

    def _resolve_host(self, host: str) -> Record:
        found = resolve_addresses(host, resolver=self.resolver,
                                  retries=self.settings.dns_retries)
        return {"kind": RecordKind.ADDRESSES.value, "mx_host": host, "addresses": found.addresses,
                "error": found.error, "canonical": found.canonical}

    def scan_with_sslyze(self) -> None:
        """The ``sslyze`` engine's TLS scan, after the stream: the SMTP probes, then sslyze's own
        per-suite scan of each (MX host, IP) that accepted STARTTLS."""
        probe_settings = self.settings.probe
        probes: dict[TlsTarget, SmtpProbe] = {}

        def probe(target: TlsTarget) -> tuple[TlsTarget, SmtpProbe]:
            return target, probe_smtp(target.mx_host, target.ip, probe_settings)

        for target, result in self._parallel(self.sslyze_targets, probe, "SMTP hosts"):
            if result.starttls_accepted:
                probes[target] = result
            else:
                self.append(host_record(result, None, trust=trust_for(probe_settings.trust_ca)))
        if not probes:
            return
        with self._bar(len(probes), "TLS hosts") as bar:
            for scan in scan_tls(list(probes), probe_settings,
                                 concurrency=self.settings.concurrency):
                self.append(host_record(probes[scan.target], scan,
                                        trust=trust_for(probe_settings.trust_ca)))
                bar.update(1)

    def record_learned(self) -> None:
        """Log what the addresses being probed in this process have taught so far (a Dask
        worker's are out of reach), so that ``--resume`` starts from it."""
        for ip, port, limits in live(self.survey_id):
            task = self.tasks.get((ip, port))
            if task is not None:
                self.append(address_record(task, limits, budget_spent=False, duration_s=None,
                                           finished=False))


def _provider(names: Sequence[str]) -> str:
    """Whose limits an address's sessions share: the provider most of its names belong to
    (:func:`provider_of`; a tie goes to the first in name order)."""
    providers = Counter(provider_of(n) for n in names)
    return min(providers, key=lambda p: (-providers[p], p))
