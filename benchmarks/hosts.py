"""The per-host benchmark: a survey of fewer hosts than ``--concurrency``, beside sslyze.

Not a pass/fail test (``make bench-hosts``, or ``benchmarks/run.py --hosts``). On the ``five``
scenario (five Postfix hosts of five providers with TLS 1.0-1.2, every one ``--rtt-ms`` away,
50 ms by default), one after another on the same testbed, each in a fresh child process whose
wall time, start-up included, is the figure:

- this project's survey CLI at its defaults (``--per-host 2``), and with ``--per-host 5``;
- sslyze's CLI, its standard scan (every cipher-suite command and the certificate) of the five
  hosts at its defaults (5 connections per server, 10 servers at once).

Sessions are the testbed servers' own counts. Per host, our time (the ``addresses`` table's
``duration_s``: first session to last) is set against its lower bound: the host's sessions ÷
the connections it may have open × the mean time of one session. The connections it may have
open are ``--per-host``, within the provider's connections and what the provider's rate
(``--provider-rate`` sessions a second) keeps open: rate × one session's time. The mean session
is taken two ways: as the run measured it (the ``addresses`` table's ``session_s``: its sessions
under the run's load, two cores shared by every session and the testbed's servers), and as the
host's own mix — the SMTP probe, one accepted handshake per accepted suite, one refused
handshake per part (each part of a lane ends with a refusal) — of sessions timed alone on the
same testbed. Answers (versions, suites per version, certificate) are
compared with sslyze's. Every run is made ``--repeat`` times (3), in interleaved rounds; the
median wall time stands for each.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

SESSION_SAMPLES = 5
"""Sessions of each kind timed alone for the mean session time."""


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "starttls-survey"
    return [str(script)] if script.exists() else [sys.executable, "-m", "research"]


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return wall


def session_times(tb: Any, timeout: float) -> dict[str, float]:
    """Seconds of one session of each kind, timed alone (the mean of a few) on the first host:
    the SMTP probe, an accepted engine handshake (TLS 1.2) and a refused one (SSL 3.0)."""
    from research.scan.engine import TlsTarget, lanes
    from research.scan.engine._session import _Accepted, _Rejected, run_session
    from research.scan.smtp import probe_smtp
    from research.store.schema import Engine

    probe = tb.settings(timeout=timeout).probe
    host = tb.scenario.hosts[0]
    target = TlsTarget(host.name, host.addresses[0], tb.smtp_port)
    by_name = {lane.name: lane for lane in lanes(Engine.FULL)}
    accepted, refused = by_name["TLS 1.2 (modern client)"], by_name["SSL 3.0 (legacy client)"]

    def mean(run: Any, kind: type | None = None) -> float:
        times = []
        for _ in range(SESSION_SAMPLES):
            started = time.perf_counter()
            outcome = run()
            times.append(time.perf_counter() - started)
            assert kind is None or isinstance(outcome, kind), outcome
        return statistics.fmean(times)

    probe_smtp(host.name, host.addresses[0], probe)  # the first call pays for imports
    return {"probe": mean(lambda: probe_smtp(host.name, host.addresses[0], probe)),
            "accepted": mean(lambda: run_session(target, probe, accepted, accepted.suites,
                                                 False), _Accepted),
            "refused": mean(lambda: run_session(target, probe, refused, refused.suites,
                                                False), _Rejected)}


def ours(tb: Any, work: Path, per_host: int, args: argparse.Namespace,
         times: dict[str, float]) -> dict[str, Any]:
    """Our survey CLI in a child process; per host: sessions, parts, its time and bound."""
    from research.store.results import load_results

    work.mkdir(parents=True, exist_ok=True)
    out = work / f"ours-{per_host}"
    domains = tb.write_domain_list(work / "five.csv")
    before = tb.stats()
    wall = _timed([*_cli(), "scan", "--domains", str(domains), "--out", str(out),
                   "--resolver", tb.resolver, "--port", str(tb.smtp_port),
                   "--trust-ca", str(tb.ca_cert_path), "--timeout", f"{args.timeout:g}",
                   "--per-host", str(per_host), "--no-progress"])
    after = tb.stats()
    results = load_results(out)
    rows = results.addresses.set_index("ip")
    hosts = []
    for host in tb.scenario.hosts:
        ip = host.addresses[0]
        sessions = after[(host.name, ip)].sessions - before[(host.name, ip)].sessions
        accepted = int((results.ciphers["ip"] == ip).sum())
        parts = int(rows.loc[ip, "parts"])
        entry: dict[str, Any] = {
            "host": host.name, "ip": ip, "sessions": sessions, "accepted": accepted,
            "parts": parts, "duration_s": float(rows.loc[ip, "duration_s"]),
            "peak_connections": after[(host.name, ip)].peak_connections,
            # Every session accounted for: the probe, one per accepted suite, one per part.
            "sessions_accounted": sessions == 1 + accepted + parts}

        # The mean session as this run's gate measured it (sessions under the run's load) ...
        entry["in_run"] = _bound(sessions, per_host, entry["duration_s"],
                                 float(rows.loc[ip, "session_s"]))
        # ... and the host's mix of sessions each timed alone.
        entry["alone"] = _bound(sessions, per_host, entry["duration_s"],
                                (times["probe"] + accepted * times["accepted"]
                                 + parts * times["refused"]) / (1 + accepted + parts))
        hosts.append(entry)
    return {"name": f"ours `--per-host {per_host}`", "wall_s": wall,
            "sessions": sum(h["sessions"] for h in hosts), "hosts": hosts,
            "slowest_host_s": max(h["duration_s"] for h in hosts),
            "answers": _our_answers(results)}


def _bound(sessions: int, per_host: int, took: float, mean: float) -> dict[str, float]:
    """The lower bound of a host's time: its sessions ÷ the connections it may have open × the
    mean session (module doc), and ``took`` against it."""
    from research.settings import DEFAULT_PER_PROVIDER_CONNECTIONS, DEFAULT_PROVIDER_RATE

    connections = min(per_host, DEFAULT_PER_PROVIDER_CONNECTIONS, DEFAULT_PROVIDER_RATE * mean)
    limit = sessions / connections * mean
    return {"mean_session_s": mean, "connections": connections, "bound_s": limit,
            "vs_bound": took / limit}


def _our_answers(results: Any) -> dict[str, Any]:
    from research.store.schema import TLS_VERSIONS

    found = {}
    for _, row in results.hosts.iterrows():
        mine = results.ciphers[results.ciphers["ip"] == row["ip"]]
        found[row["ip"]] = {
            "versions": sorted(v.label for v in TLS_VERSIONS if row[v.column] is True
                               or str(row[v.column]) == "True"),
            "suites": sorted(f"{v} {c}" for v, c in zip(mine["tls_version"], mine["cipher"],
                                                         strict=True)),
            "cert": row["cert_sha256"]}
    return found


def sslyze(tb: Any, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """sslyze's CLI in a child process: every cipher-suite command and the certificate."""
    work.mkdir(parents=True, exist_ok=True)
    out = work / "sslyze.json"
    targets = [f"{h.name}:{tb.smtp_port}{{{h.addresses[0]}}}" for h in tb.scenario.hosts]
    before = tb.stats()
    wall = _timed([sys.executable, "-m", "sslyze", "--quiet", "--json_out", str(out),
                   "--starttls", "smtp",
                   "--mozilla_config", "disable", "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1",
                   "--tlsv1_2", "--tlsv1_3", "--certinfo", *targets])
    after = tb.stats()
    sessions = {h.name: after[(h.name, h.addresses[0])].sessions
                - before[(h.name, h.addresses[0])].sessions for h in tb.scenario.hosts}
    return {"name": "sslyze CLI (5 connections per server)", "wall_s": wall,
            "sessions": sum(sessions.values()), "per_host_sessions": sessions,
            "answers": _sslyze_answers(json.loads(out.read_text()))}


_SSLYZE_COMMANDS = {"ssl_2_0_cipher_suites": "SSL 2.0", "ssl_3_0_cipher_suites": "SSL 3.0",
                    "tls_1_0_cipher_suites": "TLS 1.0", "tls_1_1_cipher_suites": "TLS 1.1",
                    "tls_1_2_cipher_suites": "TLS 1.2", "tls_1_3_cipher_suites": "TLS 1.3"}


def _sslyze_answers(document: dict[str, Any]) -> dict[str, Any]:
    found = {}
    for server in document["server_scan_results"]:
        scan = server["scan_result"] or {}
        entry: dict[str, Any] = {"versions": [], "suites": [], "cert": None}
        for command, label in _SSLYZE_COMMANDS.items():
            result = (scan.get(command) or {}).get("result") or {}
            names = [a["cipher_suite"]["name"] for a in result.get("accepted_cipher_suites", [])]
            if names:
                entry["versions"].append(label)
            entry["suites"] += [f"{label} {name}" for name in names]
        deployments = ((scan.get("certificate_info") or {}).get("result") or {}).get(
            "certificate_deployments") or []
        if deployments:
            # sslyze's JSON has the fingerprint in base64; the survey's tables in hex.
            entry["cert"] = base64.b64decode(deployments[0]["received_certificate_chain"][0][
                "fingerprint_sha256"]).hex()
        entry["versions"].sort()
        entry["suites"].sort()
        found[server["server_location"]["ip_address"]] = entry
    return found


def _median(tries: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(tries, key=lambda run: run["wall_s"])
    return {**ordered[(len(ordered) - 1) // 2], "walls_s": [run["wall_s"] for run in tries]}


def report(found: dict[str, Any]) -> str:
    runs, theirs = found["runs"], found["sslyze"]
    times = found["session_s"]
    lines = [f"Measured {found['when']} on: {found['machine']}.",
             f"Every host at {found['rtt_ms']:g} ms round-trip time (both directions, the "
             f"connect included); each run a fresh child process, start-up included.", "",
             f"Wall time: the median of {found['repeat']} rounds (every round's in brackets); the "
             "rest from the run of median wall time.", "",
             "| run | wall time (s) | vs sslyze | sessions (servers' count) | slowest host (s) "
             "| same answers as sslyze |", "| --- | --- | --- | --- | --- | --- |"]
    for run in [*runs, theirs]:
        same = ("(reference)" if run is theirs else
                "yes" if run["answers"] == theirs["answers"] else "no")
        slowest = f"{run['slowest_host_s']:.2f}" if "slowest_host_s" in run else "-"
        walls = ", ".join(f"{wall:.2f}" for wall in run["walls_s"])
        lines.append(f"| {run['name']} | {run['wall_s']:.2f} ({walls}) | "
                     f"{run['wall_s'] / theirs['wall_s']:.3f} | {run['sessions']} | {slowest} "
                     f"| {same} |")
    lines += ["", f"One session, timed alone: SMTP probe {times['probe']:.3f} s, accepted "
              f"handshake {times['accepted']:.3f} s, refused handshake {times['refused']:.3f} s.",
              "", "Per host, its bound with the mean session as the run measured it (under "
              "the run's load), and with its mix of sessions each timed alone:", "",
              "| run | host | sessions | accepted suites | parts | time (s) | mean session, in "
              "the run (s) | connections | bound (s) | vs bound | mean session, alone (s) | "
              "bound (s) | vs bound |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- "
              "| --- | --- | --- | --- |"]
    for run in runs:
        for host in run["hosts"]:
            live, alone = host["in_run"], host["alone"]
            lines.append(
                f"| {run['name']} | {host['host']} | {host['sessions']} | {host['accepted']} | "
                f"{host['parts']} | {host['duration_s']:.2f} | {live['mean_session_s']:.3f} | "
                f"{live['connections']:.2f} | {live['bound_s']:.2f} | {live['vs_bound']:.2f} | "
                f"{alone['mean_session_s']:.3f} | {alone['bound_s']:.2f} | "
                f"{alone['vs_bound']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of every run; the median wall time stands")
    parser.add_argument("--json", type=Path, default=HERE / "hosts.json",
                        help="write the raw figures here")
    args = parser.parse_args(argv)
    from run import machine

    from research.testbed import Testbed

    work = Path(tempfile.mkdtemp(prefix="starttls-bench-hosts-"))
    try:
        with Testbed.start("five", rtt_ms=args.rtt_ms) as tb:
            print("five: session times ...", file=sys.stderr, flush=True)
            times = session_times(tb, args.timeout)
            tries: dict[str, list[dict[str, Any]]] = {"2": [], "5": [], "sslyze": []}
            for round_ in range(1, args.repeat + 1):
                # Interleaved rounds: a busy spell of the machine falls on every tool alike.
                for per_host in (2, 5):
                    print(f"five, round {round_}: ours --per-host {per_host} ...",
                          file=sys.stderr, flush=True)
                    tries[str(per_host)].append(ours(tb, work / str(round_), per_host, args,
                                                     times))
                print(f"five, round {round_}: sslyze ...", file=sys.stderr, flush=True)
                tries["sslyze"].append(sslyze(tb, work / str(round_), args))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Each tool's run of median wall time stands for it; every wall time is kept.
    runs, theirs = [_median(tries["2"]), _median(tries["5"])], _median(tries["sslyze"])
    found = {"when": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "machine": machine(),
             "rtt_ms": args.rtt_ms, "repeat": args.repeat, "session_s": times, "runs": runs,
             "sslyze": theirs}
    text = report(found)
    print(text)
    args.json.write_text(json.dumps(found, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
