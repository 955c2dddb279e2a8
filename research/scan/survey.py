"""The survey runner: domains → MX → unique (MX host, IP) targets → SMTP probe → TLS scan.

Each target is scanned once however many domains share it. Every finished domain, address
lookup and host is appended to the raw log at once, so ``resume=True`` skips all finished work;
an interrupt (Ctrl-C) still writes the tables of what finished. Names and addresses on the
opt-out list are recorded as ``opted_out`` and never contacted. Then come the enforcement
lookups (:mod:`research.scan.lookups`): MTA-STS, TLS-RPT and MX DNSSEC per domain, TLSA per
MX host, logged the same way.

The TLS scan is this project's engine (:mod:`research.scan.engine`: ``full`` or ``versions``), one
task per target on local threads or a caller's executor (:mod:`research.scan.dispatch`), or, with
``engine="sslyze"``, sslyze's own per-suite scan (:mod:`research.scan.sslyze`) for cross-checks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import dns.resolver
from tqdm.auto import tqdm

from research.errors import InputError
from research.policy.certs import summarise_der
from research.policy.mtasts import HTTPS_PORT
from research.policy.pki import CertTrust, load_trust
from research.scan import dispatch, lookups
from research.scan import resolver as mxdns
from research.scan.engine import DEFAULT_BACKOFF, DEFAULT_RETRIES, Engine, EngineSettings
from research.scan.inputs import DomainInput, DomainList, from_arguments
from research.scan.optout import OptOutList, read_opt_out
from research.scan.smtp import SmtpProbe, probe_smtp
from research.scan.sslyze import TlsScan, TlsTarget, scan_tls
from research.settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_EHLO_NAME,
    DEFAULT_PER_HOST_CONNECTIONS,
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    RAW_LOG_NAME,
)
from research.store.rawlog import RawLogWriter, Record, read_records, repair
from research.store.results import SurveyResults
from research.store.schema import TLS_VERSIONS, DnsStatus, HostStatus
from research.store.tables import write_tables

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class SurveyOptions:
    port: int = DEFAULT_PORT
    ehlo_name: str = DEFAULT_EHLO_NAME
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int = DEFAULT_CONCURRENCY
    per_host_connections: int = DEFAULT_PER_HOST_CONNECTIONS
    trust_ca: str | None = None
    opt_out: str | None = None
    """Where the opt-out list came from (a file path), if there was one."""
    mta_sts_port: int = HTTPS_PORT
    dnssec_anchor: str | None = None
    engine: str = Engine.FULL.value
    """How TLS is scanned (:class:`research.scan.engine.Engine`); ``versions`` enumerates no
    suites."""
    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    dispatcher: str = "threads"
    """Where the host probes ran: ``threads`` (this process) or the executor's description."""

    def check(self) -> None:
        """Raises InputError for values no scan can run with."""
        if not 0 < self.port < 65536:
            raise InputError(f"port must be 1..65535, not {self.port}")
        if not 0 < self.mta_sts_port < 65536:
            raise InputError(f"MTA-STS port must be 1..65535, not {self.mta_sts_port}")
        if self.timeout <= 0:
            raise InputError(f"timeout must be positive, not {self.timeout:g}")
        if self.concurrency < 1:
            raise InputError(f"concurrency must be at least 1, not {self.concurrency}")
        if self.per_host_connections < 1:
            raise InputError(
                f"per-host connections must be at least 1, not {self.per_host_connections}"
            )
        if not self.ehlo_name or any(c.isspace() for c in self.ehlo_name):
            raise InputError(f"EHLO name must be one word, not {self.ehlo_name!r}")
        if self.engine not in {e.value for e in Engine}:
            raise InputError(f"engine must be one of {', '.join(e.value for e in Engine)}, "
                             f"not {self.engine!r}")
        if self.retries < 0:
            raise InputError(f"retries must be at least 0, not {self.retries}")
        if self.backoff < 0:
            raise InputError(f"backoff must not be negative, not {self.backoff:g}")

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            port=self.port, ehlo_name=self.ehlo_name, timeout=self.timeout,
            per_host_connections=self.per_host_connections, retries=self.retries,
            backoff=self.backoff, engine=Engine(self.engine), trust_ca=self.trust_ca,
        )


def run_survey(
    domains: DomainList | Iterable[str],
    out_dir: str | Path,
    *,
    resolver: dns.resolver.Resolver | Sequence[str] | None = None,
    port: int = DEFAULT_PORT,
    ehlo_name: str = DEFAULT_EHLO_NAME,
    timeout: float = DEFAULT_TIMEOUT,
    concurrency: int = DEFAULT_CONCURRENCY,
    per_host_connections: int = DEFAULT_PER_HOST_CONNECTIONS,
    trust_ca: str | Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
    opt_out: OptOutList | str | Path | None = None,
    mta_sts_port: int = HTTPS_PORT,
    dnssec_anchor: str | Path | None = None,
    engine: str = Engine.FULL.value,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    executor: Any = None,
) -> SurveyResults:
    """Survey ``domains`` and write the raw log, the tables and ``meta.json`` into ``out_dir``.

    ``resolver`` is a dnspython resolver, a list of ``IP[:PORT]`` servers, or ``None`` for the
    system's. ``progress=None`` shows progress bars on a terminal or in a notebook only.
    ``trust_ca`` adds PEM roots to the Mozilla store for every certificate check (MX hosts and
    MTA-STS policy hosts); ``mta_sts_port`` is where policy hosts are asked over HTTPS;
    ``dnssec_anchor`` is a file of DS/DNSKEY trust anchors: with it DNSSEC is validated here,
    without it the resolver's AD bit is taken (see :mod:`research.scan.dnssec`).

    ``opt_out`` is an opt-out list (or its file, see :mod:`research.scan.optout`): what it covers is
    recorded as ``opted_out`` and never contacted. On KeyboardInterrupt the tables of the work
    finished so far are written, then the interrupt propagates.

    ``engine`` is ``full`` (versions and accepted suites), ``versions`` (versions only; no
    suites) or ``sslyze`` (sslyze's per-suite scan). A host that stops answering is paused
    ``backoff`` seconds (doubling) up to ``retries`` times before what is left is reported in
    ``hosts.undecided``. ``executor`` (a ``concurrent.futures.Executor`` or a Dask client) runs
    the host probes instead of local threads; at most ``concurrency`` are in flight. The
    ``sslyze`` engine always runs in this process.

    Raises:
        InputError: bad options, an unusable opt-out list, an ``out_dir`` that cannot be written,
            an ``out_dir`` that already holds a survey without ``resume``, ``resume`` with a
            different domain list, a ``trust_ca``/``dnssec_anchor`` file that cannot be used, or
            an ``executor`` that is not one.
        KeyboardInterrupt: passed on, after writing the tables.
    """
    if opt_out is not None and not isinstance(opt_out, OptOutList):
        opt_out = read_opt_out(opt_out)
    options = SurveyOptions(
        port, ehlo_name, timeout, concurrency, per_host_connections,
        str(trust_ca) if trust_ca else None, opt_out.source if opt_out else None,
        mta_sts_port, str(dnssec_anchor) if dnssec_anchor else None, str(engine), retries,
        backoff, dispatch.describe(executor),
    )
    options.check()
    domain_list = domains if isinstance(domains, DomainList) else from_arguments(domains)
    if isinstance(resolver, dns.resolver.Resolver):
        dns_resolver = resolver
    else:
        dns_resolver = mxdns.make_resolver(resolver, timeout=timeout)
    context = lookups.make_context(
        dns_resolver, trust=load_trust(trust_ca), trust_ca=trust_ca,
        dnssec_anchor=dnssec_anchor, mta_sts_port=mta_sts_port, timeout=timeout)
    out = _prepare_out_dir(Path(out_dir), resume)
    log_path = out / RAW_LOG_NAME
    repair(log_path)
    done = _Done.from_log(log_path, domain_list.sha256)
    if done.opt_out is not None and opt_out is None:
        # Resuming without the list would contact exactly those who asked not to be.
        raise InputError(f"{out}: this survey was started with the opt-out list {done.opt_out}; "
                         "pass --opt-out again to resume it")
    try:
        with RawLogWriter(log_path) as writer:
            run = _Run(options, dns_resolver, writer, done, progress, context, opt_out)
            run.executor = executor
            writer.append(run.start_record(domain_list))
            run.resolve_domains(domain_list.entries)
            targets = run.resolve_hosts()
            run.scan_hosts(targets)
            run.lookup_enforcement()
            writer.append({"kind": "finish", "finished_at": _now()})
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

    domains: dict[str, Record]
    addresses: dict[str, Record]
    hosts: set[tuple[str, str | None]]
    opt_out: str | None = None
    """The opt-out list an earlier run used, if any."""
    policies: set[str] = field(default_factory=set)
    tlsa: set[str] = field(default_factory=set)

    @classmethod
    def from_log(cls, path: Path, sha256: str) -> _Done:
        done = cls({}, {}, set())
        for record in read_records(path):
            kind = record.get("kind")
            if kind == "start" and record.get("domain_list_sha256") != sha256:
                raise InputError(
                    f"{path.parent}: --resume with a different domain list than the one started"
                )
            if kind == "start":
                done.opt_out = (record.get("options") or {}).get("opt_out") or done.opt_out
            if kind == "domain":
                done.domains[str(record["rank"]) + "\t" + record["input"]] = record
            elif kind == "addresses":
                done.addresses[record["mx_host"]] = record
            elif kind == "host":
                done.hosts.add((record["mx_host"], record["ip"]))
            elif kind == "policy":
                done.policies.add(record["domain"])
            elif kind == "tlsa":
                done.tlsa.add(record["mx_host"])
        return done


def _entry_key(entry: DomainInput) -> str:
    return f"{entry.rank}\t{entry.input}"


class _Run:
    def __init__(
        self,
        options: SurveyOptions,
        resolver: dns.resolver.Resolver,
        writer: RawLogWriter,
        done: _Done,
        progress: bool | None,
        context: lookups.EnforcementContext,
        opt_out: OptOutList | None = None,
    ) -> None:
        self.context = context
        self.opt_out = opt_out
        self.options = options
        self.resolver = resolver
        self.writer = writer
        self.done = done
        self.progress = progress
        self.lock = threading.Lock()
        self.domain_records: list[Record] = list(done.domains.values())
        self.executor: Any = None

    def append(self, record: Record) -> None:
        with self.lock:
            self.writer.append(record)

    def start_record(self, domain_list: DomainList) -> Record:
        import sys

        return {
            "kind": "start",
            "started_at": _now(),
            "resolver": mxdns.describe_resolver(self.resolver),
            "domain_list": domain_list.source,
            "domain_list_sha256": domain_list.sha256,
            "options": asdict(self.options),
            "resumed": bool(self.done.domains),
            "argv": sys.argv,
        }

    def _bar(self, total: int, desc: str) -> Any:
        disable = None if self.progress is None else not self.progress
        return tqdm(total=total, desc=desc, unit=desc.split()[-1], disable=disable, leave=True)

    def _parallel(self, items: Sequence[T], work: Callable[[T], R], desc: str) -> Iterable[R]:
        """``work`` over ``items`` on the pool, yielding results as they finish, with a bar."""
        if not items:
            return
        pool = ThreadPoolExecutor(max_workers=self.options.concurrency)
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
        for record in self._parallel(todo, self._resolve_domain, "DNS domains"):
            self.append(record)
            self.domain_records.append(record)

    def _resolve_domain(self, entry: DomainInput) -> Record:
        base: Record = {"kind": "domain", "rank": entry.rank, "input": entry.input}
        if entry.domain is None:
            return {**base, "domain": entry.input.strip(), "dns_status": DnsStatus.INVALID.value,
                    "error": entry.error, "mx": []}
        rule = self.opt_out.match_name(entry.domain) if self.opt_out else None
        if rule is not None:
            return {**base, "domain": entry.domain, "dns_status": DnsStatus.OPTED_OUT.value,
                    "error": f"on the opt-out list ({rule}): not looked up", "mx": []}
        found = mxdns.resolve_mx(entry.domain, resolver=self.resolver)
        return {**base, "domain": entry.domain, "dns_status": found.status.value,
                "error": found.error, "mx": [[m.preference, m.host] for m in found.mx]}

    def resolve_hosts(self) -> list[TlsTarget]:
        hosts = sorted({mx[1] for r in self.domain_records for mx in r["mx"]})
        opted_out = self._opt_out_hosts(hosts)
        todo = [h for h in hosts if h not in self.done.addresses and h not in opted_out]
        for record in self._parallel(todo, self._resolve_host, "DNS MX hosts"):
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
                    self.append(_unresolved_record(host, record["error"], self.options.port))
                continue
            for ip in record["addresses"]:
                network = self.opt_out.match_ip(ip) if self.opt_out else None
                if network is None:
                    targets.append(TlsTarget(host, ip, self.options.port))
                elif (host, ip) not in self.done.hosts:
                    error = f"address in a network on the opt-out list ({network}): not contacted"
                    self.append(_opted_out_record(host, ip, error, self.options.port))
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
                self.append(_opted_out_record(host, None, error, self.options.port))
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
        found = mxdns.resolve_addresses(host, resolver=self.resolver)
        return {"kind": "addresses", "mx_host": host, "addresses": found.addresses,
                "error": found.error, "canonical": found.canonical}

    def scan_hosts(self, targets: list[TlsTarget]) -> None:
        opts = self.options
        if opts.engine != Engine.SSLYZE:
            self._scan_with_engine(targets)
            return
        probes: dict[TlsTarget, SmtpProbe] = {}

        def probe(target: TlsTarget) -> tuple[TlsTarget, SmtpProbe]:
            return target, probe_smtp(target.mx_host, target.ip, port=opts.port,
                                      ehlo_name=opts.ehlo_name, timeout=opts.timeout)

        for target, result in self._parallel(targets, probe, "SMTP hosts"):
            if result.starttls_accepted:
                probes[target] = result
            else:
                self.append(host_record(result, None, trust=self.context.trust))
        if not probes:
            return
        with self._bar(len(probes), "TLS hosts") as bar:
            for scan in scan_tls(
                list(probes), ehlo_name=opts.ehlo_name, timeout=opts.timeout,
                concurrency=opts.concurrency, per_host_connections=opts.per_host_connections,
                trust_ca=Path(opts.trust_ca) if opts.trust_ca else None,
            ):
                self.append(host_record(probes[scan.target], scan, trust=self.context.trust))
                bar.update(1)

    def lookup_enforcement(self) -> None:
        mail = [r for r in self.domain_records if r["dns_status"] in ("mx", "implicit_mx")]
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
                hosts, lambda h: lookups.tlsa_record(h, self.context), "TLSA hosts"):
            self.append(found)
            self.done.tlsa.add(found["mx_host"])


    def _scan_with_engine(self, targets: list[TlsTarget]) -> None:
        settings = self.options.engine_settings()
        if not targets:
            return
        with self._bar(len(targets), "hosts") as bar:
            for record in dispatch.run_targets(targets, settings, window=self.options.concurrency,
                                               executor=self.executor):
                self.append(record)
                bar.update(1)


def _unresolved_record(host: str, error: str | None, port: int) -> Record:
    return {"kind": "host", "mx_host": host, "ip": None, "port": port,
            "status": HostStatus.UNRESOLVED.value, "error": error or "no address",
            "ehlo_extensions": [], "cert_sans": [], "ciphers": [], "scanned_at": _now()}


def _opted_out_record(host: str, ip: str | None, error: str, port: int) -> Record:
    return {"kind": "host", "mx_host": host, "ip": ip, "port": port,
            "status": HostStatus.OPTED_OUT.value, "error": error,
            "ehlo_extensions": [], "cert_sans": [], "ciphers": [], "scanned_at": _now()}


def host_record(probe: SmtpProbe, scan: TlsScan | None, *,
                trust: CertTrust | None = None) -> Record:
    """The raw-log record of one target from its SMTP probe and, if STARTTLS was accepted,
    its TLS scan. Decides ``starttls`` vs ``tls_failed``: any successful handshake counts.
    With ``trust``, also judges the presented chain against it (the certificate-verdict columns
    and the ``certificates`` rows, see :func:`research.scan.lookups.certificate_fields`)."""
    record: Record = {
        "kind": "host", "mx_host": probe.mx_host, "ip": probe.ip, "port": probe.port,
        "banner": probe.banner, "ehlo_extensions": probe.ehlo_extensions,
        "starttls_offered": probe.starttls_offered,
        "negotiated_version": probe.negotiated_version,
        "negotiated_cipher": probe.negotiated_cipher,
        "cert_sans": [], "ciphers": [], "undecided": [], "scanned_at": _now(),
    }
    errors = [probe.error] if probe.error else []
    duration = probe.duration_s
    status = probe.status
    cert = summarise_der(probe.certificate_der, probe.mx_host) if probe.certificate_der else None
    if scan is not None:
        errors.extend(scan.errors)
        any_version = any(scan.versions.values())
        handshake = any_version or probe.negotiated_version is not None
        status = HostStatus.STARTTLS if handshake else HostStatus.TLS_FAILED
        if scan.connected:
            record.update(scan.versions)
            accepted = [v.label for v in TLS_VERSIONS if scan.versions.get(v.column)]
            record["min_version"] = accepted[0] if accepted else None
            record["max_version"] = accepted[-1] if accepted else None
            record["ciphers"] = [asdict(c) for c in scan.ciphers]
        cert = scan.certificate or cert
        record["cert_trusted_mozilla"] = scan.trusted_mozilla
    if cert is not None:
        record.update({
            "cert_subject": cert.subject, "cert_issuer": cert.issuer, "cert_sans": cert.sans,
            "cert_not_before": cert.not_before, "cert_not_after": cert.not_after,
            "cert_self_signed": cert.self_signed, "cert_matches_mx": cert.matches,
            "cert_sha256": cert.sha256,
        })
    record["status"] = status.value if status else HostStatus.TLS_FAILED.value
    record["error"] = "; ".join(errors) or None
    record["duration_s"] = duration
    if trust is not None:
        chain = scan.chain if scan is not None and scan.chain else (
            [probe.certificate_der] if probe.certificate_der else [])
        record.update(lookups.certificate_fields(record["status"], chain,
                                                          probe.mx_host, trust))
    return record


def _now() -> str:
    return datetime.now(UTC).isoformat()
