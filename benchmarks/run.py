"""Benchmarks: what each way of surveying the testbed costs, side by side in one run.

Not part of the pass/fail tests (``make bench``, or ``.venv/bin/python benchmarks/run.py``).
Everything runs against the loopback testbed with every host at an internet-like distance
(``--rtt-ms``, 50 by default): on bare loopback a session costs a millisecond, which would hide
what every extra session costs a real survey.

Part 1, on the ``isc-2019`` scenario, one after another on the same testbed:

- this project's survey with ``--engine full``, ``versions`` and ``sslyze``;
- sslyze's standard scan driven directly (its API: every cipher-suite command and the
  certificate, for every STARTTLS host), which gives the same information as ``full``;
- testssl.sh (``--starttls smtp -p -E -S``: protocols, suites per protocol, certificate) on
  every STARTTLS host, when it is installed.

Part 2, on generated scenarios of 100 and 1,000 hosts: the ``full`` survey's wall time per host
and peak memory.

Sessions are the testbed servers' own counts (``Testbed.stats()``), per STARTTLS host. Wall
time and peak memory (``VmHWM``) are measured in a fresh child process per run, so one run's
memory does not hide in another's. Answers are compared with sslyze's: every host's accepted
versions, accepted suites per version and certificate fingerprint.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

Answers = dict[str, dict[str, Any]]
"""Per ``host ip``: ``versions`` (accepted labels), ``suites`` (``label cipher``), ``cert``."""


# -- what runs in a child process ------------------------------------------------------------

def _peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child_survey(spec: dict[str, Any]) -> dict[str, Any]:
    from research.scan.inputs import read_domain_list
    from research.scan.survey import run_survey
    from research.settings import SurveySettings

    domains = read_domain_list(Path(spec["domains"]))
    started = time.perf_counter()
    settings = SurveySettings.build(
        resolvers=[spec["resolver"]], port=spec["port"], timeout=spec["timeout"],
        concurrency=spec["concurrency"], per_host_connections=spec["per_host"],
        engine=spec["engine"], trust_ca=spec["trust_ca"], **spec.get("options", {}))
    results = run_survey(domains, spec["out"], settings, progress=False)
    wall = time.perf_counter() - started
    peak = _peak_rss_mb()  # before any table is loaded: the survey's own peak
    if spec.get("summary_only"):
        return {"wall_s": wall, "peak_mb": peak, "hosts": len(results.hosts),
                "counts": results.meta["counts"],
                "ground_truth_mismatches": _ground_truth_mismatches(
                    Path(spec["ground_truth"]), results) if spec.get("ground_truth") else None}
    answers: Answers = {}
    hosts = results.hosts
    ciphers = results.ciphers
    for _, row in hosts[hosts["status"] == "starttls"].iterrows():
        key = f"{row['mx_host']} {row['ip']}"
        mine = ciphers[(ciphers["mx_host"] == row["mx_host"]) & (ciphers["ip"] == row["ip"])]
        answers[key] = {
            "versions": sorted(v for v, column in _LABELS.items() if _true(row[column])),
            "suites": sorted(f"{v} {c}" for v, c in zip(mine["tls_version"], mine["cipher"],
                                                         strict=True)),
            "cert": row["cert_sha256"],
        }
    truth = spec.get("ground_truth")
    mismatches = _ground_truth_mismatches(Path(truth), results) if truth else None
    return {"wall_s": wall, "peak_mb": peak, "answers": answers,
            "ground_truth_mismatches": mismatches, "hosts": len(hosts)}


_NA: Any = None
_LABELS: dict[str, str] = {}


def _init_labels() -> None:
    global _NA
    import pandas as pd

    from research.store.schema import TLS_VERSIONS

    _NA = pd.NA
    _LABELS.update({v.label: v.column for v in TLS_VERSIONS})


def _true(value: Any) -> bool:
    return value is not _NA and bool(value)


def _ground_truth_mismatches(path: Path, results: Any) -> int:
    from research.testbed import load_scenario

    scenario = load_scenario(path)
    rows = {(r["mx_host"], r["ip"] if r["ip"] is not _NA else None): r
            for _, r in results.hosts.iterrows()}
    bad = 0
    for host, ip in scenario.targets():
        row = rows.get((host.name, ip))
        if row is None or row["status"] != host.expect_status.value:
            bad += 1
            continue
        found = [label for label, column in _LABELS.items() if _true(row[column])]
        bad += found != list(host.expect_versions)
    return bad


def child_dns(spec: dict[str, Any]) -> dict[str, Any]:
    """The survey's DNS phase alone: every domain's MX, then every MX host's addresses, with
    ``dns_concurrency`` lookups in flight (the survey's own functions and thread pool size)."""
    from research.scan.inputs import read_domain_list
    from research.scan.mx import resolve_addresses, resolve_mx
    from research.scan.resolver import make_resolver

    domains = [e.domain for e in read_domain_list(Path(spec["domains"])) if e.domain]
    resolver = make_resolver([spec["resolver"]], timeout=spec["timeout"])
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=spec["dns_concurrency"]) as pool:
        found = list(pool.map(lambda d: resolve_mx(d, resolver=resolver), domains))
        hosts = sorted({m.host for f in found for m in f.mx})
        addresses = list(pool.map(lambda h: resolve_addresses(h, resolver=resolver), hosts))
    wall = time.perf_counter() - started
    queries = len(domains) + 2 * len(hosts)  # MX, then A and AAAA
    return {"wall_s": wall, "peak_mb": _peak_rss_mb(), "domains": len(domains),
            "hosts": len(hosts), "queries": queries,
            "failed": sum(1 for f in found if f.status.value not in ("mx", "implicit_mx"))
            + sum(1 for a in addresses if not a.addresses)}


def child_sslyze(spec: dict[str, Any]) -> dict[str, Any]:
    """sslyze's standard scan, through its own API: all cipher-suite commands + certificate."""
    import warnings

    from sslyze import (
        CipherSuitesScanResult,
        ProtocolWithOpportunisticTlsEnum,
        ScanCommand,
        ScanCommandAttemptStatusEnum,
        Scanner,
        ServerNetworkConfiguration,
        ServerNetworkLocation,
        ServerScanRequest,
    )

    warnings.filterwarnings("ignore", message="Parsed a serial number which wasn't positive")
    commands = {ScanCommand(f"{column}_cipher_suites"): label for label, column in _LABELS.items()}
    requests = [ServerScanRequest(
        server_location=ServerNetworkLocation(hostname=host, port=spec["port"], ip_address=ip),
        network_configuration=ServerNetworkConfiguration(
            tls_server_name_indication=host,
            tls_opportunistic_encryption=ProtocolWithOpportunisticTlsEnum.SMTP,
            smtp_ehlo_hostname="benchmark.invalid", network_timeout=round(spec["timeout"]),
        ),
        scan_commands={*commands, ScanCommand.CERTIFICATE_INFO},
    ) for host, ip in spec["targets"]]
    started = time.perf_counter()
    scanner = Scanner(per_server_concurrent_connections_limit=spec["per_host"],
                      concurrent_server_scans_limit=spec["concurrency"])
    scanner.queue_scans(requests)
    answers: Answers = {}
    for result in scanner.get_results():
        location = result.server_location
        key = f"{location.hostname} {location.ip_address}"
        entry: dict[str, Any] = {"versions": [], "suites": [], "cert": None}
        if result.scan_result is not None:
            for command, label in commands.items():
                attempt = getattr(result.scan_result, command.value)
                if attempt.status != ScanCommandAttemptStatusEnum.COMPLETED:
                    continue
                assert isinstance(attempt.result, CipherSuitesScanResult)
                accepted = [a.cipher_suite.name for a in attempt.result.accepted_cipher_suites]
                if accepted:
                    entry["versions"].append(label)
                entry["suites"] += [f"{label} {name}" for name in accepted]
            cert = result.scan_result.certificate_info
            if cert.status == ScanCommandAttemptStatusEnum.COMPLETED and cert.result:
                leaf = cert.result.certificate_deployments[0].received_certificate_chain[0]
                from cryptography.hazmat.primitives import hashes
                entry["cert"] = leaf.fingerprint(hashes.SHA256()).hex()
        entry["versions"].sort()
        entry["suites"].sort()
        answers[key] = entry
    return {"wall_s": time.perf_counter() - started, "peak_mb": _peak_rss_mb(),
            "answers": answers}


# -- testssl.sh (runs from the driver: it is a shell script) ----------------------------------

_TESTSSL_VERSIONS = {"SSLv2": "SSL 2.0", "SSLv3": "SSL 3.0", "TLS1": "TLS 1.0",
                     "TLS1_1": "TLS 1.1", "TLS1_2": "TLS 1.2", "TLS1_3": "TLS 1.3"}
_TESTSSL_CIPHER_ID = re.compile(r"^cipher-(tls1(?:_\d)?|ssl[23])_x[0-9a-f]+$")
_TESTSSL_ID_VERSION = {"ssl2": "SSL 2.0", "ssl3": "SSL 3.0", "tls1": "TLS 1.0",
                       "tls1_1": "TLS 1.1", "tls1_2": "TLS 1.2", "tls1_3": "TLS 1.3"}


def child_testssl(spec: dict[str, Any]) -> dict[str, Any]:
    """testssl.sh on every target, ``concurrency`` at once, from a child of its own: the child's
    RUSAGE_CHILDREN then covers testssl's processes and nothing else."""
    import resource

    binary, port, work = spec["binary"], spec["port"], Path(spec["work"])

    def one(target: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
        host, ip = target
        out = work / f"{host}-{ip}.json"
        subprocess.run(
            [binary, "--quiet", "--color", "0", "--warnings", "off", "--starttls", "smtp",
             "--ip", ip, "--nodns", "none", "-p", "-E", "-S", "--jsonfile", str(out),
             f"{host}:{port}"], capture_output=True, text=True, check=False, timeout=3600)
        return f"{host} {ip}", _parse_testssl(out)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=spec["concurrency"]) as pool:
        answers = dict(pool.map(one, [tuple(t) for t in spec["targets"]]))
    wall = time.perf_counter() - started
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"wall_s": wall, "peak_mb": largest, "answers": answers}


def _parse_testssl(path: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {"versions": [], "suites": [], "cert": None}
    try:
        findings = json.loads(path.read_text())
    except (OSError, ValueError):
        return entry
    for item in findings:
        ident, finding = item.get("id", ""), str(item.get("finding", ""))
        if ident in _TESTSSL_VERSIONS and finding.startswith("offered"):
            entry["versions"].append(_TESTSSL_VERSIONS[ident])
        elif _TESTSSL_CIPHER_ID.match(ident):
            version = _TESTSSL_ID_VERSION[ident.split("_x")[0].removeprefix("cipher-")]
            entry["suites"].append(f"{version} {finding.split()[-1]}")
        elif ident == "cert_fingerprintSHA256":
            entry["cert"] = finding.lower()
    entry["versions"].sort()
    entry["suites"].sort()
    return entry


# -- the driver -------------------------------------------------------------------------------

@dataclass
class Row:
    name: str
    wall_s: float
    peak_mb: float
    sessions: list[int] = field(default_factory=list)
    """Per STARTTLS target, as the servers counted them."""
    answers: Answers | None = None
    note: str = ""

    @property
    def mean_sessions(self) -> float:
        return sum(self.sessions) / len(self.sessions) if self.sessions else float("nan")


def run_child(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(Path(__file__)), "child", kind, json.dumps(spec)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} run failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _sessions(tb: Any, before: dict[Any, Any], targets: Iterable[tuple[str, str]]) -> list[int]:
    after = tb.stats()
    return [after[t].sessions - before[t].sessions for t in targets]


def compare(answers: Answers | None, reference: Answers, *, versions_only: bool = False) -> str:
    if answers is None:
        return "-"
    keys = sorted(reference)
    if sorted(answers) != keys:
        return f"no ({len(set(keys) ^ set(answers))} hosts differ)"
    fields = ("versions", "cert") if versions_only else ("versions", "suites", "cert")
    differing = [k for k in keys if any(answers[k][f] != reference[k][f] for f in fields)]
    if differing:
        return f"no ({len(differing)} of {len(keys)} hosts differ)"
    return "yes (versions, certificate)" if versions_only else "yes"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM; {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}")


def isc_part(args: argparse.Namespace, work: Path) -> list[Row]:
    from research.testbed import Testbed

    rows: list[Row] = []
    with Testbed.start("isc-2019", rtt_ms=args.rtt_ms) as tb:
        targets = [(h.name, ip) for h in tb.scenario.hosts if h.serves_tls for ip in h.addresses]
        domains = tb.write_domain_list(work / "isc-domains.csv")
        common = {"domains": str(domains), "resolver": tb.resolver, "port": tb.smtp_port,
                  "timeout": args.timeout, "concurrency": args.concurrency,
                  "per_host": args.per_host, "trust_ca": str(tb.ca_cert_path)}
        engines = ["full", "versions"] + ([] if args.no_sslyze else ["sslyze"])
        for engine in engines:
            before = tb.stats()
            print(f"isc-2019: survey --engine {engine} ...", file=sys.stderr, flush=True)
            got = run_child("survey", {**common, "engine": engine,
                                       "out": str(work / f"isc-{engine}")})
            rows.append(Row(f"survey `--engine {engine}`", got["wall_s"], got["peak_mb"],
                            _sessions(tb, before, targets), got["answers"]))
        if not args.no_sslyze:
            before = tb.stats()
            print("isc-2019: sslyze directly ...", file=sys.stderr, flush=True)
            got = run_child("sslyze", {**common, "targets": targets})
            rows.append(Row("sslyze standard scan (its API)", got["wall_s"], got["peak_mb"],
                            _sessions(tb, before, targets), got["answers"]))
        binary = shutil.which("testssl") or shutil.which("testssl.sh")
        if binary and not args.no_testssl:
            before = tb.stats()
            print("isc-2019: testssl.sh ...", file=sys.stderr, flush=True)
            (work / "testssl").mkdir()
            got = run_child("testssl", {"binary": binary, "targets": targets,
                                        "port": tb.smtp_port, "concurrency": args.concurrency,
                                        "work": str(work / "testssl")})
            rows.append(Row("testssl.sh `-p -E -S`", got["wall_s"], got["peak_mb"],
                            _sessions(tb, before, targets), got["answers"],
                            note="peak memory: largest single process (bash or openssl)"))
        elif not args.no_testssl:
            rows.append(Row("testssl.sh", float("nan"), float("nan"),
                            note="not installed (apt-get install testssl.sh)"))
    return rows


def scale_part(args: argparse.Namespace, work: Path) -> list[tuple[int, dict[str, Any], float]]:
    from research.testbed import Testbed
    from research.testbed.generate import generated

    found = []
    for hosts in args.scale:
        scenario = generated(hosts=hosts, rtt_ms=args.rtt_ms)
        with Testbed.start(scenario) as tb:
            domains = tb.write_domain_list(work / f"gen-{hosts}.csv")
            before = tb.stats()
            print(f"generated {hosts}: survey --engine full ...", file=sys.stderr, flush=True)
            got = run_child("survey", {
                "domains": str(domains), "resolver": tb.resolver, "port": tb.smtp_port,
                "timeout": args.timeout, "concurrency": args.scale_concurrency,
                "per_host": args.per_host, "trust_ca": str(tb.ca_cert_path), "engine": "full",
                "out": str(work / f"gen-{hosts}"), "ground_truth": str(scenario.path)})
            after = tb.stats()
            sessions = sum(after[k].sessions - before[k].sessions for k in after) / hosts
        found.append((hosts, got, sessions))
    return found


def _served(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per address: sessions and refusals during a run, and the peak connections so far."""
    return {ip: {"sessions": s.sessions - before[ip].sessions,
                 "throttled": s.throttled - before[ip].throttled,
                 "peak": s.peak_connections} for ip, s in after.items()}


def concentrated_part(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """A concentrated list (Zipf providers on shared pools): DNS, the survey, and the survey
    beside the sslyze path on a slice of it, all on one testbed."""
    from research.scan.inputs import read_domain_list
    from research.testbed import Testbed
    from research.testbed.generate import concentrated

    domains_n, addresses_n = args.concentrated
    scenario = concentrated(domains_n, addresses_n, rtt_ms=args.rtt_ms)
    found: dict[str, Any] = {"domains": domains_n, "addresses": len(scenario.addresses()),
                             "hosts": len(scenario.hosts),
                             "rows": sum(len(h.addresses) for h in scenario.hosts),
                             "providers": len({d.mx[0][1].split(".", 1)[1]
                                               for d in scenario.domains})}
    print(f"concentrated: {domains_n} domains, {found['addresses']} addresses: starting the "
          "testbed ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with Testbed.start(scenario, timeout=600) as tb:
        found["testbed_start_s"] = time.perf_counter() - started
        domain_list = tb.write_domain_list(work / "concentrated.csv")
        common = {"resolver": tb.resolver, "port": tb.smtp_port, "timeout": args.timeout,
                  "trust_ca": str(tb.ca_cert_path), "per_host": args.per_host}
        found["dns"] = []
        for dns_concurrency in args.dns_concurrency:
            print(f"concentrated: DNS with {dns_concurrency} lookups in flight ...",
                  file=sys.stderr, flush=True)
            found["dns"].append({"dns_concurrency": dns_concurrency, **run_child("dns", {
                "domains": str(domain_list), "resolver": tb.resolver,
                "timeout": args.timeout, "dns_concurrency": dns_concurrency})})
        before = tb.address_stats()
        print("concentrated: survey --engine full ...", file=sys.stderr, flush=True)
        got = run_child("survey", {**common, "domains": str(domain_list), "engine": "full",
                                   "concurrency": args.scale_concurrency,
                                   "out": str(work / "concentrated"), "summary_only": True,
                                   "ground_truth": str(scenario.path)})
        found["survey"] = {**got, "served": _served(before, tb.address_stats()),
                           "groups": {n: s.peak_connections
                                      for n, s in tb.group_stats().items()},
                           "group_refusals": sum(s.throttled
                                                 for s in tb.group_stats().values())}
        # The slice: the first domains by rank, surveyed by the engine and by the sslyze path.
        entries = list(itertools.islice(read_domain_list(domain_list), args.sslyze_slice))
        slice_list = work / "slice.csv"
        slice_list.write_text("rank,domain\n" + "".join(f"{e.rank},{e.domain}\n"
                                                         for e in entries))
        found["slice"] = {"domains": len(entries)}
        for engine in ("full", "sslyze"):
            before = tb.address_stats()
            print(f"concentrated slice of {len(entries)}: survey --engine {engine} ...",
                  file=sys.stderr, flush=True)
            got = run_child("survey", {**common, "domains": str(slice_list), "engine": engine,
                                       "concurrency": args.concurrency, "summary_only": True,
                                       "out": str(work / f"slice-{engine}")})
            found["slice"][engine] = {**got, "served": _served(before, tb.address_stats())}
    return found


def _address_figures(served: dict[str, dict[str, int]], domains: int) -> dict[str, float]:
    used = [s for s in served.values() if s["sessions"]]
    sessions = [s["sessions"] for s in used]
    return {"addresses": len(used), "sessions": sum(sessions),
            "per_address_mean": sum(sessions) / len(used) if used else float("nan"),
            "per_address_max": max(sessions, default=0),
            "per_domain": sum(sessions) / domains,
            "peak": max((s["peak"] for s in used), default=0),
            "refused": sum(s["throttled"] for s in used)}


def concentrated_report(args: argparse.Namespace, found: dict[str, Any]) -> list[str]:
    survey = found["survey"]
    mine = _address_figures(survey["served"], found["domains"])
    lines = [f"### Concentrated list: {found['domains']:,} domains on {found['addresses']:,} "
             f"addresses", "",
             f"{found['providers']} providers (Zipf {1.1}), {found['hosts']:,} MX names, "
             f"{found['rows']:,} (MX host, IP) rows; every address at {args.rtt_ms:g} ms; "
             f"testbed start-up {found['testbed_start_s']:.0f} s.", "",
             "| DNS lookups in flight | domains | MX hosts | queries | wall time (s) | "
             "queries per second | peak memory (MB) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for dns in found["dns"]:
        lines.append(f"| {dns['dns_concurrency']} | {dns['domains']:,} | {dns['hosts']:,} | "
                     f"{dns['queries']:,} | {_fmt(dns['wall_s'])} | "
                     f"{dns['queries'] / dns['wall_s']:,.0f} | {_fmt(dns['peak_mb'], 0)} |")
    counts = survey["counts"]
    lines += ["", f"Survey `--engine full`, `--concurrency {args.scale_concurrency}`, default "
              "politeness (`--per-host`, `--per-provider`, `--provider-rate`):", "",
              "| figure | value |", "| --- | --- |",
              f"| wall time | {survey['wall_s']:,.0f} s |",
              f"| peak memory | {survey['peak_mb']:,.0f} MB |",
              f"| addresses probed / (MX host, IP) rows | {counts['addresses']:,} / "
              f"{counts['hosts']:,} |",
              f"| sessions (servers' count) | {mine['sessions']:,.0f} |",
              f"| sessions per address, mean / max | {mine['per_address_mean']:.1f} / "
              f"{mine['per_address_max']} |",
              f"| sessions per domain | {mine['per_domain']:.2f} |",
              f"| peak connections at one address | {mine['peak']} |",
              f"| peak connections at one provider (across its pool) | "
              f"{max(survey['groups'].values(), default=0)} |",
              f"| refused by a provider-wide limit | {survey['group_refusals']} |",
              f"| ground truth mismatches | {survey['ground_truth_mismatches']} |", ""]
    part = found["slice"]
    rows = {engine: _address_figures(part[engine]["served"], part["domains"])
            for engine in ("full", "sslyze")}
    lines += [f"The first {part['domains']} domains by rank, the engine beside the sslyze path "
              f"(`--concurrency {args.concurrency}`):", "",
              "| run | sessions | per address (mean / max) | per domain | peak connections at "
              "one address | wall time (s) | peak memory (MB) | sessions vs sslyze |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for engine, label in (("full", "survey `--engine full`"),
                          ("sslyze", "survey `--engine sslyze`")):
        f, got = rows[engine], part[engine]
        lines.append(f"| {label} | {f['sessions']:,.0f} | {f['per_address_mean']:.1f} / "
                     f"{f['per_address_max']} | {f['per_domain']:.1f} | {f['peak']} | "
                     f"{_fmt(got['wall_s'])} | {_fmt(got['peak_mb'], 0)} | "
                     f"{_ratio(f['sessions'], rows['sslyze']['sessions'])} |")
    return [*lines, ""]


def _fmt(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"


def _ratio(value: float, reference: float) -> str:
    if value != value or reference != reference or reference == 0:
        return "-"
    return f"{value / reference:.3f}"


def report(args: argparse.Namespace, rows: list[Row],
           scale: list[tuple[int, dict[str, Any], float]],
           concentrated: dict[str, Any] | None = None) -> str:
    lines = [f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on: {machine()}.",
             f"Every host at {args.rtt_ms:g} ms round-trip time; --concurrency "
             f"{args.concurrency} hosts, --per-host {args.per_host} connections, --timeout "
             f"{args.timeout:g} s.", ""]
    if rows:
        reference = next((r for r in rows if r.name.startswith("sslyze standard")), None)
        path = next((r for r in rows if r.name == "survey `--engine sslyze`"), None)
        lines += ["### isc-2019 (23 STARTTLS addresses of 32)", "",
                  "| run | sessions per STARTTLS host (mean / max) | wall time (s) | peak memory "
                  "(MB) | sessions vs sslyze | wall vs sslyze | wall vs survey --engine sslyze "
                  "| memory vs sslyze | same answers as sslyze |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for row in rows:
            ref_sessions = reference.mean_sessions if reference else float("nan")
            ref_wall = reference.wall_s if reference else float("nan")
            ref_mem = reference.peak_mb if reference else float("nan")
            same = compare(row.answers, reference.answers,
                           versions_only="versions" in row.name) if (
                reference and reference.answers and row is not reference) else (
                "(reference)" if row is reference else "-")
            sessions = (f"{_fmt(row.mean_sessions)} / {max(row.sessions)}" if row.sessions
                        else "-")
            lines.append(
                f"| {row.name} | {sessions} | {_fmt(row.wall_s)} | {_fmt(row.peak_mb, 0)} | "
                f"{_ratio(row.mean_sessions, ref_sessions)} | {_ratio(row.wall_s, ref_wall)} | "
                f"{_ratio(row.wall_s, path.wall_s) if path else '-'} | "
                f"{_ratio(row.peak_mb, ref_mem)} | {same} |")
        notes = [f"{r.name}: {r.note}" for r in rows if r.note]
        if notes:
            lines += [""] + [f"- {note}" for note in notes]
        lines.append("")
    if scale:
        lines += ["### Generated scenarios, `--engine full`", "",
                  f"--concurrency {args.scale_concurrency}.", "",
                  "| hosts | wall time (s) | per host (s) | peak memory (MB) | sessions per host "
                  "| ground truth mismatches | per host vs smallest | memory vs smallest |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        base_hosts, base, _ = scale[0]
        for hosts, got, per_host in scale:
            lines.append(
                f"| {hosts:,} | {_fmt(got['wall_s'])} | {got['wall_s'] / hosts:.3f} | "
                f"{_fmt(got['peak_mb'], 0)} | {per_host:.1f} | "
                f"{got['ground_truth_mismatches']} | "
                f"{_ratio(got['wall_s'] / hosts, base['wall_s'] / base_hosts)} | "
                f"{_ratio(got['peak_mb'], base['peak_mb'])} |")
    if concentrated:
        lines += ["", *concentrated_report(args, concentrated)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:
        _init_labels()
        kind, spec = argv[1], json.loads(argv[2])
        run = {"survey": child_survey, "sslyze": child_sslyze, "testssl": child_testssl,
               "dns": child_dns}[kind]
        result = run(spec)
        print(json.dumps(result, default=str))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--per-host", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--scale", type=lambda t: [int(x) for x in t.split(",") if x],
                        default=[100, 1000], help="generated host counts (empty: skip)")
    parser.add_argument("--scale-concurrency", type=int, default=20)
    parser.add_argument("--no-isc", action="store_true")
    parser.add_argument("--no-sslyze", action="store_true")
    parser.add_argument("--no-testssl", action="store_true")
    parser.add_argument("--concentrated", type=lambda t: tuple(int(x) for x in t.split(",")),
                        default=None, metavar="DOMAINS,ADDRESSES",
                        help="also survey a concentrated list (e.g. 10000,1000)")
    parser.add_argument("--sslyze-slice", type=int, default=500,
                        help="domains of the concentrated list also surveyed by the sslyze path")
    parser.add_argument("--dns-concurrency", type=lambda t: [int(x) for x in t.split(",")],
                        default=[10, 32], help="DNS lookups in flight to compare")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--hosts", action="store_true",
                        help="run the per-host benchmark instead (benchmarks/hosts.py: five "
                        "hosts, ours beside sslyze's CLI; --rtt-ms, --timeout and --json apply)")
    args = parser.parse_args(argv)
    if args.hosts:
        from hosts import main as hosts_main

        return hosts_main(["--rtt-ms", f"{args.rtt_ms:g}", "--timeout", f"{args.timeout:g}",
                           *(["--json", str(args.json)] if args.json else [])])
    _init_labels()
    work = Path(tempfile.mkdtemp(prefix="starttls-bench-"))
    concentrated = None
    try:
        rows = [] if args.no_isc else isc_part(args, work)
        scale = scale_part(args, work) if args.scale else []
        if args.concentrated:
            concentrated = concentrated_part(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(args, rows, scale, concentrated)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
            "isc": [{"name": r.name, "wall_s": r.wall_s, "peak_mb": r.peak_mb,
                     "sessions": r.sessions,
                     "answers_sha256": hashlib.sha256(json.dumps(r.answers, sort_keys=True)
                                                      .encode()).hexdigest()}
                    for r in rows],
            "scale": [{"hosts": h, "wall_s": g["wall_s"], "peak_mb": g["peak_mb"],
                       "sessions_per_host": s,
                       "ground_truth_mismatches": g["ground_truth_mismatches"]}
                      for h, g, s in scale],
            "concentrated": concentrated,
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
