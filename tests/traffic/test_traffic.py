"""The analysis of observed sessions (research.traffic.analysis), its charts and notebook helper,
on sessions parsed from the real samples; expectations from the ``mta`` scenario."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure
from support.mta_expectations import (
    EXIM_SAMPLE,
    POSTFIX_SAMPLE,
    SENDMAIL_SAMPLE,
    expected_inbound_versions,
    expected_outbound,
)

from research.analysis.core import AnalysisError, version_rank
from research.errors import InputError
from research.plots import CAPTION_GID
from research.traffic.analysis import (
    CLEAR_TEXT,
    cipher_distribution,
    observed_results,
    peer_table,
    peers_failing,
    traffic_policy_sweep,
    version_distribution,
    with_peer,
    without_duplicate_captures,
)
from research.traffic.plots import plot_traffic_policy, plot_traffic_versions
from research.traffic.reader import read_sessions, sample_files, sessions_for_notebook

LOGS = [POSTFIX_SAMPLE, EXIM_SAMPLE, SENDMAIL_SAMPLE]


@pytest.fixture(scope="module")
def postfix() -> pd.DataFrame:
    return read_sessions([POSTFIX_SAMPLE])


def postfix_outbound() -> dict[str, str | None]:
    """What the Postfix sample delivered (its workload includes the failed handshake)."""
    return expected_outbound(failed_handshake=True)


def lost_at(minimum: str | None) -> set[str]:
    """Recipient domains a sender requiring STARTTLS (and ``minimum``) loses, by ground truth."""
    rank = version_rank(minimum) if minimum else -1
    return {d for d, v in postfix_outbound().items() if v is None or version_rank(v) < rank}


@pytest.mark.parametrize("minimum", [None, "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"])
def test_policy_sweep_on_observed_peers(postfix: pd.DataFrame, minimum: str | None) -> None:
    sweep = traffic_policy_sweep(postfix, "outbound", [minimum])
    row = sweep.iloc[0]
    assert set(row["lost_domains"]) == lost_at(minimum)
    assert row["domains"] == len(postfix_outbound())
    assert row["reachable"] == len(postfix_outbound()) - len(lost_at(minimum))
    # One delivery per domain in the workload: as many failing sessions as lost peers.
    assert row["sessions_failing"] == row["lost_peer_sessions"] == len(lost_at(minimum))
    assert row["sessions"] == len(postfix_outbound())


def test_peers_failing_tls12_names_the_reason(postfix: pd.DataFrame) -> None:
    failing = peers_failing(postfix, "TLS 1.2")
    assert set(failing["peer"]) == lost_at("TLS 1.2")
    reasons = dict(zip(failing["peer"], failing["reason"], strict=True))
    assert reasons["plain.mta.test"] == "no STARTTLS"
    # Handshake failed: the host offered STARTTLS, but no session negotiated TLS with it.
    assert reasons["garbage.mta.test"] == "no STARTTLS"
    assert reasons["tls10.mta.test"] == "max TLS 1.0 < TLS 1.2"
    # Inbound, some client negotiated TLS 1.3 from 127.0.0.1: that peer can do 1.2.
    assert peers_failing(postfix, "TLS 1.2", direction="inbound").empty


def test_version_distribution_by_direction(postfix: pd.DataFrame) -> None:
    dist = version_distribution(postfix).set_index(["direction", "version"])
    expected = pd.Series(postfix_outbound()).fillna(CLEAR_TEXT).value_counts()
    for version, count in expected.items():
        assert dist.loc[("outbound", version), "sessions"] == count
    for version, count in expected_inbound_versions(failed_handshake=True).items():
        assert dist.loc[("inbound", version), "sessions"] == count
    shares = dist.groupby(level="direction")["share"].sum()
    assert shares.round(9).eq(1).all()
    assert set(dist["unit"]) == {"session"}


def test_cipher_distribution_counts_tls_sessions(postfix: pd.DataFrame) -> None:
    ciphers = cipher_distribution(postfix, by=())
    assert ciphers["sessions"].sum() == postfix["tls"].sum()
    assert ciphers["forward_secrecy"].all()  # every sampled suite is ECDHE or TLS 1.3


def test_peers_and_their_versions_across_mtas() -> None:
    sessions = read_sessions(LOGS)
    peers = peer_table(sessions, "outbound").set_index("peer")
    for domain, version in expected_outbound().items():
        assert peers.at[domain, "sessions"] == len(LOGS)
        newest = peers.at[domain, "newest"]
        assert newest == version if version else pd.isna(newest)
    # Worst first: the clear-text peer leads.
    assert peers.index[0] == "plain.mta.test"


def test_observed_results_is_a_survey(postfix: pd.DataFrame) -> None:
    results = observed_results(postfix)
    mx = results.mx.set_index("domain")["mx_host"]
    for domain, version in postfix_outbound().items():
        row = results.hosts[results.hosts["mx_host"] == mx[domain]]
        assert len(row) == 1
        newest = row["max_version"].iloc[0]
        assert newest == version if version else pd.isna(newest)
    assert set(results.hosts["status"]) == {"starttls", "no_starttls"}


def test_bad_arguments_raise_analysis_errors(postfix: pd.DataFrame) -> None:
    with pytest.raises(AnalysisError):
        peers_failing(postfix, "TLS 9")
    with pytest.raises(AnalysisError):
        peer_table(postfix, "sideways")


def test_with_peer_prefers_the_recipient_domain(postfix: pd.DataFrame) -> None:
    peers = with_peer(postfix)
    outbound = peers[peers["direction"] == "outbound"]
    assert set(outbound["peer"]) == set(postfix_outbound())
    assert set(peers.loc[peers["direction"] == "inbound", "peer"]) == {"127.0.0.1"}


def test_charts_have_data_and_captions(postfix: pd.DataFrame) -> None:
    for fig in (plot_traffic_versions(postfix), plot_traffic_policy(postfix)):
        assert isinstance(fig, Figure)
        ax = fig.axes[0]
        assert ax.patches, "no bars drawn"
        captions = [t for t in fig.findobj(lambda a: a.get_gid() == CAPTION_GID)]
        assert captions and "Unit:" in captions[0].get_text()  # type: ignore[attr-defined]
    empty = postfix.iloc[0:0]
    assert plot_traffic_versions(empty).axes[0].texts  # says "no data"


def test_sessions_for_notebook(tmp_path: Path) -> None:
    out = tmp_path / "nb"
    sessions = sessions_for_notebook("testbed", out)
    assert (out / "sessions.parquet").is_file()
    assert set(sessions["file"]) == {str(p) for p in sample_files()}
    assert without_duplicate_captures(sessions)["source"].ne("pcap").all()
    # A second call loads what the first wrote.
    again = sessions_for_notebook("testbed", out)
    assert len(again) == len(sessions)
    # A survey's directory keeps its own meta.json: sessions go one level down.
    survey = tmp_path / "survey"
    survey.mkdir()
    (survey / "meta.json").write_text('{"started_at": "2026-01-01T00:00:00+00:00"}')
    sessions_for_notebook("testbed", survey, [EXIM_SAMPLE])
    assert (survey / "sessions" / "sessions.parquet").is_file()
    assert "started_at" in (survey / "meta.json").read_text()
    with pytest.raises(InputError):
        sessions_for_notebook("live", tmp_path / "live")
    with pytest.raises(InputError):
        sessions_for_notebook("moon", tmp_path / "x")


def test_notebook_reads_the_logs_it_is_given(tmp_path: Path) -> None:
    """Notebook 05 with a ``logs`` parameter parses those files (not the samples) and names
    the peers a TLS 1.2 minimum would lose."""
    from support.notebooks import execute

    from research.demo import notebooks_dir


    nb = execute(notebooks_dir() / "05_your_mail_server.ipynb", tmp_path,
                 target="live", results_dir=str(tmp_path / "mine"),
                 logs=[str(SENDMAIL_SAMPLE)])
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                     for o in outputs)
    assert f"{len(read_sessions([SENDMAIL_SAMPLE]))} sessions from 1 file (" in text
    for domain in lost_at("TLS 1.2") - {"garbage.mta.test"}:
        assert domain in text
    assert (tmp_path / "mine" / "sessions.parquet").is_file()
