"""The survey runner: domains → MX → (MX host, IP) targets → addresses → SMTP probe → TLS scan.

Each address is probed once however many MX names and domains share it
(:mod:`research.scan.address`). Every finished domain, address lookup, host and address probe
is appended to the raw log at once, so ``resume=True`` skips all finished work and starts the
unfinished addresses from the limits they were learned to have; an interrupt (Ctrl-C, SIGTERM
through the CLI) still records what the addresses being probed had taught and writes the
tables of what finished. Names and addresses on the opt-out list are recorded as ``opted_out``
and never contacted. Then come the enforcement lookups (:mod:`research.scan.lookups`):
MTA-STS, TLS-RPT and MX DNSSEC per domain, TLSA per MX host, logged the same way.

The TLS scan is this project's engine (:mod:`research.scan.engine`: ``full`` or ``versions``), one
task per address on local threads or a caller's executor (:mod:`research.scan.dispatch`), or,
with ``engine="sslyze"``, sslyze's own per-suite scan of each (MX host, IP)
(:mod:`research.scan.engine.sslyze`) for cross-checks.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import dns.resolver
from tqdm.auto import tqdm

from research.errors import InputError
from research.policy.names import provider_of
from research.scan import dispatch, lookups
from research.scan.address import AddressTask, address_record
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
from research.store.results import SurveyResults
from research.store.schema import MAIL_DNS_STATUSES, DnsStatus, Engine, HostStatus
from research.store.tables import write_tables

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
    if done.opt_out is not None and opt_out is None:
        # Resuming without the list would contact exactly those who asked not to be.
        raise InputError(f"{out}: this survey was started with the opt-out list {done.opt_out}; "
                         "pass --opt-out again to resume it")
    try:
        with RawLogWriter(log_path) as writer:
            run = _Run(settings, resolver, writer, done, progress, context, opt_out, executor)
            writer.append(run.start_record(domain_list))
            try:
                run.resolve_domains(domain_list.entries)
                targets = run.resolve_hosts()
                run.scan_hosts(targets)
                run.lookup_enforcement()
            except KeyboardInterrupt:
                run.record_learned()
                raise
            writer.append({"kind": RecordKind.FINISH.value, "finished_at": now()})
    except KeyboardInterrupt:
        # Whatever finished is in the raw log: give the user its tables before stopping.
        write_tables(log_path, out)
        raise
    # Streamed from the raw log: memory stays flat however many hosts were scanned.
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
    """What an earlier run of the same survey already finished (empty for a fresh survey)."""

    domains: dict[tuple[int, str], Record]
    addresses: dict[str, Record]
    """MX host name → its address lookup."""
    hosts: set[tuple[str, str | None]]
    probes: dict[tuple[str, int], Record] = field(default_factory=dict)
    """(IP, port) → its latest address probe record: what it was learned to allow."""
    opt_out: str | None = None
    """The opt-out list an earlier run used, if any."""
    policies: set[str] = field(default_factory=set)
    tlsa: set[str] = field(default_factory=set)

    @classmethod
    def from_log(cls, path: Path, domain_list: DomainList) -> _Done:
        done = cls({}, {}, set())
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
                done.opt_out = (record.get("options") or {}).get("opt_out") or done.opt_out
            if kind == RecordKind.DOMAIN:
                done.domains[domain_key(record)] = record
            elif kind == RecordKind.ADDRESSES:
                done.addresses[record["mx_host"]] = record
            elif kind == RecordKind.HOST:
                done.hosts.add(host_key(record))
            elif kind == RecordKind.ADDRESS_PROBE:
                done.probes[address_key(record)] = record
            elif kind == RecordKind.POLICY:
                done.policies.add(record["domain"])
            elif kind == RecordKind.TLSA:
                done.tlsa.add(record["mx_host"])
        return done


def _describe_list(source: object, top: object, sha256: object) -> str:
    return (f"{source}" + (f" --top {top}" if top else "")
            + f", SHA-256 {str(sha256)[:12] if sha256 else 'unknown'}")


def _entry_key(entry: DomainInput) -> tuple[int, str]:
    return entry.rank, entry.input


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
        self.domain_records: list[Record] = list(done.domains.values())
        self.executor = executor
        self.survey_id = uuid.uuid4().hex
        """Names this run's provider gates, in every process that probes for it."""
        self.tasks: dict[tuple[str, int], AddressTask] = {}

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
            "domain_list_entries": len(domain_list.entries),
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

    def resolve_domains(self, entries: list[DomainInput]) -> None:
        todo = [e for e in entries if _entry_key(e) not in self.done.domains]
        for record in self._parallel(todo, self._resolve_domain, "DNS domains", dns=True):
            self.append(record)
            self.domain_records.append(record)

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

    def resolve_hosts(self) -> list[TlsTarget]:
        hosts = sorted({mx[1] for r in self.domain_records for mx in r["mx"]})
        opted_out = self._opt_out_hosts(hosts)
        todo = [h for h in hosts if h not in self.done.addresses and h not in opted_out]
        for record in self._parallel(todo, self._resolve_host, "DNS MX hosts", dns=True):
            self.append(record)
            self.done.addresses[record["mx_host"]] = record
        self._note_aliases()
        targets: list[TlsTarget] = []
        for host in hosts:
            if host in opted_out:
                continue
            record = self.done.addresses[host]
            if not record["addresses"]:
                if (host, None) not in self.done.hosts:
                    self.append(not_contacted(host, None, self.port, HostStatus.UNRESOLVED,
                                              record["error"] or "no address"))
                continue
            for ip in record["addresses"]:
                network = self.opt_out.match_ip(ip) if self.opt_out else None
                if network is None:
                    targets.append(TlsTarget(host, ip, self.port))
                elif (host, ip) not in self.done.hosts:
                    error = f"address in a network on the opt-out list ({network}): not contacted"
                    self.append(not_contacted(host, ip, self.port, HostStatus.OPTED_OUT, error))
        return [t for t in targets if (t.mx_host, t.ip) not in self.done.hosts]

    def _opt_out_hosts(self, hosts: list[str]) -> set[str]:
        """MX host names on the opt-out list, each recorded once (no address is looked up)."""
        found = set()
        for host in hosts:
            rule = self.opt_out.match_name(host) if self.opt_out else None
            if rule is None:
                continue
            found.add(host)
            if (host, None) not in self.done.hosts:
                error = f"on the opt-out list ({rule}): not looked up or contacted"
                self.append(not_contacted(host, None, self.port, HostStatus.OPTED_OUT, error))
        return found

    def _note_aliases(self) -> None:
        """Note on each domain whose MX names an alias (CNAME) that RFC 2181 §10.3 forbids it.

        The domain's record is appended again with the note; later records win in the tables
        and on resume, so a resumed survey does not note twice.
        """
        aliases = {h: r["canonical"] for h, r in self.done.addresses.items()
                   if r.get("canonical")}
        for i, record in enumerate(self.domain_records):
            if not aliases or record["dns_status"] != DnsStatus.MX.value:
                continue
            error = record.get("error") or ""
            notes = [f"MX host {host} is an alias (CNAME) of {aliases[host]}, which RFC 2181 "
                     "§10.3 forbids; followed, as mail servers do"
                     for _, host in record["mx"] if host in aliases]
            missing = [n for n in notes if n not in error]
            if missing:
                updated = {**record, "error": "; ".join([error, *missing] if error else missing)}
                self.append(updated)
                self.domain_records[i] = updated

    def _resolve_host(self, host: str) -> Record:
        found = resolve_addresses(host, resolver=self.resolver,
                                  retries=self.settings.dns_retries)
        return {"kind": RecordKind.ADDRESSES.value, "mx_host": host, "addresses": found.addresses,
                "error": found.error, "canonical": found.canonical}

    def scan_hosts(self, targets: list[TlsTarget]) -> None:
        probe_settings = self.settings.probe
        if probe_settings.engine is not Engine.SSLYZE:
            self._scan_with_engine(targets)
            return
        probes: dict[TlsTarget, SmtpProbe] = {}

        def probe(target: TlsTarget) -> tuple[TlsTarget, SmtpProbe]:
            return target, probe_smtp(target.mx_host, target.ip, probe_settings)

        for target, result in self._parallel(targets, probe, "SMTP hosts"):
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

    def lookup_enforcement(self) -> None:
        mail = [r for r in self.domain_records if r["dns_status"] in MAIL_DNS_STATUSES]
        todo = [r for r in mail if r["domain"] not in self.done.policies]

        def policy(record: Record) -> Record:
            hosts = [mx[1] for mx in record["mx"]]
            return lookups.policy_record(record["domain"], record["dns_status"], hosts,
                                                  self.context)

        for found in self._parallel(todo, policy, "MTA-STS domains"):
            self.append(found)
            self.done.policies.add(found["domain"])
        hosts = sorted({mx[1] for r in mail for mx in r["mx"]} - self.done.tlsa)
        for found in self._parallel(
                hosts, lambda h: lookups.tlsa_record(h, self.context), "TLSA hosts", dns=True):
            self.append(found)
            self.done.tlsa.add(found["mx_host"])


    def _scan_with_engine(self, targets: list[TlsTarget]) -> None:
        tasks = address_tasks(targets, self.survey_id, self.done.probes)
        self.tasks = {(t.ip, t.port): t for t in tasks}
        if not tasks:
            return
        with self._bar(len(tasks), "addresses") as bar:
            for records in dispatch.run_addresses(tasks, self.settings.probe,
                                                  window=self.settings.concurrency,
                                                  executor=self.executor):
                for record in records:
                    self.append(record)
                bar.update(1)

    def record_learned(self) -> None:
        """Log what the addresses being probed in this process have taught so far (a Dask
        worker's are out of reach), so that ``--resume`` starts from it."""
        for ip, port, limits in live(self.survey_id):
            task = self.tasks.get((ip, port))
            if task is not None:
                self.append(address_record(task, limits, budget_spent=False, duration_s=None,
                                           finished=False))


def address_tasks(targets: Iterable[TlsTarget], survey_id: str,
                  learned: dict[tuple[str, int], Record]) -> list[AddressTask]:
    """One task per address of ``targets``, with the MX names that point at it (in name
    order), its provider (the one most of its names belong to, :func:`provider_of`) and what an
    earlier run learned of it; in address order."""
    names: dict[tuple[str, int], set[str]] = {}
    for target in targets:
        names.setdefault((target.ip, target.port), set()).add(target.mx_host)
    tasks = []
    for (ip, port), found in sorted(names.items()):
        ordered = tuple(sorted(found))
        providers = Counter(provider_of(n) for n in ordered)
        provider = min(providers, key=lambda p: (-providers[p], p))
        tasks.append(AddressTask(ip, port, ordered, provider, survey_id,
                                 learned.get((ip, port))))
    return tasks
