"""The testbed's opt-in ``accept_mail`` hosts (scenario ``mta``), which let a real MTA finish a
delivery; every other host still refuses mail."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from research.errors import ScenarioError
from research.testbed import Testbed, load_scenario


def _transaction(tb: Testbed, ip: str) -> tuple[int, int, int]:
    with smtplib.SMTP(ip, tb.smtp_port, local_hostname="client.test", timeout=10) as client:
        client.ehlo()
        mail = client.mail("alice@client.test")[0]
        rcpt = client.rcpt("bob@example.test")[0] if mail == 250 else 0
        data = client.data(b"Subject: test\r\n\r\nbody\r\n")[0] if rcpt == 250 else 0
    return mail, rcpt, data


def test_accept_mail_hosts_take_a_whole_transaction(mta_testbed: Testbed) -> None:
    for host in mta_testbed.scenario.hosts:
        codes = _transaction(mta_testbed, host.addresses[0])
        if host.accept_mail:
            assert codes == (250, 250, 250), host.name
        else:
            assert codes[0] == 502, host.name


def test_other_scenarios_refuse_mail_by_default(cases_testbed: Testbed) -> None:
    host = next(h for h in cases_testbed.scenario.hosts if h.serves_tls and h.addresses)
    assert not host.accept_mail
    assert _transaction(cases_testbed, host.addresses[0])[0] == 502


def test_accept_mail_needs_a_normal_host(tmp_path: Path) -> None:
    text = (Path(load_scenario("mta").path).read_text()
            .replace('name = "mx.plain.mta.test"\naddresses = ["127.0.201.5"]\nstarttls = false',
                     'name = "mx.plain.mta.test"\naddresses = ["127.0.201.5"]\n'
                     'behaviour = "tarpit"'))
    text = text.replace('expect = { status = "no_starttls" }', 'expect = { status = "timeout" }')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match="accept_mail"):
        load_scenario(path)
