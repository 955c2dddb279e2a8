"""Network hygiene: a blocked port 25 is called what it is, and an opt-out list is honoured for
every name and address the scan meets, as the servers themselves can tell."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.scanning import TimedScan, cli_scan

from research.errors import InputError
from research.scan.optout import read_opt_out
from research.scan.survey import run_survey
from research.store.results import load_results, make_table, smtp_port_blocked
from research.testbed import Testbed

# -- outbound port 25 blocked ----------------------------------------------------------------

def test_blocked_port_is_reported_not_a_world_without_mail(
    blocked_testbed: Testbed, tmp_path: Path
) -> None:
    domain_list = blocked_testbed.write_domain_list(tmp_path / "domains.csv")
    out = tmp_path / "out"
    proc = subprocess.run(cli_scan(blocked_testbed, domain_list, out), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1
    assert f"outbound port {blocked_testbed.smtp_port} is probably blocked" in warnings[0]
    results = load_results(out)
    assert set(results.hosts["status"]) == {"timeout", "refused"}
    assert results.meta["smtp_port_blocked"] is True
    assert json.loads((out / "meta.json").read_text())["smtp_port_blocked"] is True


def test_a_survey_that_reached_servers_is_not_blocked(hostile_scan: TimedScan) -> None:
    # The hostile scenario is full of dead hosts, but some answered: no false alarm.
    assert hostile_scan.results.meta["smtp_port_blocked"] is False


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], None),
        ([("mx.a.example", "192.0.2.1", "timeout")], None),  # one dead host proves nothing
        ([("mx.a.example", "192.0.2.1", "timeout"), ("mx.b.example", "192.0.2.2", "refused")],
         True),
        ([("mx.a.example", "192.0.2.1", "timeout"), ("mx.b.example", None, "unresolved"),
          ("mx.c.example", "192.0.2.3", "opted_out")], None),
        ([("mx.a.example", "192.0.2.1", "timeout"), ("mx.b.example", "192.0.2.2", "refused"),
          ("mx.c.example", "192.0.2.3", "smtp_error")], False),
    ],
)
def test_blocked_verdict_needs_two_unreachable_hosts_with_addresses(
    rows: list[tuple[str, str | None, str]], expected: bool | None
) -> None:
    hosts = make_table("hosts", [{"mx_host": h, "ip": ip, "status": s, "ehlo_extensions": [],
                                  "cert_sans": []} for h, ip, s in rows])
    assert smtp_port_blocked(hosts) is expected


# -- the opt-out list ------------------------------------------------------------------------

OPT_OUT = """\
# Operators who asked not to be scanned
tls10-only.test            # a domain: itself and everything below it
mx.no-starttls.test        # an MX host name
127.0.200.9/32             # the starttls-rejected host's only address
::1                        # the IPv6 address of mx.tls10-13.test
"""


def test_opt_out_file_format(tmp_path: Path) -> None:
    path = tmp_path / "opt-out.txt"
    path.write_text(OPT_OUT + "Bücher.Example\n*.no-starttls.test\n198.51.100.7/24\n")
    got = read_opt_out(path)
    # A wildcard means the same as the bare name: the name and everything below it.
    assert got.names == {"tls10-only.test", "mx.no-starttls.test", "xn--bcher-kva.example",
                         "no-starttls.test"}
    assert [str(n) for n in got.networks] == ["127.0.200.9/32", "::1/128", "198.51.100.0/24"]
    assert got.match_name("mx.no-starttls.test") == "mx.no-starttls.test"  # closest entry
    assert got.match_name("a.b.No-Starttls.test.") == "no-starttls.test"
    assert got.match_name("other-no-starttls.test") is None
    assert got.match_ip("198.51.100.200") == "198.51.100.0/24"
    assert got.match_ip("127.0.200.10") is None and got.match_ip("not-an-ip") is None
    assert len(got) == 7


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("ok.example\nbad name.example\n", "line 2: not a name or IP network"),
        ("10.0.0.0/33\n", "line 1: not a name or IP network"),
        ("300.1.2.3\n", "line 1: not a name or IP network"),
        ("localhost\n", "line 1:"),
    ],
)
def test_bad_opt_out_entries_refuse_the_whole_list(tmp_path: Path, content: str,
                                                   message: str) -> None:
    path = tmp_path / "opt-out.txt"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        read_opt_out(path)
    assert "\n" not in str(info.value)


def test_opted_out_names_and_addresses_are_recorded_and_never_contacted(
    cases_testbed: Testbed, tmp_path: Path
) -> None:
    opt_out = tmp_path / "opt-out.txt"
    opt_out.write_text(OPT_OUT)
    domains = ["tls10-only.test", "no-starttls.test", "starttls-rejected.test",
               "backup-mx.test"]
    before = cases_testbed.stats()
    results = run_survey(domains, tmp_path / "out",
                         cases_testbed.settings(timeout=2.0, greeting_timeout=2.0,
                                                opt_out=opt_out), progress=False)
    after = cases_testbed.stats()

    doms = results.domains.set_index("domain")
    assert doms.loc["tls10-only.test", "dns_status"] == "opted_out"
    assert doms.loc["tls10-only.test", "mx_count"] == 0
    assert doms.loc["tls10-only.test", "error"] == (
        "on the opt-out list (tls10-only.test): not looked up")
    assert list(doms["dns_status"][1:]) == ["mx", "mx", "mx"]

    table = results.hosts.astype(object).where(results.hosts.notna(), None)
    hosts = {(h, ip): (s, e) for h, ip, s, e in zip(
        table["mx_host"], table["ip"], table["status"], table["error"], strict=True)}
    assert hosts == {
        ("mx.no-starttls.test", None): (
            "opted_out", "on the opt-out list (mx.no-starttls.test): not looked up or "
            "contacted"),
        ("mx.starttls-rejected.test", "127.0.200.9"): (
            "opted_out", "address in a network on the opt-out list (127.0.200.9/32): "
            "not contacted"),
        ("mx.tls10-13.test", "::1"): (
            "opted_out", "address in a network on the opt-out list (::1/128): not contacted"),
        ("mx.tls10-13.test", "127.0.200.7"): ("starttls", None),
        ("mx.refused.test", "127.0.200.13"): ("refused", "connection refused"),
    }
    # The servers' own counters: not one connection to what was opted out.
    for target in [("mx.tls10-only.test", "127.0.200.1"), ("mx.no-starttls.test", "127.0.200.8"),
                   ("mx.starttls-rejected.test", "127.0.200.9"), ("mx.tls10-13.test", "::1")]:
        assert after[target].sessions == before[target].sessions, target
    assert after[("mx.tls10-13.test", "127.0.200.7")].sessions > (
        before[("mx.tls10-13.test", "127.0.200.7")].sessions)
    assert results.meta["options"]["opt_out"] == str(opt_out)
    assert results.meta["counts"]["host_status"]["opted_out"] == 3
    # Resuming without the list would contact those who asked not to be: refused.
    with pytest.raises(InputError, match="started with the opt-out list"):
        run_survey(domains, tmp_path / "out", cases_testbed.settings(timeout=2.0),
                   progress=False, resume=True)


def test_cli_opt_out_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "opt-out.txt"
    bad.write_text("fine.example\n10.0.0.0/33\n")
    for path, needle in [(tmp_path / "missing.txt", "cannot read opt-out list"),
                         (bad, "line 2: not a name or IP network")]:
        proc = subprocess.run(
            [sys.executable, "-m", "research", "scan", "a.example", "--out",
             str(tmp_path / "o"), "--resolver", "127.0.0.1:9", "--opt-out", str(path)],
            capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and needle in proc.stderr
        assert "Traceback" not in proc.stderr
        assert not (tmp_path / "o" / "raw.jsonl").exists()


def test_opt_out_covers_mta_sts_policy_hosts(enforcement_testbed: Testbed, tmp_path: Path
                                             ) -> None:
    """A policy host whose address (or name) is on the list is never fetched from: the domain's
    fetch says so, where without the list the policy is fetched."""
    tb = enforcement_testbed
    ok = tb.scenario.domain("sts-ok.test")
    degraded = tb.scenario.domain("sts-degraded.test")
    assert ok.mta_sts is not None and degraded.mta_sts is not None
    opt_out = tmp_path / "opt-out.txt"
    opt_out.write_text(f"{ok.mta_sts.address}\n{degraded.mta_sts.host}\n")
    results = run_survey([ok.name, degraded.name], tmp_path / "out",
                         tb.settings(timeout=2.0, opt_out=opt_out), progress=False)
    sts = results.mta_sts.set_index("domain")
    assert list(sts["fetch_status"]) == ["opted_out", "opted_out"]
    assert sts.loc[ok.name, "fetch_error"] == (
        f"{ok.mta_sts.address}: in a network on the opt-out list ({ok.mta_sts.address}/32): "
        "not contacted")
    assert sts.loc[degraded.name, "fetch_error"] == (
        f"on the opt-out list ({degraded.mta_sts.host}): not looked up or contacted")
    assert sts["policy_ip"].isna().all() and sts["policy_result"].isna().all()
    # The same domains without the list: both policies fetched.
    plain = run_survey([ok.name, degraded.name], tmp_path / "plain",
                       tb.settings(timeout=2.0), progress=False)
    assert list(plain.mta_sts["fetch_status"]) == ["ok", "ok"]
