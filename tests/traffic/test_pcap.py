"""research.traffic.pcap against captures tcpdump recorded of a real Postfix's sessions.

The live capture is taken by the ``postfix_run`` fixture (tcpdump on ``lo`` while Postfix
serves and delivers the workload); the shipped ``data/samples/postfix-sessions.pcap`` (and its
pcapng re-encoding) come from the same harness. Expectations come from the ``mta`` scenario and
the workload.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from conftest import require_tool
from support.mta_expectations import (
    REFUSED_DOMAIN,
    expected_inbound_versions,
    expected_outbound,
    relay_host,
)

from research.cli import main
from research.traffic.reader import (
    InputStats,
    detect_kind,
    read_sessions,
    samples_dir,
    sessions_from,
)

PCAP = samples_dir() / "postfix-sessions.pcap"
PCAPNG_GZ = samples_dir() / "postfix-sessions.pcapng.gz"
LOCAL = ["127.0.0.1"]
POSTFIX_CLIENT_OFFERS = ["TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"]
"""The harness sets smtp_tls_protocols = >=TLSv1: Postfix's client offers all four."""


def check_capture(sessions: pd.DataFrame) -> None:
    assert set(sessions["source"]) == {"pcap"}
    inbound = sessions[sessions["direction"] == "inbound"]
    outbound = sessions[sessions["direction"] == "outbound"]
    assert len(inbound) + len(outbound) == len(sessions)
    # Inbound: each client was pinned to one version, and offered only that one.
    tls_in = inbound[inbound["tls"]]
    assert Counter(tls_in["tls_version"]) == expected_inbound_versions(failed_handshake=True)
    for _, row in tls_in.iterrows():
        assert row["offered_versions"] == [row["tls_version"]]
        assert row["starttls_offered"] is True
        assert row["cipher"] in row["offered_ciphers"]
    # A session that never said EHLO (the harness's port probe) has no STARTTLS verdict.
    assert (~inbound["tls"]).sum() >= 2
    # Outbound: one connection per relay, the relay's version chosen from Postfix's offer.
    by_ip = {str(r["peer_ip"]): r for _, r in outbound.iterrows()}
    expected = expected_outbound(failed_handshake=True)
    assert set(by_ip) == {relay_host(d).addresses[0] for d in expected}
    for domain, version in expected.items():
        row = by_ip[relay_host(domain).addresses[0]]
        assert row["peer_port"] > 0
        if version is None and relay_host(domain).behaviour == "tls_garbage":
            # STARTTLS offered and used, a ClientHello sent, garbage back: no TLS.
            assert row["starttls_offered"] is True and row["starttls_used"] is True, domain
            assert row["offered_versions"] == POSTFIX_CLIENT_OFFERS and not row["tls"]
            continue
        if version is None:
            assert row["starttls_offered"] is False and not row["tls"]
            assert row["starttls_used"] is False and row["offered_versions"] == []
            continue
        assert row["starttls_offered"] is True and row["tls"], domain
        assert row["starttls_used"] is True, domain
        assert row["tls_version"] == version, domain
        assert row["offered_versions"] == POSTFIX_CLIENT_OFFERS, domain
        assert row["cipher"] in row["offered_ciphers"] and row["bits"] >= 128, domain
    assert by_ip[relay_host(REFUSED_DOMAIN).addresses[0]]["tls"]


def test_shipped_pcap() -> None:
    check_capture(read_sessions([PCAP], local_ips=LOCAL))


def test_pcapng_gz_is_the_same_capture() -> None:
    assert detect_kind(PCAPNG_GZ) == "pcapng" and detect_kind(PCAP) == "pcap"
    stats = InputStats(str(PCAPNG_GZ), "?")
    ng = pd.DataFrame(list(sessions_from(PCAPNG_GZ, stats, local_ips=LOCAL)))
    assert stats.compressed and stats.kind == "pcapng" and stats.unparseable == 0
    plain = read_sessions([PCAP], local_ips=LOCAL)
    cols = ["time", "direction", "peer_ip", "peer_port", "tls", "tls_version", "cipher"]
    assert ng[cols].astype(str).values.tolist() == plain[cols].astype(str).values.tolist()


def test_live_capture_of_postfix(postfix_run: dict[str, object]) -> None:
    require_tool(postfix_run["pcap_missing"])  # type: ignore[arg-type]
    check_capture(read_sessions([Path(str(postfix_run["pcap"]))], local_ips=LOCAL))


def test_capture_and_log_agree(postfix_run: dict[str, object]) -> None:
    require_tool(postfix_run["pcap_missing"])  # type: ignore[arg-type]
    capture = read_sessions([Path(str(postfix_run["pcap"]))], local_ips=LOCAL)
    log = read_sessions([Path(str(postfix_run["log"]))])

    def versions(frame: pd.DataFrame) -> Counter[tuple[str, str]]:
        tls = frame[frame["tls"]]
        return Counter(zip(tls["direction"], tls["tls_version"], strict=True))

    assert versions(capture) == versions(log)
    out_cap = capture[capture["direction"] == "outbound"].set_index("peer_ip")
    out_log = log[log["direction"] == "outbound"].set_index("peer_ip")
    assert sorted(out_cap.index) == sorted(out_log.index)
    for ip in out_log.index:
        assert str(out_cap.at[ip, "cipher"]) == str(out_log.at[ip, "cipher"]), ip


def test_without_local_ips_the_server_is_the_peer() -> None:
    sessions = read_sessions([PCAP])
    assert sessions["direction"].isna().all()
    # Every connection's server: Postfix's smtpd on 127.0.0.1 or a testbed host on 127.0.201.x.
    assert set(sessions["peer_ip"]) <= {"127.0.0.1"} | {
        h.addresses[0] for h in (relay_host(d) for d in expected_outbound(True))}


def test_truncated_and_damaged_captures(tmp_path: Path) -> None:
    data = PCAP.read_bytes()
    full = read_sessions([PCAP], local_ips=LOCAL)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2 + 7])  # ends inside a packet
    stats = InputStats(str(cut), "pcap")
    rows = list(sessions_from(cut, stats, local_ips=LOCAL))
    assert stats.unparseable == 1 and 0 < len(rows) <= len(full)
    header_only = tmp_path / "header.pcap"
    header_only.write_bytes(data[:4] + b"\x00garbage, not a pcap header")
    stats = InputStats(str(header_only), "pcap")
    assert list(sessions_from(header_only, stats)) == [] and stats.unparseable == 1


def test_cli_recognises_captures_by_content(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    disguised = tmp_path / "traffic.log"  # the name says log, the bytes say pcap
    shutil.copyfile(PCAP, disguised)
    out = tmp_path / "out"
    assert main(["logs", str(disguised), str(PCAPNG_GZ), "--out", str(out),
                 "--local-ip", "127.0.0.1"]) == 0
    assert "pcapng (gzip)" in capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    assert [i["kind"] for i in meta["inputs"]] == ["pcap", "pcapng"]
    assert meta["options"]["local_ips"] == ["127.0.0.1"]
    assert meta["counts"]["sessions"] == 2 * len(read_sessions([PCAP]))
