"""Raw log durability and the table contract, on hand-built records."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from support.repo import REPO_DIR

from research.errors import ResultsError
from research.store.rawlog import RawLogWriter, read_records, repair
from research.store.results import build_tables, load_results, save_results
from research.store.schema import META_KEYS, TABLES, dtypes

RECORDS = [
    {"kind": "start", "started_at": "2026-01-01T00:00:00+00:00", "resolver": ["127.0.0.1:53"],
     "domain_list": "x.csv", "domain_list_sha256": "ab", "options": {"port": 25,
     "ehlo_name": "scan.example"}},
    {"kind": "domain", "rank": 2, "input": "B.example", "domain": "b.example",
     "dns_status": "mx", "error": None, "mx": [[10, "mx1.p.example"], [20, "mx2.p.example"]]},
    {"kind": "domain", "rank": 1, "input": "a.example", "domain": "a.example",
     "dns_status": "nxdomain", "error": "NXDOMAIN", "mx": []},
    {"kind": "host", "mx_host": "mx1.p.example", "ip": "192.0.2.1", "port": 25,
     "status": "starttls", "banner": "220 hi", "ehlo_extensions": ["STARTTLS", "SIZE"],
     "starttls_offered": True, "tls_1_0": False, "tls_1_2": True, "min_version": "TLS 1.2",
     "max_version": "TLS 1.2", "cert_sans": ["mx1.p.example"],
     "cert_not_after": "2027-01-01T00:00:00+00:00", "scanned_at": "2026-01-01T00:00:05+00:00",
     "ciphers": [{"tls_version": "TLS 1.2", "cipher": "TLS_RSA_WITH_AES_128_GCM_SHA256",
                  "key_exchange": "RSA", "forward_secrecy": False, "aead": True,
                  "anonymous": False, "key_bits": 128}]},
    {"kind": "host", "mx_host": "mx2.p.example", "ip": None, "port": 25,
     "status": "unresolved", "error": "NXDOMAIN", "ehlo_extensions": [], "cert_sans": [],
     "ciphers": [], "scanned_at": "2026-01-01T00:00:06+00:00"},
    {"kind": "finish", "finished_at": "2026-01-01T00:01:00+00:00"},
]


def test_tables_follow_the_schema_exactly() -> None:
    results = build_tables(RECORDS)
    for name in TABLES:
        frame = results.table(name)
        assert list(frame.columns) == list(dtypes(name))
        for column, dtype in dtypes(name).items():
            assert str(frame[column].dtype) == dtype, (name, column)
    assert list(results.domains["domain"]) == ["a.example", "b.example"]  # rank order
    assert list(results.domains["mx_count"]) == [0, 2]
    assert results.mx.values.tolist() == [
        ["b.example", 10, "mx1.p.example"], ["b.example", 20, "mx2.p.example"]
    ]
    hosts = results.hosts
    assert hosts["tls_1_2"].tolist() == [True, pd.NA]
    assert hosts["tls_1_0"].tolist() == [False, pd.NA]
    assert hosts["tls_1_3"].tolist() == [pd.NA, pd.NA]  # not measured stays null, never False
    assert hosts["ehlo_extensions"].tolist() == [["STARTTLS", "SIZE"], []]
    assert len(results.ciphers) == 1 and results.ciphers.iloc[0]["ip"] == "192.0.2.1"
    assert results.meta["counts"]["host_status"] == {"starttls": 1, "unresolved": 1}
    assert results.meta["ehlo_name"] == "scan.example"
    assert results.meta["finished_at"] == "2026-01-01T00:01:00+00:00"
    assert set(results.meta) == set(META_KEYS)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    results = build_tables(RECORDS)
    save_results(results, tmp_path)
    loaded = load_results(tmp_path)
    for name in TABLES:
        pd.testing.assert_frame_equal(loaded.table(name), results.table(name))
    assert loaded.meta["counts"] == json.loads(json.dumps(results.meta["counts"]))
    assert not list(tmp_path.glob(".*.tmp"))


def test_load_rebuilds_from_raw_log_when_tables_are_missing(tmp_path: Path) -> None:
    with RawLogWriter(tmp_path / "raw.jsonl") as log:
        for record in RECORDS[:3]:
            log.append(record)
    assert list(load_results(tmp_path).domains["domain"]) == ["a.example", "b.example"]


def test_load_refuses_what_is_not_a_survey(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="no survey tables"):
        load_results(tmp_path)
    with pytest.raises(ResultsError, match="not a directory"):
        load_results(tmp_path / "missing")


def test_torn_last_line_is_dropped_and_repaired(tmp_path: Path) -> None:
    path = tmp_path / "raw.jsonl"
    with RawLogWriter(path) as log:
        log.append({"kind": "domain", "n": 1})
    with path.open("a") as f:
        f.write('{"kind": "host", "mx_ho')  # the crash hit mid-write
    assert [r["n"] for r in read_records(path)] == [1]
    assert repair(path) == len('{"kind": "host", "mx_ho')
    assert path.read_text().endswith("}\n")
    with RawLogWriter(path) as log:
        log.append({"kind": "domain", "n": 2})
    assert [r["n"] for r in read_records(path)] == [1, 2]


def test_data_readme_documents_every_column() -> None:
    readme = (REPO_DIR / "data" / "README.md").read_text()
    for name, columns in TABLES.items():
        section = readme.split(f"### `{name}`", 1)
        assert len(section) == 2, f"no section for {name}"
        body = section[1].split("### ", 1)[0]
        documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", body, re.M))
        assert documented == {c.name for c in columns}, name


def test_data_readme_documents_every_meta_key() -> None:
    readme = (REPO_DIR / "data" / "README.md").read_text()
    body = readme.split("### `meta.json`", 1)[1].split("\n## ", 1)[0]
    documented = dict(re.findall(r"^\| `([a-z0-9_]+)` \| (.+) \|$", body, re.M))
    assert documented == META_KEYS
