"""The enforcement tables from hand-built raw-log records, and result directories written before
those tables existed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from research.errors import ResultsError
from research.store.results import build_tables, load_results, save_results
from research.store.schema import LATER_COLUMNS, LATER_TABLES, TABLES, dtypes

RECORDS = [
    {"kind": "start", "started_at": "2026-01-01T00:00:00+00:00", "options": {"port": 25}},
    {"kind": "domain", "rank": 1, "input": "a.example", "domain": "a.example",
     "dns_status": "mx", "error": None, "mx": [[10, "mx1.p.example"], [20, "mx2.p.example"]]},
    {"kind": "domain", "rank": 2, "input": "b.example", "domain": "b.example",
     "dns_status": "mx", "error": None, "mx": [[10, "mx1.p.example"]]},
    {"kind": "domain", "rank": 3, "input": "c.example", "domain": "c.example",
     "dns_status": "nxdomain", "error": "NXDOMAIN", "mx": []},
    {"kind": "host", "mx_host": "mx1.p.example", "ip": "192.0.2.1", "port": 25,
     "status": "starttls", "webpki_result": "certificate-expired", "cert_chain_trusted": True,
     "cert_expired": True, "cert_key_type": "RSA", "cert_key_bits": 2048,
     "certificates": [
         {"position": 0, "subject": "CN=mx1.p.example", "sans": ["mx1.p.example"],
          "not_after": "2025-01-01T00:00:00+00:00", "key_type": "RSA", "key_bits": 2048,
          "is_ca": False, "der_base64": "AAAA"},
         {"position": 1, "subject": "CN=CA", "sans": [], "is_ca": True}]},
    {"kind": "host", "mx_host": "mx2.p.example", "ip": "192.0.2.2", "port": 25,
     "status": "no_starttls", "webpki_result": "starttls-not-supported", "certificates": []},
    # b.example's policy lookup finished first; a.example's second; c.example has no MX.
    {"kind": "policy", "domain": "b.example",
     "mta_sts": {"txt_status": "none", "txt_records": [], "fetch_status": "not_fetched"},
     "tlsrpt": {"status": "none", "records": [], "rua": []},
     "mx_dnssec": {"status": "insecure", "method": "resolver-ad", "error": None}},
    {"kind": "policy", "domain": "a.example",
     "mta_sts": {"txt_status": "valid", "txt_records": ["v=STSv1; id=1"], "txt_id": "1",
                 "fetch_status": "ok", "http_status": 200, "policy_status": "valid",
                 "mode": "enforce", "max_age": 86400, "mx_patterns": ["mx1.p.example"],
                 "mx_not_covered": ["mx2.p.example"],
                 "checked_at": "2026-01-01T00:00:09+00:00"},
     "tlsrpt": {"status": "valid", "records": ["v=TLSRPTv1; rua=mailto:r@a.example"],
                "rua": ["mailto:r@a.example"]},
     "mx_dnssec": {"status": "secure", "method": "trust-anchor", "error": None}},
    {"kind": "tlsa", "mx_host": "mx1.p.example", "tlsa_name": "_25._tcp.mx1.p.example",
     "tlsa_status": "found", "tlsa_records": ["3 1 1 aa"], "tlsa_dnssec": "bogus",
     "dnssec_method": "trust-anchor", "dnssec_error": "verify failure", "usable_records": 1,
     "pkix_records": 0},
    {"kind": "finish", "finished_at": "2026-01-01T00:01:00+00:00"},
]


def test_enforcement_tables_from_records() -> None:
    results = build_tables(RECORDS)
    for name in TABLES:
        frame = results.table(name)
        assert list(frame.columns) == list(dtypes(name)), name
        for column, dtype in dtypes(name).items():
            assert str(frame[column].dtype) == dtype, (name, column)
    certs = results.certificates
    assert certs[["mx_host", "ip", "position"]].values.tolist() == [
        ["mx1.p.example", "192.0.2.1", 0], ["mx1.p.example", "192.0.2.1", 1]]
    assert certs["is_ca"].tolist() == [False, True]
    # Rows follow the domain list's order, not the order the lookups finished in.
    assert results.mta_sts["domain"].tolist() == ["a.example", "b.example"]
    a = results.mta_sts.iloc[0]
    assert (a["mode"], a["max_age"], a["mx_not_covered"]) == ("enforce", 86400, ["mx2.p.example"])
    assert results.tlsrpt["rua"].tolist() == [["mailto:r@a.example"], []]
    dane = results.dane
    assert dane[["domain", "mx_host", "mx_dnssec", "tlsa_status"]].values.tolist() == [
        ["a.example", "mx1.p.example", "secure", "found"],
        ["a.example", "mx2.p.example", "secure", pd.NA],  # its TLSA lookup never finished
        ["b.example", "mx1.p.example", "insecure", "found"]]
    assert dane["dnssec_method"].tolist() == ["trust-anchor", "trust-anchor", "trust-anchor"]
    assert dane["dnssec_error"].tolist() == ["verify failure", pd.NA, "verify failure"]
    hosts = results.hosts.set_index("mx_host")
    assert hosts.loc["mx1.p.example", "webpki_result"] == "certificate-expired"
    assert hosts.loc["mx2.p.example", "cert_expired"] is pd.NA
    assert results.meta["counts"]["certificates"] == 2


def test_round_trip(tmp_path: Path) -> None:
    results = build_tables(RECORDS)
    save_results(results, tmp_path)
    loaded = load_results(tmp_path)
    for name in TABLES:
        pd.testing.assert_frame_equal(loaded.table(name), results.table(name))


def test_directories_written_before_the_enforcement_tables_still_load(tmp_path: Path) -> None:
    results = build_tables(RECORDS)
    save_results(results, tmp_path)
    for name in LATER_TABLES:
        (tmp_path / f"{name}.parquet").unlink()
    hosts = pd.read_parquet(tmp_path / "hosts.parquet")
    hosts.drop(columns=sorted(LATER_COLUMNS["hosts"])).to_parquet(tmp_path / "hosts.parquet")
    old = load_results(tmp_path)
    for name in LATER_TABLES:
        assert old.table(name).empty and list(old.table(name).columns) == list(dtypes(name))
    assert old.hosts[sorted(LATER_COLUMNS["hosts"])].isna().all().all()
    pd.testing.assert_frame_equal(old.domains, results.domains)
    # Columns that were always there are still required.
    hosts.drop(columns=["status"]).to_parquet(tmp_path / "hosts.parquet")
    with pytest.raises(ResultsError, match="missing columns"):
        load_results(tmp_path)
