"""Whose an MX host name is: one rule for "provider", from the Public Suffix List."""

from __future__ import annotations

import pytest

from research.analysis import provider_of as analysis_provider_of
from research.policy.names import is_ip_address, provider_of


@pytest.mark.parametrize(("name", "provider"), [
    # The list's ICANN section: registrable domains however deep the suffix.
    ("mx1.mail.example.com", "example.com"),
    ("gmail-smtp-in.l.google.com", "google.com"),
    ("contoso-com.mail.protection.outlook.com", "outlook.com"),
    ("mx.yahoo.co.jp", "yahoo.co.jp"),
    ("mail.bbc.co.uk", "bbc.co.uk"),
    ("mx.city.kawasaki.jp", "city.kawasaki.jp"),
    ("inbound-smtp.us-east-1.amazonaws.com", "amazonaws.com"),
    # Not its private section: blogspot.com's customers share one operator.
    ("mx.someone.blogspot.com", "blogspot.com"),
    # Case and the final dot do not matter.
    ("MX.Example.COM.", "example.com"),
    # Reserved TLDs the list does not know: its default rule, the last two labels.
    ("contoso-test.mail.protection.pool365.test", "pool365.test"),
    ("mx.example.test", "example.test"),
    ("mx.invalid", "mx.invalid"),
    # A suffix, a single label or an address is its own provider.
    ("com", "com"), ("localhost", "localhost"), ("192.0.2.7", "192.0.2.7"),
])
def test_provider_is_the_registrable_domain(name: str, provider: str) -> None:
    assert provider_of(name) == provider


def test_analysis_uses_the_same_rule() -> None:
    assert analysis_provider_of is provider_of


def test_ip_addresses_bare_and_bracketed() -> None:
    assert is_ip_address("192.0.2.1") and is_ip_address("[2001:db8::1]")
    assert is_ip_address("2001:db8::1", version=6) and not is_ip_address("192.0.2.1", version=6)
    assert not is_ip_address("mx.example.com") and not is_ip_address(None)
