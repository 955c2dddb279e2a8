"""``python -m research.testbed``: ``serve`` (the child process of Testbed.start) and ``up``.

``serve`` is internal: it expects certificates made by the parent. ``up`` is the same as
``starttls-survey testbed up`` for when the CLI is not at hand.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import shutil
import sys
from pathlib import Path

from research.errors import SurveyError
from research.store.files import write_json
from research.testbed.runtime import (
    DEFAULT_DNS_HOST,
    FOREGROUND_DNS_PORT,
    Endpoints,
    run_foreground,
    serve_forever,
)
from research.testbed.scenario import load_scenario
from research.testbed.smtp_server import command_log


def _port(text: str) -> int | None:
    if text == "auto":
        return None
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port")
    return port


def _stdin_at_eof() -> bool:
    fd = sys.stdin.fileno()
    if not select.select([fd], [], [], 0)[0]:
        return False
    try:
        return os.read(fd, 1) == b""
    except OSError:
        return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m research.testbed")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "up"):
        p = sub.add_parser(name)
        p.add_argument("--scenario", required=True, help="scenario name or TOML file")
        p.add_argument("--dns-host", default=DEFAULT_DNS_HOST)
        p.add_argument("--dns-port", type=_port,
                       default=0 if name == "serve" else FOREGROUND_DNS_PORT)
        p.add_argument("--smtp-port", type=_port, default=None,
                       help="port for every SMTP host; 'auto' (default): 2525 or a free one")
        p.add_argument("--rtt-ms", type=float, default=None,
                       help="round-trip delay of the SMTP hosts (replaces the scenario's)")
        p.add_argument("--https-port", type=_port, default=None,
                       help="port for the MTA-STS policy hosts; 'auto' (default): 8443 or free")
    serve = sub.choices["serve"]
    serve.add_argument("--cert-dir", type=Path, required=True)
    serve.add_argument("--ready-file", type=Path)
    serve.add_argument("--stats-file", type=Path)
    serve.add_argument("--watch-stdin", action="store_true",
                       help="stop when stdin reaches EOF (the parent is gone)")
    serve.add_argument("--orphan-cleanup", type=Path, metavar="DIR",
                       help="with --watch-stdin: remove DIR if the parent went away")
    sub.choices["up"].add_argument("--domain-list", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    # aiosmtpd logs every connection at INFO; a scan makes thousands.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    if args.command == "serve":
        # The log a Testbed keeps (Testbed.log_path) shows what clients sent.
        command_log.setLevel(logging.INFO)
    try:
        if args.command == "up":
            return run_foreground(args.scenario, dns_host=args.dns_host, dns_port=args.dns_port,
                                  smtp_port=args.smtp_port, domain_list_path=args.domain_list,
                                  rtt_ms=args.rtt_ms, https_port=args.https_port)

        def ready(endpoints: Endpoints) -> None:
            print(f"ready: dns {endpoints.resolver}, smtp port {endpoints.smtp_port}", flush=True)
            if args.ready_file is not None:
                write_json(args.ready_file, {
                    "pid": os.getpid(), "dns_host": endpoints.dns_host,
                    "dns_port": endpoints.dns_port, "smtp_port": endpoints.smtp_port,
                    "https_port": endpoints.https_port})

        serve_forever(load_scenario(args.scenario), cert_dir=args.cert_dir,
                      dns_host=args.dns_host, dns_port=args.dns_port, smtp_port=args.smtp_port,
                      on_ready=ready, stats_file=args.stats_file, watch_stdin=args.watch_stdin,
                      rtt_ms=args.rtt_ms, https_port=args.https_port)
        if args.watch_stdin and args.orphan_cleanup is not None and _stdin_at_eof():
            # A parent that stops us normally removes the directory itself, after we exit.
            shutil.rmtree(args.orphan_cleanup, ignore_errors=True)
        return 0
    except SurveyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
