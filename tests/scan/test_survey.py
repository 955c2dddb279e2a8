"""The survey against the testbed's `cases` scenario: every DNS case, every host status, every
TLS version range, checked against the ground truth written in the scenario file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support.groundtruth import assert_domains_match, assert_hosts_match

from research.scan import mx as mxdns
from research.scan.inputs import read_domain_list
from research.scan.resolver import make_resolver
from research.scan.smtp import probe_smtp
from research.scan.survey import run_survey
from research.settings import ProbeSettings
from research.store.files import RAW_LOG_NAME
from research.store.rawlog import read_records
from research.store.results import SurveyResults, load_results
from research.store.schema import TLS_VERSIONS, VERSION_COLUMNS, DnsStatus, HostStatus
from research.testbed import Testbed

TIMEOUT = 2.0


@pytest.fixture(scope="module")
def cases_scan(cases_testbed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> SurveyResults:
    out = tmp_path_factory.mktemp("cases-scan")
    domain_list = cases_testbed.write_domain_list(out / "domains.csv")
    run_survey(read_domain_list(domain_list), out / "results",
               cases_testbed.settings(timeout=TIMEOUT, greeting_timeout=TIMEOUT,
                                     ehlo_name="survey-test.example"),
               progress=False)
    # Read back from disk: the test checks the saved contract, not objects in memory.
    return load_results(out / "results")


def test_every_domain_gets_its_expected_dns_status(
    cases_testbed: Testbed, cases_scan: SurveyResults
) -> None:
    assert_domains_match(cases_testbed.scenario, cases_scan)
    # The scenario must exercise every status DNS can produce (invalid is input-only,
    # opted_out the scanner's own choice).
    assert set(cases_scan.domains["dns_status"]) == {s.value for s in DnsStatus} - {
        "invalid", "opted_out"}


def test_hosts_table_agrees_with_ground_truth(
    cases_testbed: Testbed, cases_scan: SurveyResults
) -> None:
    assert_hosts_match(cases_testbed.scenario, cases_scan)
    assert set(cases_scan.hosts["status"]) == {s.value for s in HostStatus} - {"opted_out"}


def test_version_columns_null_only_where_not_measured(cases_scan: SurveyResults) -> None:
    hosts = cases_scan.hosts
    measured = hosts["status"] == "starttls"
    assert hosts.loc[measured, list(VERSION_COLUMNS)].notna().all().all()
    assert hosts.loc[~measured, list(VERSION_COLUMNS)].isna().all().all()


def test_each_target_is_scanned_once(cases_scan: SurveyResults) -> None:
    assert not cases_scan.hosts.duplicated(["mx_host", "ip"]).any()
    scanned = set(cases_scan.hosts["mx_host"])
    assert scanned == set(cases_scan.mx["mx_host"])


def test_mx_preference_order_and_implicit_mx(cases_scan: SurveyResults) -> None:
    mx = cases_scan.mx
    backup = mx[mx["domain"] == "backup-mx.test"]
    assert backup["preference"].is_monotonic_increasing
    assert len(backup) == 2
    implicit = mx[mx["domain"] == "implicit-mx.test"]
    assert implicit[["preference", "mx_host"]].values.tolist() == [[0, "implicit-mx.test"]]


def test_certificates_and_ciphers_are_recorded(cases_scan: SurveyResults) -> None:
    hosts = cases_scan.hosts.set_index(["mx_host", "ip"])
    ok = hosts.loc[("mx.tls10-13.test", "127.0.200.7")]
    assert ok["cert_matches_mx"] is True or bool(ok["cert_matches_mx"])
    assert not bool(ok["cert_self_signed"])
    assert "testbed" in ok["cert_issuer"].lower()
    assert ok["negotiated_version"] == "TLS 1.3"
    wrong = hosts.loc[("mx.tls13-only.test", "127.0.200.5")]
    assert not bool(wrong["cert_matches_mx"])
    selfsigned = hosts.loc[("mx.tls12-only.test", "127.0.200.4")]
    assert bool(selfsigned["cert_self_signed"])
    expired = hosts.loc[("mx.tls10-11.test", "127.0.200.3")]
    assert expired["cert_not_after"] < pd.Timestamp.now(tz="UTC")

    ciphers = cases_scan.ciphers
    tls12 = ciphers[ciphers["mx_host"] == "mx.tls12-only.test"]
    # That host is configured with exactly two RSA-key-exchange CBC suites.
    assert sorted(tls12["cipher"]) == [
        "TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA"
    ]
    assert not tls12["forward_secrecy"].any() and not tls12["aead"].any()
    tls13 = ciphers[ciphers["tls_version"] == "TLS 1.3"]
    assert tls13["forward_secrecy"].all() and tls13["aead"].all()
    # Every accepted suite belongs to a version the host accepts.
    merged = ciphers.merge(cases_scan.hosts, on=["mx_host", "ip"])
    for _, row in merged.iterrows():
        column = next(v.column for v in TLS_VERSIONS if v.label == row["tls_version"])
        assert row[column] is True or bool(row[column])


def test_meta_describes_the_run(cases_testbed: Testbed, cases_scan: SurveyResults) -> None:
    meta = cases_scan.meta
    assert meta["resolver"] == [cases_testbed.resolver]
    assert meta["port"] == cases_testbed.smtp_port
    assert meta["ehlo_name"] == "survey-test.example"
    assert meta["versions"]["sslyze"] and meta["versions"]["openssl_nassl"].startswith("OpenSSL")
    assert len(meta["domain_list_sha256"]) == 64
    assert meta["counts"]["hosts"] == len(cases_scan.hosts)
    assert meta["finished_at"] >= meta["started_at"]


def test_dns_resolution_directly(cases_testbed: Testbed) -> None:
    resolver = make_resolver([cases_testbed.resolver], timeout=TIMEOUT)
    two = mxdns.resolve_mx("two-mx.test", resolver=resolver)
    assert two.status is DnsStatus.MX
    assert [m.preference for m in two.mx] == sorted(m.preference for m in two.mx)
    servfail = mxdns.resolve_mx("servfail.test", resolver=resolver, retries=1)
    assert servfail.status is DnsStatus.DNS_ERROR and "SERVFAIL" in (servfail.error or "")
    assert mxdns.resolve_addresses("mx.unresolved.test", resolver=resolver).addresses == []


def test_smtp_probe_is_polite(cases_testbed: Testbed) -> None:
    """EHLO carries our name, STARTTLS is used, and the session ends with QUIT."""
    spec = next(h for h in cases_testbed.scenario.hosts if h.name == "mx.no-starttls.test")
    probe = probe_smtp(spec.name, spec.addresses[0], ProbeSettings(
        port=cases_testbed.smtp_port, ehlo_name="polite.example", timeout=TIMEOUT))
    assert probe.status is HostStatus.NO_STARTTLS
    assert probe.banner and probe.banner.startswith("220 ")
    assert "STARTTLS" not in probe.ehlo_extensions and probe.ehlo_extensions
    log = cases_testbed.log_path.read_text()
    assert "EHLO polite.example" in log and "QUIT" in log
    for verb in ("MAIL FROM", "RCPT TO", "DATA"):
        assert verb not in log


def _host_records(out: Path) -> list[dict[str, object]]:
    return [r for r in read_records(out / RAW_LOG_NAME) if r["kind"] == "host"]


def test_resume_scans_only_what_is_missing(cases_testbed: Testbed, tmp_path: Path) -> None:
    names = ["tls10-only.test", "tls12-only.test", "no-starttls.test", "two-mx.test"]
    settings = cases_testbed.settings(timeout=TIMEOUT, greeting_timeout=TIMEOUT)
    full = run_survey(names, tmp_path / "full", settings, progress=False)

    # Simulate a scan that died after its first two hosts: keep the log up to there.
    partial = tmp_path / "partial"
    partial.mkdir()
    lines = (tmp_path / "full" / RAW_LOG_NAME).read_text().splitlines(keepends=True)
    host_lines = [i for i, ln in enumerate(lines) if json.loads(ln)["kind"] == "host"]
    (partial / RAW_LOG_NAME).write_text("".join(lines[: host_lines[1] + 1]) + '{"kind": "ho')
    done_before = {(r["mx_host"], r["ip"]) for r in _host_records(partial)}
    assert len(done_before) == 2

    resumed = run_survey(names, partial, settings, resume=True, progress=False)
    records = _host_records(partial)
    keys = [(r["mx_host"], r["ip"]) for r in records]
    assert len(keys) == len(set(keys)), "a finished host was scanned again"
    for name in ("domains", "mx", "ciphers"):
        pd.testing.assert_frame_equal(resumed.table(name), full.table(name))
    stable = ["mx_host", "ip", "status", *VERSION_COLUMNS, "cert_sha256"]
    pd.testing.assert_frame_equal(resumed.hosts[stable], full.hosts[stable])
    assert resumed.meta["runs"] == 2


def test_rescan_into_a_used_directory_needs_resume(cases_testbed: Testbed, tmp_path: Path) -> None:
    from research.errors import InputError

    settings = cases_testbed.settings(timeout=TIMEOUT, greeting_timeout=TIMEOUT)
    run_survey(["no-starttls.test"], tmp_path, settings, progress=False)
    with pytest.raises(InputError, match="--resume"):
        run_survey(["no-starttls.test"], tmp_path, settings, progress=False)
    with pytest.raises(InputError, match="different domain list"):
        run_survey(["tls10-only.test"], tmp_path, settings, resume=True, progress=False)


def test_cli_scan_writes_the_tables(cases_testbed: Testbed, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "research", "scan", "no-starttls.test", "tls10-only.test",
         "ghost.invalid-name!", "--out", str(tmp_path / "o"), "--resolver",
         cases_testbed.resolver, "--port", str(cases_testbed.smtp_port), "--timeout", "2",
         "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("domains", "mx", "hosts", "ciphers"):
        assert (tmp_path / "o" / f"{name}.parquet").stat().st_size > 0
    results = load_results(tmp_path / "o")
    assert list(results.domains["dns_status"]) == ["mx", "mx", "invalid"]
    assert json.loads((tmp_path / "o" / "meta.json").read_text())["port"] == (
        cases_testbed.smtp_port
    )
