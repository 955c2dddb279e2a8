"""Lanes split into parts (research.scan.engine.host): the same answers at one session more per
extra part, never more connections than the address allows — on the ``five`` scenario's
servers, against sslyze's scan and the engine run lane by lane, with the servers' own counts.

The runs share one testbed, in an order that lets each read the servers' peak of connections
open at once (a running maximum): the tightest cap first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from support.groundtruth import assert_hosts_match

from research.scan.engine import lanes
from research.scan.inputs import from_arguments
from research.scan.survey import run_survey
from research.store.results import SurveyResults
from research.store.schema import VERSION_COLUMNS, Engine
from research.testbed import TargetStats, Testbed

pytestmark = pytest.mark.testbed

RTT_MS = 20
"""Far enough that a worker waits for a session while others run: parts get split."""
HOST_COLUMNS = ["mx_host", "ip", "status", *VERSION_COLUMNS, "cert_sha256"]
LANES = len(lanes(Engine.FULL))


@dataclass
class Run:
    results: SurveyResults
    served: dict[str, TargetStats]
    """Per address: sessions during the run, and the peak open at once so far."""

    def parts(self) -> dict[str, int]:
        return {ip: int(n) for ip, n in self.results.addresses.set_index("ip")["parts"].items()}


def _survey(tb: Testbed, out: Path, **options: object) -> Run:
    before = tb.address_stats()
    settings = tb.settings(timeout=5, greeting_timeout=5, **options)
    results = run_survey(from_arguments([name for _, name in tb.domains()]), out, settings,
                         progress=False)
    after = tb.address_stats()
    return Run(results, {ip: TargetStats(sessions=s.sessions - before[ip].sessions,
                                         peak_connections=s.peak_connections)
                         for ip, s in after.items()})


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    out = tmp_path_factory.mktemp("parts")
    found: dict[str, Run] = {}
    with Testbed.start("five", rtt_ms=RTT_MS) as tb:
        # A generous provider rate, so that the rate is not what keeps parts from splitting.
        found["provider 2"] = _survey(tb, out / "provider-2", per_host_connections=4,
                                      per_provider_connections=2, provider_rate=1000)
        found["split"] = _survey(tb, out / "split", per_host_connections=4, provider_rate=1000)
        found["lane by lane"] = _survey(tb, out / "lanes", per_host_connections=1)
        found["sslyze"] = _survey(tb, out / "sslyze", engine="sslyze")
        assert_hosts_match(tb.scenario, found["split"].results)
    return found


def _ciphers(results: SurveyResults) -> pd.DataFrame:
    keys = ["mx_host", "ip", "tls_version", "cipher"]
    return results.ciphers[keys].sort_values(keys).reset_index(drop=True)


def test_split_lanes_answer_as_sslyze_and_as_lane_by_lane(runs: dict[str, Run]) -> None:
    reference = runs["sslyze"].results
    assert len(reference.ciphers) > 50
    for name in ("split", "provider 2", "lane by lane"):
        results = runs[name].results
        pd.testing.assert_frame_equal(results.hosts[HOST_COLUMNS], reference.hosts[HOST_COLUMNS])
        pd.testing.assert_frame_equal(_ciphers(results), _ciphers(reference))
        assert results.hosts["undecided"].map(len).sum() == 0, name


def test_lanes_are_split_only_where_connections_are_idle(runs: dict[str, Run]) -> None:
    assert set(runs["lane by lane"].parts().values()) == {LANES}
    split = runs["split"].parts()
    assert all(n >= LANES for n in split.values())
    assert sum(split.values()) > LANES * len(split)


def test_each_extra_part_costs_one_session(runs: dict[str, Run]) -> None:
    whole = runs["lane by lane"].served
    for name in ("split", "provider 2"):
        run = runs[name]
        for ip, parts in run.parts().items():
            assert run.served[ip].sessions == whole[ip].sessions + parts - LANES, (name, ip)


def test_parts_never_exceed_the_connections_allowed(runs: dict[str, Run]) -> None:
    # The provider's 2 connections bound the first run, --per-host 4 the second.
    assert max(s.peak_connections for s in runs["provider 2"].served.values()) <= 2
    assert max(s.peak_connections for s in runs["split"].served.values()) <= 4
