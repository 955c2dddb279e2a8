"""Pipeline benchmark: the phased survey (before) and the streaming survey (after), side by side.

Not part of the pass/fail tests (``make bench-pipeline``). For each list size, one testbed of
the generated concentrated list (``research.testbed.generate.concentrated(N, N // 10)``, or
``--addresses`` at every size: Zipf providers on shared pools, every host at ``--rtt-ms``)
serves two surveys, one after the other, each in a fresh child process: first the code of
``--before`` (a git worktree of the commit before the stream, with its own ``.venv``), then
this tree's. Both run ``--engine full`` with ``--concurrency 20`` and the default politeness.

Measured per run:

- **time to the first probe**: from the call of ``run_survey`` (the child's clock) to the first
  SMTP session any testbed address counted (the parent polls ``Testbed.address_stats()`` every
  ``POLL_S`` seconds until one has; the figure is the time of the answer that showed it);
- **wall time** of ``run_survey``, tables included;
- **sessions**: the testbed servers' own count over all addresses;
- **ground-truth mismatches**: (MX host, IP) rows whose status or accepted versions are not the
  scenario's;
- **peak memory**: the child's ``VmHWM`` after the survey (whole process, tables written).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
POLL_S = 0.2
"""How often the parent asks the testbed whether a session has started, seconds."""


# -- what runs in a child process (with the tree's own Python and package) --------------------

def child(spec: dict[str, Any]) -> dict[str, Any]:
    tree = Path(spec["tree"])
    sys.path[:0] = [str(tree), str(tree / "benchmarks")]
    # As the starttls-survey command does, before pyarrow loads: the tree's own set-up.
    try:
        from research.memory import steady_memory
    except ImportError:  # older trees: research.cli's, or only Arrow's pool
        import research.cli

        steady_memory = getattr(research.cli, "steady_memory", None)
    if steady_memory is not None:
        steady_memory()
    else:
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    import run as bench  # the tree's own benchmarks/run.py: its helpers

    from research.scan.inputs import read_domain_list
    from research.scan.survey import run_survey
    from research.settings import SurveySettings

    bench._init_labels()
    domains = read_domain_list(Path(spec["domains"]))
    settings = SurveySettings.build(
        resolvers=[spec["resolver"]], port=spec["port"], timeout=spec["timeout"],
        concurrency=spec["concurrency"], engine="full", trust_ca=spec["trust_ca"])
    started_at = time.time()
    started = time.perf_counter()
    print(json.dumps({"started_at": started_at}), flush=True)
    results = run_survey(domains, spec["out"], settings, progress=False)
    wall = time.perf_counter() - started
    peak = bench._peak_rss_mb()
    import research

    return {"started_at": started_at, "wall_s": wall, "peak_mb": peak,
            "package": str(Path(research.__file__).parent),
            "counts": results.meta["counts"],
            "ground_truth_mismatches": bench._ground_truth_mismatches(
                Path(spec["ground_truth"]), results)}


# -- the parent --------------------------------------------------------------------------------

def survey(tb: Any, tree: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """One survey in a child process of ``tree``'s Python, timed from outside as well."""
    before = tb.address_stats()
    base = sum(s.sessions for s in before.values())
    python = tree / ".venv" / "bin" / "python"
    # stderr to a file: a pipe nobody reads while the survey runs could fill and stall it.
    errors = Path(spec["out"] + ".stderr")
    with errors.open("w") as err_file:
        proc = subprocess.Popen([str(python), str(Path(__file__)), "child",
                                 json.dumps({**spec, "tree": str(tree)})],
                                stdout=subprocess.PIPE, stderr=err_file, text=True,
                                cwd=str(tree))
    assert proc.stdout is not None
    started_at = json.loads(proc.stdout.readline())["started_at"]
    first: float | None = None
    while first is None and proc.poll() is None:
        time.sleep(POLL_S)
        stats = tb.address_stats()
        if sum(s.sessions for s in stats.values()) > base:
            first = time.time()
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"survey in {tree} failed:\n{errors.read_text()[-4000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    after = tb.address_stats()
    result["first_probe_s"] = None if first is None else first - started_at
    result["sessions"] = sum(s.sessions for s in after.values()) - base
    result["peak_connections_per_address"] = max(s.peak_connections for s in after.values())
    return result


def size_part(args: argparse.Namespace, domains_n: int, work: Path) -> dict[str, Any]:
    from research.testbed import Testbed
    from research.testbed.generate import concentrated

    addresses_n = args.addresses if args.addresses is not None else max(1, domains_n // 10)
    scenario = concentrated(domains_n, addresses_n, rtt_ms=args.rtt_ms)
    found: dict[str, Any] = {"domains": domains_n, "addresses": len(scenario.addresses()),
                             "rows": sum(len(h.addresses) for h in scenario.hosts),
                             "mx_hosts": len(scenario.hosts)}
    print(f"{domains_n} domains: starting the testbed ...", file=sys.stderr, flush=True)
    with Testbed.start(scenario, timeout=600) as tb:
        domain_list = tb.write_domain_list(work / f"list-{domains_n}.csv")
        spec = {"domains": str(domain_list), "resolver": tb.resolver, "port": tb.smtp_port,
                "timeout": args.timeout, "trust_ca": str(tb.ca_cert_path),
                "concurrency": args.concurrency, "ground_truth": str(scenario.path)}
        for name, tree in (("before", args.before), ("after", ROOT)):
            if name not in args.runs:
                continue
            print(f"{domains_n} domains: survey {name} ({tree}) ...", file=sys.stderr,
                  flush=True)
            found[name] = survey(tb, tree, {**spec, "out": str(work / f"{name}-{domains_n}")})
            print(f"  {json.dumps({k: v for k, v in found[name].items() if k != 'counts'})}",
                  file=sys.stderr, flush=True)
    return found


def _commit(tree: Path) -> str:
    return subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False).stdout.strip()


def report(found: dict[str, Any]) -> str:
    lines = [
        f"Measured {found['measured']} on: {found['machine']}. Every host at "
        f"{found['rtt_ms']:g} ms round-trip time; `--engine full --concurrency "
        f"{found['concurrency']}`; before: {found['before_commit']}, after: "
        f"{found['after_commit']}.",
        "",
        "| domains | addresses | run | first probe (s) | wall time (s) | sessions | "
        "ground-truth mismatches | peak memory (MB) | first probe after/before | "
        "wall after/before |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size in found["sizes"]:
        b, a = size.get("before"), size.get("after")
        for name, run in (("before", b), ("after", a)):
            if run is None:
                continue
            both = name == "after" and b is not None
            ratio_first = (f"{a['first_probe_s'] / b['first_probe_s']:.3f}"
                           if both and a["first_probe_s"] and b["first_probe_s"] else "")
            ratio_wall = f"{a['wall_s'] / b['wall_s']:.3f}" if both else ""
            first = "–" if run["first_probe_s"] is None else f"{run['first_probe_s']:.1f}"
            lines.append(f"| {size['domains']:,} | {size['addresses']:,} | {name} | {first} | "
                         f"{run['wall_s']:.1f} | {run['sessions']:,} | "
                         f"{run['ground_truth_mismatches']} | {run['peak_mb']:.0f} | "
                         f"{ratio_first} | {ratio_wall} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:
        print(json.dumps(child(json.loads(argv[1])), default=str))
        return 0
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(HERE))
    from run import machine

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True,
                        help="a worktree of the commit to compare with, with its own .venv")
    parser.add_argument("--sizes", type=lambda t: [int(x) for x in t.split(",")],
                        default=[1000, 10000], help="list lengths (domains)")
    parser.add_argument("--addresses", type=int, default=None,
                        help="the generated list's addresses at every size (default: a tenth "
                             "of its domains); a fixed count separates the list's length "
                             "from the addresses it reaches")
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--runs", type=lambda t: t.split(","), default=["before", "after"],
                        help="which runs (a re-measurement of one side only: after)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    if args.addresses is not None and args.addresses < 1:
        parser.error("--addresses must be at least 1")
    args.before = args.before.resolve()
    found: dict[str, Any] = {
        "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
        "rtt_ms": args.rtt_ms, "concurrency": args.concurrency, "addresses": args.addresses,
        "before_commit": _commit(args.before), "after_commit": _commit(ROOT), "sizes": []}
    with tempfile.TemporaryDirectory(prefix="starttls-pipeline-") as work:
        for domains_n in args.sizes:
            found["sizes"].append(size_part(args, domains_n, Path(work)))
            if args.json:  # after each size: a long run that dies keeps what it measured
                args.json.write_text(json.dumps(found, indent=2))
    print(report(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
