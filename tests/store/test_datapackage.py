"""The Data Package a survey and a ``logs`` run publish: the descriptor follows the schema, the
CSV exports read back as the tables, and the ``frictionless`` validator accepts both (and
refuses a tampered copy)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from support.packages import errors_of, frictionless
from support.survey_builder import META, build, domain, frame, host, mx, sample

from research.cli import main
from research.errors import InputError
from research.settings import SurveySettings
from research.store import datapackage
from research.store.datapackage import DESCRIPTOR_NAME, license_entry
from research.store.parquet import BatchWriter
from research.store.results import load_results, save_results
from research.store.schema import TABLES, HostStatus, column_names, columns
from research.traffic.reader import sample_files

BANNER = 'mx.a.example ESMTP "quoted", with commas\nsecond line'


def rich_survey() -> Any:
    """A survey with a value of every kind: lists, timestamps, nulls, a banner that needs
    quoting, and an enforcement row."""
    survey = build(
        [domain("a.example", 1), domain("b.example", 2, "nxdomain")],
        [mx("a.example", 10, "mx.a.example")],
        [host("mx.a.example", "192.0.2.1", versions=("TLS 1.2", "TLS 1.3"), banner=BANNER,
              ehlo_extensions=["STARTTLS", "SIZE 1000"],
              scanned_at="2024-03-05T10:01:02.250000+00:00", duration_s=0.25,
              webpki_result="ok", cert_key_bits=2048),
         host("mx.b.example", None, "unresolved", ehlo_extensions=[])],
        meta={**META, "domain_list": "list.csv", "domain_list_sha256": "ab" * 32,
              "options": {"port": 25, "license": "CC-BY-4.0"},
              "counts": {"domains": 2}})
    survey.mta_sts = frame("mta_sts", [{"domain": "a.example", "txt_status": "valid",
                                        "mx_patterns": ["*.a.example"], "max_age": 86400,
                                        "checked_at": "2024-03-05T10:02:00+00:00"}])
    return survey


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package")
    save_results(rich_survey(), out)
    return out


def descriptor(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / DESCRIPTOR_NAME).read_text(encoding="utf-8"))
    return data


def test_descriptor_follows_the_schema(saved: Path) -> None:
    d = descriptor(saved)
    assert d["$schema"] == datapackage.PACKAGE_SCHEMA
    assert d["name"].startswith("starttls-survey-")
    assert d["title"] == "STARTTLS survey of 2 domains, 2024-03-05"
    assert d["created"] == "2024-03-05T10:05:00Z"
    assert [r["name"] for r in d["resources"]] == list(TABLES)
    for resource in d["resources"]:
        table = resource["name"]
        assert resource["path"] == f"{table}.csv" and resource["type"] == "table"
        fields = resource["schema"]["fields"]
        assert [f["name"] for f in fields] == column_names(table)
        assert [f["description"] for f in fields] == [c.doc for c in columns(table)]
    hosts = {f["name"]: f for f in d["resources"][2]["schema"]["fields"]}
    assert {n: hosts[n]["type"] for n in ("port", "tls_1_2", "scanned_at", "ehlo_extensions",
                                          "duration_s", "banner")} == {
        "port": "integer", "tls_1_2": "boolean", "scanned_at": "datetime",
        "ehlo_extensions": "array", "duration_s": "number", "banner": "string"}
    assert hosts["status"]["constraints"]["enum"] == [s.value for s in HostStatus]
    assert hosts["max_version"]["constraints"]["enum"][-1] == "TLS 1.3"
    assert "constraints" not in hosts["banner"]


def test_descriptor_carries_provenance_licence_and_source(saved: Path) -> None:
    d = descriptor(saved)
    meta = json.loads((saved / "meta.json").read_text(encoding="utf-8"))
    assert d["provenance"] == meta
    assert d["licenses"] == [{"name": "CC-BY-4.0",
                              "path": "https://creativecommons.org/licenses/by/4.0/",
                              "title": "Creative Commons Attribution 4.0 International"}]
    assert d["sources"] == [{"title": f"domain list list.csv (SHA-256 {'ab' * 32})"}]
    assert d["contributors"] == [{"title": "starttls-survey 0.1.0", "role": "software"}]


def test_no_licence_unless_given(tmp_path: Path) -> None:
    save_results(sample(), tmp_path)
    assert "licenses" not in descriptor(tmp_path)


def test_each_resource_states_its_file_size_and_digest(saved: Path) -> None:
    for resource in descriptor(saved)["resources"]:
        data = (saved / resource["path"]).read_bytes()
        assert resource["bytes"] == len(data)
        assert resource["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()


def test_csv_exports_read_back_as_the_tables(saved: Path) -> None:
    tables = load_results(saved)
    hosts = pd.read_csv(saved / "hosts.csv", dtype=str, keep_default_na=False)
    assert len(hosts) == 2 and list(hosts.columns) == column_names("hosts")
    a, b = hosts.iloc[0], hosts.iloc[1]
    assert a["banner"] == BANNER  # newlines, quotes and commas survive the quoting
    assert json.loads(a["ehlo_extensions"]) == ["STARTTLS", "SIZE 1000"]
    assert json.loads(b["ehlo_extensions"]) == [] and b["ip"] == ""
    assert (a["tls_1_2"], a["tls_1_0"], b["tls_1_2"]) == ("true", "false", "")
    assert a["scanned_at"] == "2024-03-05T10:01:02.250000Z" and b["scanned_at"] == ""
    assert (a["duration_s"], a["port"], a["cert_key_bits"]) == ("0.25", "25", "2048")
    assert pd.Timestamp(a["scanned_at"]) == tables.hosts["scanned_at"].iloc[0]
    sts = pd.read_csv(saved / "mta_sts.csv", dtype=str, keep_default_na=False).iloc[0]
    assert json.loads(sts["mx_patterns"]) == ["*.a.example"] and sts["max_age"] == "86400"
    for table in TABLES:
        exported = pd.read_csv(saved / f"{table}.csv", dtype=str, keep_default_na=False)
        assert len(exported) == len(tables.table(table)), table


def _mx_rows(path: Path, **options: int) -> int:
    """Ten ``mx`` rows written 3 at a time; how many row groups the file has."""
    with BatchWriter("mx", path, batch_rows=3, **options) as writer:
        for i in range(10):
            writer.add(mx(f"d{i}.example", i, f"mx{i}.example"))
    groups: int = pq.ParquetFile(path).metadata.num_row_groups
    return groups


def test_batches_gather_into_row_groups_by_size(tmp_path: Path) -> None:
    path = tmp_path / "mx.parquet"
    rows = [mx(f"d{i}.example", i, f"mx{i}.example") for i in range(10)]
    # Ten short rows are far below the bound: one row group, however many batches.
    assert _mx_rows(path) == 1
    assert pd.read_parquet(path).to_dict("records") == rows
    # A bound every batch passes: a row group per batch (3 + 3 + 3 + 1 rows).
    assert _mx_rows(path, row_group_bytes=1) == 4
    assert pd.read_parquet(path).to_dict("records") == rows


def test_export_streams_every_row_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    assert _mx_rows(tmp_path / "mx.parquet", row_group_bytes=1) == 4
    monkeypatch.setattr(datapackage, "EXPORT_BATCH_ROWS", 4)
    datapackage.export_csv("mx", tmp_path / "mx.parquet", tmp_path / "mx.csv")
    lines = (tmp_path / "mx.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "domain,preference,mx_host"
    assert lines[1:] == [f"d{i}.example,{i},mx{i}.example" for i in range(10)]


def test_frictionless_validates_the_package_and_refuses_a_tampered_one(
        saved: Path, tmp_path: Path) -> None:
    report = frictionless(saved / DESCRIPTOR_NAME)
    assert report["valid"] and report["stats"]["tasks"] == len(TABLES)
    # A value outside a status column's vocabulary, with size and digest made to match: the
    # schema itself catches it.
    for f in saved.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    hosts_csv = tmp_path / "hosts.csv"
    hosts_csv.write_text(hosts_csv.read_text(encoding="utf-8").replace(
        ",starttls,", ",maybe,", 1), encoding="utf-8")
    d = descriptor(tmp_path)
    data = hosts_csv.read_bytes()
    d["resources"][2].update(bytes=len(data), hash="sha256:" + hashlib.sha256(data).hexdigest())
    (tmp_path / DESCRIPTOR_NAME).write_text(json.dumps(d), encoding="utf-8")
    assert errors_of(frictionless(tmp_path / DESCRIPTOR_NAME)) == ["constraint-error"]
    # A copy whose bytes changed without the descriptor knowing: the digest catches it.
    (tmp_path / "mx.csv").write_text("domain,preference,mx_host\nx,1,y\n", encoding="utf-8")
    assert {"hash-count", "byte-count"} <= set(errors_of(frictionless(tmp_path
                                                                      / DESCRIPTOR_NAME)))


def test_logs_output_is_a_valid_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    out = tmp_path / "logs"
    files = [str(p) for p in sample_files()]
    assert main(["logs", *files, "--out", str(out), "--local-ip", "127.0.0.1",
                 "--license", "https://example.org/licence"]) == 0
    d = descriptor(out)
    assert [r["name"] for r in d["resources"]] == ["sessions"]
    assert d["licenses"] == [{"path": "https://example.org/licence"}]
    assert [s["title"] for s in d["sources"]] == [f"input file {f}" for f in files]
    assert d["provenance"]["options"]["license"] == "https://example.org/licence"
    report = frictionless(out / DESCRIPTOR_NAME)
    assert report["valid"], errors_of(report)
    rows = pd.read_csv(out / "sessions.csv", dtype=str, keep_default_na=False)
    assert len(rows) == d["provenance"]["counts"]["sessions"] > 0
    capsys.readouterr()


@pytest.mark.parametrize(("text", "entry"), [
    ("cc0-1.0", {"name": "CC0-1.0", "path": "https://creativecommons.org/publicdomain/zero/1.0/",
                 "title": "Creative Commons Zero v1.0 Universal"}),
    ("MIT", {"name": "MIT"}),
    (" https://example.org/terms ", {"path": "https://example.org/terms"}),
])
def test_licence_entries(text: str, entry: dict[str, str]) -> None:
    assert license_entry(text) == entry


@pytest.mark.parametrize("text", ["", "my licence", "ftp://x", "-CC"])
def test_what_is_no_licence_is_refused(text: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError, match="licence must be"):
        SurveySettings.build(license=text)
    assert main(["scan", "a.example", "--out", str(tmp_path / "s"), f"--license={text}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "licence must be" in err
    assert not (tmp_path / "s").exists()
    assert main(["logs", str(sample_files()[0]), "--out", str(tmp_path / "l"),
                 f"--license={text}"]) == 2
    assert not (tmp_path / "l").exists()
