"""Hand-built survey tables for the analysis, plot and report tests.

``build()`` turns row dicts into a :class:`SurveyResults` with exactly the schema's columns and
dtypes (missing keys become nulls), so tests exercise the same contract as real scans.
``host()``/``suite()`` fill in the tedious columns; ``sample()`` is a small survey with one domain
of every kind, used where a test needs "a realistic survey" rather than one precise case.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from research.store.results import SurveyResults, make_table
from research.store.schema import TLS_VERSIONS

Row = dict[str, Any]
META = {
    "started_at": "2024-03-05T10:00:00+00:00",
    "finished_at": "2024-03-05T10:05:00+00:00",
    "tool": {"name": "starttls-survey", "version": "0.1.0"},
    "versions": {"python": "3.11.2", "sslyze": "6.1.0"},
    "resolver": ["127.0.0.1:5353"],
    "port": 25,
}


def frame(name: str, rows: Iterable[Row]) -> pd.DataFrame:
    """A table of the schema ``name`` from row dicts: the scanner's own :func:`make_table`, so
    the tests build exactly what a survey writes."""
    return make_table(name, rows)


def build(domains: Iterable[Row] = (), mx: Iterable[Row] = (), hosts: Iterable[Row] = (),
          ciphers: Iterable[Row] = (), meta: dict[str, Any] | None = None) -> SurveyResults:
    return SurveyResults(frame("domains", domains), frame("mx", mx), frame("hosts", hosts),
                         frame("ciphers", ciphers), dict(META if meta is None else meta))


def domain(name: str, rank: int | None = None, dns_status: str = "mx") -> Row:
    return {"domain": name, "rank": rank, "input": name, "dns_status": dns_status}


def mx(domain_name: str, preference: int, mx_host: str) -> Row:
    return {"domain": domain_name, "preference": preference, "mx_host": mx_host}


def host(mx_host: str, ip: str | None = "192.0.2.1", status: str = "starttls",
         versions: Sequence[str] = ("TLS 1.2",), **extra: Any) -> Row:
    """A ``hosts`` row. For ``starttls`` the versions listed are True and the others False
    (measured); for any other status the version columns stay null (not measured)."""
    row: Row = {"mx_host": mx_host, "ip": ip, "port": 25, "status": status,
                "starttls_offered": status in ("starttls", "starttls_rejected", "tls_failed")}
    if status == "starttls":
        accepted = [v for v in TLS_VERSIONS if v.label in versions]
        for v in TLS_VERSIONS:
            row[v.column] = v.label in versions
        if accepted:
            row["min_version"], row["max_version"] = accepted[0].label, accepted[-1].label
        row["cert_matches_mx"] = True
        row["cert_trusted_mozilla"] = True
    elif status in ("no_starttls", "starttls_rejected", "tls_failed"):
        pass
    else:
        row["starttls_offered"] = None
    row.update(extra)
    return row


def suite(mx_host: str, tls_version: str, cipher: str, ip: str = "192.0.2.1",
          **extra: Any) -> Row:
    """A ``ciphers`` row; forward secrecy/AEAD guessed from the name unless given."""
    row: Row = {"mx_host": mx_host, "ip": ip, "tls_version": tls_version, "cipher": cipher,
                "key_exchange": "ECDHE" if "ECDHE" in cipher or tls_version == "TLS 1.3"
                else "RSA",
                "forward_secrecy": "DHE" in cipher or tls_version == "TLS 1.3",
                "aead": any(t in cipher for t in ("GCM", "CCM", "CHACHA20")),
                "anonymous": "anon" in cipher, "key_bits": 128}
    row.update(extra)
    return row


GCM = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
CBC = "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
RSA_GCM = "TLS_RSA_WITH_AES_128_GCM_SHA256"
TRIPLE_DES = "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
TLS13 = "TLS_AES_128_GCM_SHA256"


def sample() -> SurveyResults:
    """Eight domains, one of each kind; numbers used by the plot/report tests:

    * 8 domains; 6 with MX; categories: TLS ≥ 1.2 on all (alpha, beta — same host), some
      (gamma), STARTTLS without TLS 1.2 (delta), no STARTTLS (epsilon), no reachable MX (zeta),
      null MX (eta), NXDOMAIN (theta).
    * unique MX hosts: mx.big.example (2 domains), g1/g2.gamma.example, mx.delta.example,
      mx.eps.example, mx.zeta.example: 6 hosts, 3 with STARTTLS.
    """
    domains = [domain("alpha.example", 1), domain("beta.example", 2),
               domain("gamma.example", 3), domain("delta.example", 4),
               domain("epsilon.example", 5), domain("zeta.example", 6),
               domain("eta.example", 7, "null_mx"), domain("theta.example", 8, "nxdomain")]
    mxs = [mx("alpha.example", 10, "mx.big.example"), mx("beta.example", 5, "mx.big.example"),
           mx("gamma.example", 10, "g1.gamma.example"), mx("gamma.example", 20, "g2.gamma.example"),
           mx("delta.example", 10, "mx.delta.example"), mx("epsilon.example", 10, "mx.eps.example"),
           mx("zeta.example", 10, "mx.zeta.example")]
    hosts = [host("mx.big.example", "192.0.2.10", versions=("TLS 1.2", "TLS 1.3")),
             host("g1.gamma.example", "192.0.2.20", versions=("TLS 1.0", "TLS 1.1", "TLS 1.2")),
             host("g2.gamma.example", "192.0.2.21", status="no_starttls"),
             host("mx.delta.example", "192.0.2.30", versions=("TLS 1.0",)),
             host("mx.eps.example", "192.0.2.40", status="no_starttls"),
             host("mx.zeta.example", "192.0.2.50", status="timeout")]
    ciphers = [suite("mx.big.example", "TLS 1.3", TLS13, "192.0.2.10"),
               suite("mx.big.example", "TLS 1.2", GCM, "192.0.2.10"),
               suite("g1.gamma.example", "TLS 1.2", GCM, "192.0.2.20"),
               suite("g1.gamma.example", "TLS 1.2", TRIPLE_DES, "192.0.2.20"),
               suite("g1.gamma.example", "TLS 1.0", CBC, "192.0.2.20"),
               suite("mx.delta.example", "TLS 1.0", "TLS_RSA_WITH_RC4_128_SHA", "192.0.2.30")]
    return build(domains, mxs, hosts, ciphers)


def empty() -> SurveyResults:
    """A survey with every table empty (but with the schema's columns) and no meta."""
    return build(meta={})


def from_scenario(path: Path) -> SurveyResults:
    """The survey a perfect scan of a testbed scenario would produce, from its ground truth
    (each host's and domain's ``expect``); only the columns the analysis reads are filled."""
    scenario = tomllib.loads(path.read_text(encoding="utf-8"))
    domains, mxs, hosts = [], [], []
    for d in scenario.get("domains", []):
        domains.append(domain(d["name"], d.get("rank"), d["expect"]["dns_status"]))
        mxs += [mx(d["name"], pref, name) for pref, name in d.get("mx", [])]
    for h in scenario.get("hosts", []):
        expect = h["expect"]
        for address in h.get("addresses", []) or [None]:
            hosts.append(host(h["name"], address, expect["status"],
                              versions=expect.get("versions", ())))
    return build(domains, mxs, hosts, meta={**META, "domain_list": path.name})
