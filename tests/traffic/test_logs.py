"""research.traffic.logs against logs written by real MTAs.

* Postfix 3.7 (Debian's package) runs here, in a private instance, relaying a workload to the
  ``mta`` testbed (one host per TLS version, one without STARTTLS, one refusing mail after a
  self-signed handshake) while clients submit to it over STARTTLS at each TLS version: its log
  is parsed fresh in every run.
* Exim 4.96 and Sendmail 8.17 logs of the same workload were recorded once (they conflict with
  Postfix as Debian's MTA) and are shipped in ``data/samples`` (see its README for how).

Expectations come from the scenario's ground truth and the workload, not from the logs.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from support.mta_expectations import (
    EXIM_SAMPLE,
    LOG_VERSIONS,
    POSTFIX_SAMPLE,
    REFUSED_DOMAIN,
    SENDMAIL_SAMPLE,
    expected_inbound_versions,
    expected_outbound,
    relay_host,
)
from support.repo import REPO_DIR

from research.cli import main
from research.store.schema import SESSIONS, SESSIONS_META_KEYS, TLS_VERSIONS, Verification
from research.traffic.logs.lines import Clock, frame
from research.traffic.names import cipher_bits, iana_cipher
from research.traffic.reader import InputStats, read_sessions, sessions_from, write_sessions
from research.traffic.sessions import load_sessions


def outbound_by_domain(sessions: pd.DataFrame) -> dict[str, pd.Series]:
    out = sessions[sessions["direction"] == "outbound"]
    assert out["mail_domain"].is_unique, out
    return {str(r["mail_domain"]): r for _, r in out.iterrows()}


def check_outbound(sessions: pd.DataFrame, verification: dict[str, str],
                   overrides: dict[str, str] | None = None, *,
                   failed_handshake: bool = False) -> None:
    """Every delivery of the workload is one outbound session with the relay's version;
    ``verification`` by the relay's certificate kind, ``overrides`` by recipient domain."""
    rows = outbound_by_domain(sessions)
    expected = expected_outbound(failed_handshake)
    assert set(rows) == set(expected)
    for domain, version in expected.items():
        row = rows[domain]
        host = relay_host(domain)
        assert row["peer_ip"] == host.addresses[0], domain
        if version is None:
            assert not row["tls"] and pd.isna(row["tls_version"]), domain
            # Tried and failed (garbage after STARTTLS), or not offered at all.
            tried = row["starttls_used"]
            assert (tried is True) if host.behaviour == "tls_garbage" else pd.isna(tried)
            continue
        assert row["starttls_used"] is True, domain
        assert row["tls"] and row["tls_version"] == version, domain
        expected = (overrides or {}).get(domain, verification[str(host.certificate)])
        assert row["verification"] == expected, domain
        assert row["bits"] == cipher_bits(row["cipher"]) and row["bits"] >= 128, domain


def check_inbound(sessions: pd.DataFrame, verification: str, clear_text: int = 2, *,
                  failed_handshake: bool = False) -> None:
    """The clients' sessions: one per TLS version used, and at least ``clear_text`` without
    TLS (the clear-text submission and, where the MTA logs connections, the bare session)."""
    inbound = sessions[sessions["direction"] == "inbound"]
    tls = inbound[inbound["tls"]]
    assert Counter(tls["tls_version"]) == expected_inbound_versions(failed_handshake)
    assert set(tls["verification"]) == {verification}
    assert (inbound["peer_ip"] == "127.0.0.1").all()
    assert (~inbound["tls"]).sum() >= clear_text


# -- Postfix, live ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def postfix_sessions(postfix_run: dict[str, object]) -> pd.DataFrame:
    return read_sessions([Path(str(postfix_run["log"]))])


def test_postfix_logs_every_delivery_with_its_tls(postfix_sessions: pd.DataFrame) -> None:
    # may + the testbed CA: "Trusted"; the harness's verify policy for tls13: "Verified".
    check_outbound(postfix_sessions, {"ca": "trusted", "self_signed": "untrusted"},
                   {"tls13.mta.test": Verification.VERIFIED.value}, failed_handshake=True)


def test_postfix_logs_every_inbound_session(postfix_sessions: pd.DataFrame) -> None:
    check_inbound(postfix_sessions, Verification.ANONYMOUS.value, failed_handshake=True)
    assert set(postfix_sessions["source"]) == {"postfix"}


@pytest.mark.parametrize("version", LOG_VERSIONS)
def test_postfix_each_version_both_directions(postfix_sessions: pd.DataFrame,
                                              version: str) -> None:
    for direction in ("inbound", "outbound"):
        rows = postfix_sessions[(postfix_sessions["direction"] == direction)
                                & (postfix_sessions["tls_version"] == version)]
        assert len(rows) >= 1, (direction, version)
        assert all(str(c).startswith("TLS_") for c in rows["cipher"]), rows["cipher"]


def test_postfix_logs_tls_before_the_refused_mail_from(postfix_run: dict[str, object]) -> None:
    lines = Path(str(postfix_run["log"])).read_text().splitlines()
    ip = relay_host(REFUSED_DOMAIN).addresses[0]
    tls = next(i for i, ln in enumerate(lines) if f"TLS connection established to {ip}[" in ln)
    bounce = next(i for i, ln in enumerate(lines) if f"to=<bob@{REFUSED_DOMAIN}>" in ln)
    assert tls < bounce and "status=bounced" in lines[bounce]
    assert "MAIL FROM" in lines[bounce]


def test_postfix_sample_matches_a_live_run(postfix_sessions: pd.DataFrame) -> None:
    """The shipped sample was recorded with the same harness: it parses to the same sessions."""
    sample = read_sessions([POSTFIX_SAMPLE])
    columns = ["direction", "peer_ip", "mail_domain", "tls", "tls_version", "verification"]

    def key(frame: pd.DataFrame) -> Counter[tuple[object, ...]]:
        # Count only the workload's sessions (connection probes can differ between runs).
        rows = frame[frame["tls"] | frame["mail_domain"].notna()]
        return Counter(tuple(None if pd.isna(v) else v for v in r) for r in
                       rows[columns].itertuples(index=False))

    assert key(sample) == key(postfix_sessions)


# -- Exim and Sendmail, recorded samples -------------------------------------------------------

def test_exim_sample() -> None:
    sessions = read_sessions([EXIM_SAMPLE])
    assert set(sessions["source"]) == {"exim"}
    check_outbound(sessions, {"ca": "verified", "self_signed": "unverified"})
    # Exim logs messages, not connections: the bare EHLO/QUIT session leaves no line.
    check_inbound(sessions, Verification.UNVERIFIED.value, clear_text=1)


def test_sendmail_sample() -> None:
    sessions = read_sessions([SENDMAIL_SAMPLE])
    assert set(sessions["source"]) == {"sendmail"}
    check_outbound(sessions, {"ca": "verified", "self_signed": "untrusted"})
    check_inbound(sessions, Verification.ANONYMOUS.value)
    assert set(sessions.loc[sessions["direction"] == "inbound", "peer_host"]) == {"localhost"}


@pytest.mark.parametrize("sample", [EXIM_SAMPLE, SENDMAIL_SAMPLE, POSTFIX_SAMPLE],
                         ids=["exim", "sendmail", "postfix"])
@pytest.mark.parametrize("version", LOG_VERSIONS)
def test_each_sample_has_each_version_both_ways(sample: Path, version: str) -> None:
    sessions = read_sessions([sample])
    for direction in ("inbound", "outbound"):
        rows = sessions[(sessions["direction"] == direction)
                        & (sessions["tls_version"] == version)]
        assert len(rows) >= 1, (sample.name, direction, version)


def test_unrelated_lines_are_skipped_not_counted() -> None:
    # The Sendmail sample ends in a bounce to a local mailbox (procmail missing, SYSERR):
    # real noise that is neither a session nor unparseable.
    stats = InputStats(str(SENDMAIL_SAMPLE), "log")
    rows = list(sessions_from(SENDMAIL_SAMPLE, stats))
    assert stats.unparseable == 0
    assert stats.lines == len(SENDMAIL_SAMPLE.read_text().splitlines())
    assert stats.sessions == len(rows) == sum(stats.sources.values())


# -- malformed and truncated input -------------------------------------------------------------

def _tls_lines(path: Path, marker: str) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if marker in ln]


TRUNCATION_CASES = [
    (POSTFIX_SAMPLE, "TLS connection established", " with cipher "),
    (POSTFIX_SAMPLE, "TLS connection established", " (256/"),
    (POSTFIX_SAMPLE, "SSL_connect error", "error to 127.0.201.7["),
    (EXIM_SAMPLE, " X=TLS", " X=TLS1."),
    (SENDMAIL_SAMPLE, "STARTTLS=", ", cipher="),
    (SENDMAIL_SAMPLE, "STARTTLS=", ", bits="),
]


@pytest.mark.parametrize(("sample", "marker", "cut_at"), TRUNCATION_CASES)
def test_truncated_tls_lines_are_counted_not_fatal(tmp_path: Path, sample: Path, marker: str,
                                                   cut_at: str) -> None:
    lines = _tls_lines(sample, marker)
    assert lines
    cut = [ln[: ln.index(cut_at) + len(cut_at) - 1] for ln in lines if cut_at in ln]
    assert cut
    path = tmp_path / "cut.log"
    path.write_text("\n".join(cut) + "\n")
    stats = InputStats(str(path), "log")
    rows = list(sessions_from(path, stats))
    assert stats.unparseable == len(cut)
    assert not any(r["tls"] for r in rows)


def test_garbage_and_cut_framing_are_unparseable(tmp_path: Path) -> None:
    real = POSTFIX_SAMPLE.read_text().splitlines()
    damaged = [
        real[6][:9],                 # cut inside the timestamp
        "\x00\x01\x02 binary junk \xff",
        "this is not a log line",
        "",                          # blank lines are not counted
        *real,
    ]
    path = tmp_path / "mixed.log"
    path.write_bytes("\n".join(damaged).encode("utf-8", "surrogateescape") + b"\n\xff\xfe\n")
    stats = InputStats(str(path), "log")
    rows = list(sessions_from(path, stats))
    assert stats.unparseable == 4  # three damaged lines and the undecodable one
    assert len(rows) == len(read_sessions([POSTFIX_SAMPLE]))


def test_log_ending_mid_session_keeps_what_it_saw(tmp_path: Path) -> None:
    lines = POSTFIX_SAMPLE.read_text().splitlines()
    first_tls = next(i for i, ln in enumerate(lines) if "TLS connection established from" in ln)
    path = tmp_path / "head.log"
    path.write_text("\n".join(lines[: first_tls + 1]) + "\n")
    sessions = read_sessions([path])
    # The session whose disconnect is missing is still reported, with its TLS.
    assert sessions["tls"].sum() == 1


def test_gzip_logs_and_a_truncated_gzip(tmp_path: Path) -> None:
    data = EXIM_SAMPLE.read_bytes()
    whole = tmp_path / "mainlog.1.gz"
    whole.write_bytes(gzip.compress(data))
    assert len(read_sessions([whole])) == len(read_sessions([EXIM_SAMPLE]))
    cut = tmp_path / "mainlog.2.gz"
    cut.write_bytes(gzip.compress(data)[: len(gzip.compress(data)) // 2])
    stats = InputStats(str(cut), "log")
    rows = list(sessions_from(cut, stats))
    assert stats.compressed and stats.unparseable == 1
    assert len(rows) < len(read_sessions([EXIM_SAMPLE]))


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.log"
    path.write_text("")
    stats = InputStats(str(path), "log")
    assert list(sessions_from(path, stats)) == []
    assert (stats.lines, stats.unparseable) == (0, 0)


# -- times and names ---------------------------------------------------------------------------

def test_syslog_times_take_a_year_and_a_zone() -> None:
    line = POSTFIX_SAMPLE.read_text().splitlines()[0]
    stamp = re.match(r"(\w{3}) +(\d+) (\d\d:\d\d:\d\d)", line)
    assert stamp
    reference = dt.datetime(2030, 12, 31, tzinfo=dt.UTC)
    utc = frame(line, Clock("UTC", reference=reference))
    berlin = frame(line, Clock("Europe/Berlin", reference=reference))
    assert utc and berlin and utc.time and berlin.time
    assert utc.time.year == 2030 and (utc.time - berlin.time) in (dt.timedelta(hours=1),
                                                                  dt.timedelta(hours=2))
    # A December line read in a file last written in January belongs to the year before.
    december = "Dec 31 23:59:59" + line[len(stamp.group(0)):]
    january = frame(december, Clock("UTC", reference=dt.datetime(2031, 1, 1, 0, 5,
                                                                  tzinfo=dt.UTC)))
    assert january and january.time == dt.datetime(2030, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    assert frame(december, Clock("UTC", year=2024)).time.year == 2024  # type: ignore[union-attr]


def test_unknown_time_zone_is_an_input_error() -> None:
    from research.errors import InputError

    with pytest.raises(InputError, match="time zone"):
        Clock("Mars/Olympus_Mons")


def test_cipher_names_from_the_samples_map_to_iana() -> None:
    # OpenSSL names (Postfix, Sendmail) and GnuTLS names (Exim) as the samples logged them.
    logged = set(re.findall(r"with cipher (\S+)", POSTFIX_SAMPLE.read_text()))
    logged |= set(re.findall(r"cipher=([^,]+)", SENDMAIL_SAMPLE.read_text()))
    assert logged
    for name in logged:
        assert iana_cipher(name).startswith("TLS_"), name  # type: ignore[union-attr]
    exim = dict(re.findall(r"X=(TLS[\d.]+):(\S+?):\d+", EXIM_SAMPLE.read_text()))
    server_side = {v: c for v, c in exim.items() if "__RSA_" in c}
    assert server_side
    for version, name in server_side.items():
        mapped = iana_cipher(name, f"TLS {version.removeprefix('TLS')}")
        assert mapped and mapped.startswith("TLS_"), name
    assert iana_cipher("ECDHE_X25519__RSA_PSS_RSAE_SHA256__AES_256_GCM", "TLS 1.2") == (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
    assert iana_cipher("ECDHE_X25519__RSA_PSS_RSAE_SHA256__AES_256_GCM", "TLS 1.3") == (
        "TLS_AES_256_GCM_SHA384")


# -- the table, the CLI ------------------------------------------------------------------------

def test_data_readme_documents_the_sessions_table() -> None:
    readme = (REPO_DIR / "data" / "README.md").read_text()
    section = readme.split("### `sessions`", 1)
    assert len(section) == 2
    body = section[1].split("### ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", body, re.M))
    assert documented == {c.name for c in SESSIONS}
    meta = readme.split("### `meta.json` of `starttls-survey logs`", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"^\| `([a-z_]+)` \|", meta, re.M)) == set(SESSIONS_META_KEYS)


def test_cli_logs_writes_table_and_meta(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    out = tmp_path / "out"
    files = [POSTFIX_SAMPLE, EXIM_SAMPLE, SENDMAIL_SAMPLE]
    assert main(["logs", *map(str, files), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    sessions = load_sessions(out)
    expected = sum(len(read_sessions([f])) for f in files)
    assert len(sessions) == expected and f"{expected} sessions written" in printed
    assert list(sessions.columns) == [c.name for c in SESSIONS]
    assert str(sessions["time"].dtype) == "datetime64[us, UTC]"
    meta = json.loads((out / "meta.json").read_text())
    assert set(meta) == set(SESSIONS_META_KEYS)
    assert [i["path"] for i in meta["inputs"]] == [str(f) for f in files]
    assert meta["counts"]["sessions"] == expected
    assert all(i["unparseable"] == 0 and i["kind"] == "log" for i in meta["inputs"])
    assert sorted(p.name for p in out.iterdir()) == ["datapackage.json", "meta.json",
                                                     "sessions.csv", "sessions.parquet"]


def test_cli_logs_bad_input_exits_2_and_keeps_the_old_table(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["logs", str(EXIM_SAMPLE), "--out", str(out)]) == 0
    before = (out / "sessions.parquet").read_bytes()
    capsys.readouterr()
    for argv in (["logs", str(tmp_path / "missing.log"), "--out", str(out)],
                 ["logs", str(EXIM_SAMPLE), "--out", str(out), "--timezone", "Nowhere/None"],
                 ["logs", str(EXIM_SAMPLE), "--out", str(EXIM_SAMPLE)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("starttls-survey: error:") and err.count("\n") == 1, err
    assert (out / "sessions.parquet").read_bytes() == before
    with pytest.raises(SystemExit) as exc:
        main(["logs", "--out", str(out)])
    assert exc.value.code == 2


def test_write_sessions_leaves_no_temporary_files(tmp_path: Path) -> None:
    meta = write_sessions([SENDMAIL_SAMPLE], tmp_path)
    assert meta["counts"]["sessions"] == len(load_sessions(tmp_path))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_version_labels_cover_the_schema() -> None:
    from research.traffic.sessions import version_label

    assert [version_label(t) for t in ("SSLv3", "TLSv1", "TLSv1.1", "TLS1.2", "TLSv1.3")] == [
        v.label for v in TLS_VERSIONS[1:]]
    assert version_label("QUIC") is None
