"""The ``starttls-survey`` command: a thin layer over the library.

Exit codes: 0 the command ran (failed hosts are results, not errors); 2 bad usage or unusable
input, with a one-line message; 130 interrupted by Ctrl-C, 143 by SIGTERM (the tables for what
finished are written either way).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import ipaddress
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from research import settings as config
from research.errors import SurveyError
from research.memory import steady_memory
from research.store.schema import Engine

if TYPE_CHECKING:
    from research.settings import SurveySettings
    from research.store.results import SurveyResults

PROG = "starttls-survey"


EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), the tables of the finished work written."""
EXIT_TERMINATED = 143
"""Exit status after SIGTERM (128 + SIGTERM), the same way."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a survey stops as it does on Ctrl-C."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage dump: the user sees what is wrong and where to look.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be at most 65535, not {value}")
    return value


def _port_or_zero(text: str) -> int:
    return 0 if text.strip() == "0" else _port(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Survey STARTTLS and TLS on mail (MX) servers.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    scan = sub.add_parser("scan", help="survey domains' MX hosts",
                          description="Resolve MX hosts of the domains and probe each once.")
    scan.add_argument("domains", nargs="*", metavar="DOMAIN", help="domains to survey")
    scan.add_argument("--domains", dest="domains_file", type=Path, metavar="FILE",
                      help="the domain list: one a line, a CSV with a 'domain' (and 'rank') "
                           "column, or rank,domain lines (Tranco, Umbrella, Alexa); plain, "
                           "gzip, bzip2, xz or a zip of one file; - for standard input; or a "
                           "shipped list's name: isc-2019-top100 (the 2019 study's)")
    scan.add_argument("--top", type=_positive_int, metavar="N",
                      help="survey the first N entries of the list (reads no further)")
    scan.add_argument("--list-id", metavar="ID",
                      help="the list's published ID (e.g. Tranco's), recorded in meta.json "
                           "and the report")
    _add_scan_options(scan, out_required=True)
    scan.add_argument("--resume", action="store_true",
                      help="continue a survey in --out, skipping finished work")
    scan.add_argument("--opt-out", type=Path, metavar="FILE",
                      help="names (with everything below them) and IP networks never to "
                           "contact, one a line")
    _add_engine_options(scan)
    _add_license_option(scan)

    testbed = sub.add_parser("testbed", help="the loopback testbed")
    tb_sub = testbed.add_subparsers(dest="testbed_command", required=True, parser_class=_Parser)
    up = tb_sub.add_parser("up", help="start the testbed's servers until interrupted")
    up.add_argument("--scenario", default="isc-2019", help="scenario name or .toml file")
    up.add_argument("--dns-host", default="127.0.0.1", help="address for the DNS server")
    up.add_argument("--dns-port", type=_port_or_zero, default=5300, help="DNS port (0 = any)")
    up.add_argument("--smtp-port", type=_port_or_zero, default=2525,
                    help="SMTP port shared by all hosts (0: 2525 if free, else any free one)")
    up.add_argument("--domain-list", type=Path, help="where to write the scenario's domains")
    up.add_argument("--rtt-ms", type=_milliseconds, default=None,
                    help="round-trip delay of every SMTP host (replaces the scenario's)")
    tb_sub.add_parser("list", help="list the scenarios")
    generate = tb_sub.add_parser("generate", help="write a scenario of N hosts with a realistic "
                                 "mix, or of N domains concentrated on M addresses of "
                                 "Zipf-sized providers (for benchmarks)")
    size = generate.add_mutually_exclusive_group(required=True)
    size.add_argument("--hosts", type=_positive_int,
                      help="number of hosts, each on its own address with a domain of its own")
    size.add_argument("--domains", type=_positive_int,
                      help="number of domains, concentrated on --addresses addresses")
    generate.add_argument("--addresses", type=_positive_int,
                          help="about how many addresses the --domains share")
    generate.add_argument("--out", type=Path, required=True, metavar="FILE",
                          help="scenario file to write (.toml)")
    generate.add_argument("--seed", type=int, default=0, help="shuffles the mix (default 0)")
    generate.add_argument("--rtt-ms", type=_milliseconds, default=0.0,
                          help="round-trip delay of every host (default 0)")

    report = sub.add_parser("report", help="write figures, tables and an HTML page for a survey",
                            description="Write the report folder (DIR/report by default).")
    report.add_argument("results", type=Path, metavar="DIR", help="a survey's output directory")
    report.add_argument("--out", type=Path, help="report folder (default: DIR/report)")
    report.add_argument("--previous", type=Path, metavar="DIR",
                        help="an earlier survey of the same list, to compare against")
    report.add_argument("--dpi", type=_positive_int, default=300, help="PNG resolution")

    _add_logs_parser(sub)

    demo = sub.add_parser("demo", help="survey the isc-2019 testbed and print the headline")
    demo.add_argument("--out", type=Path, default=config.RESULTS_DIR / "demo-isc-2019",
                      help="output directory, replaced (default: results/demo-isc-2019 under "
                           "the current directory)")
    demo.add_argument("--scenario", default="isc-2019", help="testbed scenario")
    demo.add_argument("--concurrency", type=_positive_int, default=config.DEFAULT_CONCURRENCY)
    demo.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)

    notebooks = sub.add_parser("notebooks", help="copy the study's notebooks into a directory",
                               description="Copy the notebooks that ship with the package into "
                                           "DIR, to open with Jupyter.")
    notebooks.add_argument("dir", type=Path, metavar="DIR", help="where to copy them (made if "
                           "missing)")
    notebooks.add_argument("--force", action="store_true",
                           help="overwrite notebooks of the same name in DIR")
    return parser


def _add_scan_options(p: argparse.ArgumentParser, *, out_required: bool) -> None:
    p.add_argument("--out", type=Path, required=out_required, metavar="DIR",
                   help="output directory: raw log, tables, meta.json")
    p.add_argument("--resolver", action="append", metavar="IP[:PORT]",
                   help="DNS server to ask (repeatable); default: the system's")
    p.add_argument("--port", type=_port, default=config.DEFAULT_PORT, help="SMTP port (25)")
    p.add_argument("--ehlo-name", default=config.DEFAULT_EHLO_NAME,
                   help="name sent in EHLO; use one that identifies you")
    p.add_argument("--timeout", type=_seconds, default=config.DEFAULT_TIMEOUT,
                   help="seconds per network operation")
    p.add_argument("--concurrency", type=_positive_int, default=config.DEFAULT_CONCURRENCY,
                   help="addresses probed at once")
    p.add_argument("--dns-concurrency", type=_positive_int,
                   default=config.DEFAULT_DNS_CONCURRENCY, help="DNS lookups in flight")
    p.add_argument("--per-host", type=_positive_int, default=config.DEFAULT_PER_HOST_CONNECTIONS,
                   dest="per_host_connections",
                   help="connections to one address at once, at most (fewer once it refuses "
                   "more)")
    p.add_argument("--per-provider", type=_positive_int,
                   default=config.DEFAULT_PER_PROVIDER_CONNECTIONS,
                   dest="per_provider_connections",
                   help="connections to one provider (registrable domain of the MX names) at "
                   "once, across its addresses")
    p.add_argument("--provider-rate", type=_seconds, default=config.DEFAULT_PROVIDER_RATE,
                   metavar="N", help="new sessions per second to one provider, at most")
    p.add_argument("--trust-ca", type=Path, metavar="FILE",
                   help="extra PEM root certificates for the certificate check")
    p.add_argument("--mta-sts-port", type=_port, default=config.DEFAULT_MTA_STS_PORT,
                   metavar="N", help="HTTPS port of MTA-STS policy hosts (443)")
    p.add_argument("--dnssec-anchor", type=Path, metavar="FILE",
                   help="DS/DNSKEY trust anchors: validate DNSSEC here instead of trusting "
                   "the resolver's AD bit")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: on a terminal)")


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be 0 to 10000 ms, not {text}")
    return value


def _non_negative_int(text: str) -> int:
    return 0 if text.strip() == "0" else _positive_int(text)


def _non_negative_seconds(text: str) -> float:
    return 0.0 if text.strip() in ("0", "0.0") else _seconds(text)


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=[e.value for e in Engine], default=Engine.FULL.value,
                   help="TLS scan: full (versions and accepted suites, the default), versions "
                   "(versions only, no suites), sslyze (sslyze's per-suite scan, 500+ sessions "
                   "per host; for cross-checks)")
    p.add_argument("--versions-only", dest="engine", action="store_const",
                   const=Engine.VERSIONS.value, help="same as --engine versions")
    p.add_argument("--retries", type=_non_negative_int, default=config.DEFAULT_RETRIES,
                   help="retries of a session an address left unanswered (timeout) before it "
                   "is given up; refusals (421, reset) are limits to learn, not failures")
    p.add_argument("--backoff", type=_non_negative_seconds, default=config.DEFAULT_BACKOFF,
                   metavar="S", help="seconds an address is paused after a refusal or timeout; "
                   "doubles with each in a row")
    p.add_argument("--greeting-timeout", type=_seconds, default=config.DEFAULT_GREETING_TIMEOUT,
                   metavar="S", help="seconds to wait for the whole SMTP greeting (greet "
                   "pauses hold it back)")
    p.add_argument("--host-budget", type=_seconds, default=config.DEFAULT_HOST_BUDGET,
                   metavar="S", help="seconds an address (and each further MX name on it) is "
                   "given before what is still open is reported undecided")
    p.add_argument("--dask-scheduler", metavar="ADDRESS",
                   help="run the host probes on this Dask cluster (e.g. tcp://10.0.0.5:8786)")


def _add_license_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--license", metavar="ID|URL",
                   help="licence of the data, for DIR/datapackage.json: an SPDX identifier "
                   "(CC-BY-4.0, CC0-1.0, ODbL-1.0, ...) or the licence's address; default none "
                   "(the data describe other people's servers: you decide)")


def _add_logs_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    logs = sub.add_parser(
        "logs", help="TLS sessions from your own MTA's logs and packet captures",
        description="Read Postfix, Exim and Sendmail logs (plain or gzip) and pcap/pcapng "
                    "captures, recognised by content; write DIR/sessions.parquet and meta.json.")
    logs.add_argument("files", nargs="+", type=Path, metavar="FILE", help="logs or captures")
    logs.add_argument("--out", type=Path, required=True, metavar="DIR",
                      help="output directory for sessions.parquet and meta.json")
    logs.add_argument("--timezone", default="UTC", metavar="ZONE",
                      help="IANA zone the server logs local times in (default UTC)")
    logs.add_argument("--year", type=_positive_int, default=None,
                      help="year of syslog dates, which have none (default: from each file's "
                           "modification time)")
    logs.add_argument("--local-ip", action="append", default=[], metavar="IP",
                      dest="local_ips", help="this server's address, to tell inbound from "
                                             "outbound in captures (repeatable)")
    _add_license_option(logs)


def _version() -> str:
    from research import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    steady_memory()
    args = build_parser().parse_args(argv)
    try:
        if args.command == "scan":
            return _scan(args)
        if args.command == "testbed":
            return _testbed(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "report":
            return _report(args)
        if args.command == "logs":
            return _logs(args)
        if args.command == "notebooks":
            return _notebooks(args)
    except SurveyError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, Terminated)
        print(f"{PROG}: {'terminated' if terminated else 'interrupted'}; finished work is in "
              "the raw log (use --resume)", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    return 2


def _scan(args: argparse.Namespace) -> int:
    from research.scan.inputs import from_arguments, read_domain_list
    from research.scan.survey import run_survey
    from research.settings import SurveySettings

    if bool(args.domains) == bool(args.domains_file):
        raise SurveyError("give either DOMAIN arguments or --domains FILE")
    if args.domains and (args.top is not None or args.list_id is not None):
        raise SurveyError("--top and --list-id go with --domains FILE, not DOMAIN arguments")
    if args.trust_ca is not None and not args.trust_ca.is_file():
        raise SurveyError(f"{args.trust_ca}: --trust-ca file not found")
    if args.dnssec_anchor is not None and not args.dnssec_anchor.is_file():
        raise SurveyError(f"{args.dnssec_anchor}: --dnssec-anchor file not found")
    domains = read_domain_list(args.domains_file, top=args.top, list_id=args.list_id) \
        if args.domains_file else from_arguments(args.domains)
    settings = SurveySettings.build(
        resolvers=args.resolver or (), port=args.port, ehlo_name=args.ehlo_name,
        timeout=args.timeout, concurrency=args.concurrency,
        dns_concurrency=args.dns_concurrency,
        per_host_connections=args.per_host_connections, trust_ca=args.trust_ca,
        opt_out=args.opt_out, mta_sts_port=args.mta_sts_port, dnssec_anchor=args.dnssec_anchor,
        engine=args.engine, retries=args.retries, backoff=args.backoff, license=args.license,
        greeting_timeout=args.greeting_timeout, host_budget=args.host_budget,
        per_provider_connections=args.per_provider_connections,
        provider_rate=args.provider_rate,
    )
    if settings.probe.ehlo_name == config.DEFAULT_EHLO_NAME and not _on_loopback(settings):
        print(f"{PROG}: warning: EHLO {config.DEFAULT_EHLO_NAME} does not identify you to the "
              "mail servers you survey; pass --ehlo-name with a name that resolves to this "
              "scanner (and an address whose reverse DNS says the same)", file=sys.stderr)
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        with _dask_client(args.dask_scheduler) as client:
            results = run_survey(domains, args.out, settings, resume=args.resume,
                                 progress=args.progress, executor=client)
    except KeyboardInterrupt as stop:
        how = "terminated" if isinstance(stop, Terminated) else "interrupted"
        print(f"{PROG}: {how}; tables of the finished work written to {args.out}/ "
              "(rerun with --resume to finish)", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # Probe threads (ours, non-daemon) may sit in a network call for up to a session's
        # time budget, and Python would wait for them at exit; their results are not wanted.
        os._exit(EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED)
    finally:
        signal.signal(signal.SIGTERM, previous)
    _print_summary(results, args.out)
    if results.meta.get("smtp_port_blocked"):
        print(f"{PROG}: warning: every host timed out or refused the connection while DNS "
              f"worked: outbound port {args.port} is probably blocked on this network, so the "
              "host statuses describe the network, not the mail servers", file=sys.stderr)
    return 0


def _on_loopback(settings: SurveySettings) -> bool:
    """Whether the survey asks only loopback resolvers (a testbed): then no mail server it
    reaches is anybody else's."""
    from research.scan.resolver import parse_server

    return bool(settings.resolvers) and all(
        ipaddress.ip_address(parse_server(r)[0]).is_loopback for r in settings.resolvers)


@contextlib.contextmanager
def _dask_client(address: str | None) -> Iterator[Any]:
    """A Dask client connected to ``address`` (None: no client); raises SurveyError if the
    scheduler cannot be reached."""
    if address is None:
        yield None
        return
    try:
        from distributed import Client
    except ImportError:
        raise SurveyError("--dask-scheduler needs Dask, an optional part: "
                          "pip install 'starttls-survey[dask]'") from None
    try:
        client = Client(address, timeout=30)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SurveyError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        yield client
    finally:
        client.close()


def _testbed(args: argparse.Namespace) -> int:
    from research.testbed import list_scenarios, run_foreground

    if args.testbed_command == "list":
        for name in list_scenarios():
            print(name)
        return 0
    if args.testbed_command == "generate":
        from research.testbed.generate import write_concentrated, write_generated

        if (args.domains is None) != (args.addresses is None):
            raise SurveyError("--domains and --addresses go together")
        try:
            if args.domains is not None:
                path = write_concentrated(args.out, args.domains, args.addresses,
                                          seed=args.seed, rtt_ms=args.rtt_ms)
                what = f"{args.domains} domains on about {args.addresses} addresses"
            else:
                path = write_generated(args.out, args.hosts, seed=args.seed, rtt_ms=args.rtt_ms)
                what = f"{args.hosts} hosts"
        except (ValueError, OSError) as exc:
            raise SurveyError(f"{args.out}: {exc}") from None
        print(f"{path}: {what}; start it with: {PROG} testbed up --scenario {path}")
        return 0
    return run_foreground(
        args.scenario, dns_host=args.dns_host, dns_port=args.dns_port,
        smtp_port=args.smtp_port or None, domain_list_path=args.domain_list, rtt_ms=args.rtt_ms,
    )


def _demo(args: argparse.Namespace) -> int:
    from research.demo import run_demo
    from research.report import write_report

    results = run_demo(args.out, scenario=args.scenario, concurrency=args.concurrency,
                       progress=args.progress, echo=print)
    _print_summary(results, args.out)
    page = write_report(results, args.out / "report")
    print(f"Report written to {page}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from research.report import write_report
    from research.store.results import load_results

    results = load_results(args.results)
    previous = load_results(args.previous) if args.previous else None
    page = write_report(results, args.out or args.results / "report", previous=previous,
                        dpi=args.dpi)
    print(f"Report written to {page}")
    return 0


def _logs(args: argparse.Namespace) -> int:
    from research.errors import InputError
    from research.traffic.reader import write_sessions

    try:
        meta = write_sessions(args.files, args.out, timezone=args.timezone, year=args.year,
                              local_ips=args.local_ips, license=args.license)
    except OSError as exc:
        raise InputError(f"{args.out}: cannot write ({exc.strerror or exc})") from None
    for item in meta["inputs"]:
        print(f"{item['path']}: {item['kind']}{' (gzip)' if item['compressed'] else ''}, "
              f"{item['lines']} {'packets' if item['kind'] != 'log' else 'lines'}, "
              f"{item['sessions']} sessions, {item['unparseable']} unparseable")
    print(f"{meta['counts']['sessions']} sessions written to {args.out}/sessions.parquet")
    return 0


def _notebooks(args: argparse.Namespace) -> int:
    from research.demo import copy_notebooks

    for path in copy_notebooks(args.dir, force=args.force):
        print(path)
    if importlib.util.find_spec("ipykernel") is None:
        print("No Jupyter kernel in this environment: pip install 'starttls-survey[jupyter]', "
              "or install starttls-survey into your Jupyter's environment")
    else:
        print(f"Open them with Jupyter: jupyter lab {args.dir}")
    return 0


def _print_summary(results: SurveyResults, out: Path) -> None:
    from research.analysis import format_summary

    print(format_summary(results))
    print(f"\nTables written to {out}/")

