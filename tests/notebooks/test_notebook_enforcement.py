"""The enforcement notebook on the enforcement scenario's survey (test_notebooks.py runs every
notebook on the 2019 replica too), and the summary it prints where nothing is published."""

from __future__ import annotations

from pathlib import Path

from support.notebooks import execute, stream_text
from support.survey_builder import build, domain, frame, host, mx, sample

from research.analysis.enforcement import describe
from research.demo import notebooks_dir
from research.testbed import Testbed

NOTEBOOK = notebooks_dir() / "04_enforcement_readiness.ipynb"


def test_enforcement_notebook_on_the_enforcement_survey(
        enforcement_testbed: Testbed, enforcement_survey: Path, tmp_path: Path) -> None:
    nb = execute(NOTEBOOK, tmp_path, target="testbed", results_dir=str(enforcement_survey))
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) == 2
    text = stream_text(nb)
    domains = enforcement_testbed.scenario.domains
    published = [d for d in domains
                 if d.expect.mta_sts not in (None, "none", "invalid-record", "multiple-records")]
    assert f"MTA-STS: {len(published)} of {len(domains)} domains publish a valid record" in text
    losing = [d.name for d in domains if d.expect.mta_sts == "enforce-breaks"]
    assert f"Enforce mode loses mail for {len(losing)}: {', '.join(losing)}." in text
    assert "TLS-RPT: 1 of 34 domains ask for reports; 2 publish records senders must ignore" \
        in text
    assert "none published" not in text


def test_summary_says_none_published() -> None:
    survey = build([domain("a.example", 1)], [mx("a.example", 10, "mx.a.example")],
                   [host("mx.a.example", webpki_result="ok")])
    survey.mta_sts = frame("mta_sts", [{"domain": "a.example", "txt_status": "none"}])
    survey.tlsrpt = frame("tlsrpt", [{"domain": "a.example", "status": "none"}])
    survey.dane = frame("dane", [{"domain": "a.example", "mx_host": "mx.a.example",
                                  "mx_dnssec": "insecure", "tlsa_status": "none"}])
    text = describe(survey)
    assert "MTA-STS: none published (0 of 1 domains have a valid _mta-sts record)." in text
    assert "TLS-RPT: none published" in text and "DANE: none published" in text
    assert "1 of 1 MX hosts pass." in text
    assert "Readiness: not enforced: every MX host passes WebPKI 1." in text


def test_summary_of_a_survey_from_before_the_lookups() -> None:
    text = describe(sample())
    assert "not looked up in this survey" in text
    assert "none published" not in text
    assert "not measured (no certificate verdicts) 5" in text
