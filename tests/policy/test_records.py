"""MTA-STS and TLS-RPT records and policies (RFC 8461, RFC 8460): the network-free parsers, on
hand-written inputs whose verdict follows from the RFCs' grammar."""

from __future__ import annotations

import pytest

from research.policy.mtasts import mx_matches, not_covered, parse_policy, parse_sts_record
from research.policy.tlsrpt import parse_tlsrpt
from research.store.schema import RecordStatus

# -- the _mta-sts TXT record ------------------------------------------------------------------


@pytest.mark.parametrize(("records", "status", "sts_id"), [
    (["v=STSv1; id=20240601T0000"], RecordStatus.VALID, "20240601T0000"),
    (["v=STSv1;id=abc;"], RecordStatus.VALID, "abc"),
    (["v=STSv1 ; id=abc ; ext=some.value"], RecordStatus.VALID, "abc"),  # unknown fields ignored
    (["v=spf1 -all", "v=STSv1; id=a1"], RecordStatus.VALID, "a1"),  # other records ignored
    ([], RecordStatus.NONE, None),
    (["v=spf1 -all"], RecordStatus.NONE, None),
    (["v=STSv10; id=1"], RecordStatus.NONE, None),  # not the version tag
    (["v=STSv1; id=a", "v=STSv1; id=b"], RecordStatus.MULTIPLE, None),
    (["v=STSv1"], RecordStatus.INVALID, None),  # no field at all
    (["v=STSv1; ext=1"], RecordStatus.INVALID, None),  # no id
    (["v=STSv1; id=a; id=b"], RecordStatus.INVALID, None),
    (["v=STSv1; id=2024-06-01"], RecordStatus.INVALID, None),  # id: letters and digits only
    (["v=STSv1; id=" + "a" * 33], RecordStatus.INVALID, None),  # at most 32
    (["v=STSv1; id=a;; x=1"], RecordStatus.INVALID, None),  # an empty field
    (["v=STSv1; id=a b"], RecordStatus.INVALID, None),  # a space inside a value
])
def test_sts_record(records: list[str], status: RecordStatus, sts_id: str | None) -> None:
    got = parse_sts_record(records)
    assert (got.status, got.id) == (status, sts_id)
    assert (got.error is None) == (status in (RecordStatus.VALID, RecordStatus.NONE))


# -- the policy ------------------------------------------------------------------------------

GOOD = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmx: *.example.test\r\n" \
       "max_age: 604800\r\n"


def test_valid_policy_crlf_and_lf() -> None:
    for text in (GOOD, GOOD.replace("\r\n", "\n"), GOOD.rstrip()):
        got = parse_policy(text)
        assert got.valid and got.error is None
        assert (got.mode, got.max_age, got.mx) == ("enforce", 604800,
                                                   ["mx1.example.test", "*.example.test"])


def test_policy_fields_in_any_order_unknown_ignored_case_folded() -> None:
    got = parse_policy("mx: MX.Example.Test.\nfuture_key: x y z\nmax_age:0\nmode:testing\n"
                       "version:   STSv1\n")
    assert got.valid and (got.mode, got.max_age, got.mx) == ("testing", 0, ["mx.example.test"])


def test_mode_none_needs_no_mx() -> None:
    got = parse_policy("version: STSv1\nmode: none\nmax_age: 86400\n")
    assert got.valid and got.mode == "none" and got.mx == []


@pytest.mark.parametrize(("text", "error"), [
    (GOOD.replace("max_age: 604800\r\n", ""), "no max_age field"),
    (GOOD.replace("version: STSv1", "version: STSv2"), "version 'STSv2' is not STSv1"),
    (GOOD.replace("mode: enforce", "mode: strict"), "mode 'strict'"),
    (GOOD + "mode: testing\n", "mode appears more than once"),
    (GOOD.replace("604800", "31557601"), "max_age '31557601'"),
    (GOOD.replace("604800", "12345678901"), "max_age '12345678901'"),
    (GOOD.replace("604800", "-1"), "max_age '-1'"),
    ("version: STSv1\nmode: enforce\nmax_age: 60\n", "mode enforce without an mx field"),
    (GOOD.replace("*.example.test", "*.*.example.test"), "is not a host name pattern"),
    (GOOD.replace("*.example.test", "mail.*.test"), "is not a host name pattern"),
    ("<html><body>Not found</body></html>", "line 1 is not 'key: value'"),
    ("", "no version field"),
])
def test_invalid_policies(text: str, error: str) -> None:
    got = parse_policy(text)
    assert not got.valid and got.error is not None and error in got.error


@pytest.mark.parametrize(("pattern", "host", "covered"), [
    ("mx1.example.test", "mx1.example.test", True),
    ("MX1.example.test.", "mx1.EXAMPLE.test", True),
    ("mx1.example.test", "mx2.example.test", False),
    ("*.example.test", "mx1.example.test", True),
    ("*.example.test", "example.test", False),  # the wildcard needs a label
    ("*.example.test", "a.mx1.example.test", False),  # ...exactly one
    ("*.example.test", "mx1.otherexample.test", False),
    ("*.example.test", "mx1.example.test.evil.test", False),
])
def test_mx_patterns(pattern: str, host: str, covered: bool) -> None:
    assert mx_matches(pattern, host) is covered


def test_not_covered_keeps_the_given_order() -> None:
    hosts = ["b.mx.example.test", "mx1.example.test", "mail.example.test", "mx.other.test"]
    assert not_covered(["*.example.test"], hosts) == ["b.mx.example.test", "mx.other.test"]
    assert not_covered([], ["a.test"]) == ["a.test"]


# -- TLS-RPT --------------------------------------------------------------------------------

@pytest.mark.parametrize(("records", "status", "rua"), [
    (["v=TLSRPTv1; rua=mailto:tls@example.test"], RecordStatus.VALID, ["mailto:tls@example.test"]),
    (["v=TLSRPTv1;rua=mailto:a@example.test, https://r.example.test/tls;"], RecordStatus.VALID,
     ["mailto:a@example.test", "https://r.example.test/tls"]),
    (["v=spf1 -all", "v=TLSRPTv1; rua=https://r.example.test/"], RecordStatus.VALID,
     ["https://r.example.test/"]),
    ([], RecordStatus.NONE, []),
    (["v=TLSRPTv2; rua=mailto:a@example.test"], RecordStatus.NONE, []),
    (["v=TLSRPTv1; rua=mailto:a@example.test", "v=TLSRPTv1; rua=mailto:b@example.test"],
     RecordStatus.MULTIPLE, []),
    (["v=TLSRPTv1; ruf=mailto:a@example.test"], RecordStatus.INVALID, []),  # no rua
    (["v=TLSRPTv1; rua=http://r.example.test/"], RecordStatus.INVALID, []),  # not https
    (["v=TLSRPTv1; rua=mailto:nobody"], RecordStatus.INVALID, []),
    (["v=TLSRPTv1; rua=mailto:a@example.test; rua=mailto:b@example.test"], RecordStatus.INVALID,
     []),
])
def test_tlsrpt_record(records: list[str], status: RecordStatus, rua: list[str]) -> None:
    got = parse_tlsrpt(records)
    assert (got.status, got.rua) == (status, rua)
    assert got.records == records
    assert (got.error is None) == (status in (RecordStatus.VALID, RecordStatus.NONE))
