"""Certificate verdicts (research.policy.pki) and DANE matching (research.policy.dane) on hand-built
chains whose right answer follows from how they were built."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from support.certfactory import DAY, NOW, make_ca, make_leaf

from research.errors import InputError
from research.policy.dane import (
    TlsaRecord,
    association_data,
    match_chain,
    parse_tlsa,
    record_matches,
)
from research.policy.pki import (
    CertTrust,
    assess_chain,
    certificate_rows,
    chain_from_rows,
    key_facts,
    load_trust,
    signature_algorithm,
    spki_der,
)
from research.store.schema import TlsResult

ROOT = make_ca("Test Root")
OTHER = make_ca("Other Root")
TRUST = CertTrust([ROOT.cert], ["test"])
HOST = "mx.example.test"


def verdict(chain: list, host: str = HOST):  # type: ignore[no-untyped-def, type-arg]
    return assess_chain(chain, host, TRUST, now=NOW)


# -- research.policy.pki ---------------------------------------------------------------------------

def test_valid_leaf_is_ok() -> None:
    got = verdict([make_leaf([HOST], ROOT)])
    assert got.result is TlsResult.OK
    assert (got.chain_trusted, got.expired, got.matches_host, got.error) == (True, False, True,
                                                                             None)


def test_wrong_name_is_a_host_mismatch_on_a_trusted_chain() -> None:
    got = verdict([make_leaf(["other.example.test"], ROOT)])
    assert got.result is TlsResult.CERTIFICATE_HOST_MISMATCH
    assert got.chain_trusted and not got.matches_host and not got.expired


def test_wildcard_covers_one_label_only() -> None:
    leaf = make_leaf(["*.example.test"], ROOT)
    assert verdict([leaf]).result is TlsResult.OK
    assert verdict([leaf], "a.mx.example.test").result is TlsResult.CERTIFICATE_HOST_MISMATCH


@pytest.mark.parametrize(("start", "end"), [(NOW - 100 * DAY, NOW - 10 * DAY),
                                            (NOW + 10 * DAY, NOW + 100 * DAY)])
def test_outside_validity_is_expired_but_trusted(start, end) -> None:  # type: ignore[no-untyped-def]
    got = verdict([make_leaf([HOST], ROOT, not_before=start, not_after=end)])
    assert got.result is TlsResult.CERTIFICATE_EXPIRED
    assert got.chain_trusted and got.expired
    assert "not valid at validation time" in (got.error or "")


def test_expired_leaf_of_a_younger_ca_is_still_expired() -> None:
    # The CA's validity starts after the leaf's middle: only the leaf's last minute overlaps.
    young = make_ca("Young Root", not_before=NOW - 50 * DAY)
    leaf = make_leaf([HOST], young, not_before=NOW - 100 * DAY, not_after=NOW - 10 * DAY)
    got = assess_chain([leaf], HOST, CertTrust([young.cert], ["t"]), now=NOW)
    assert got.result is TlsResult.CERTIFICATE_EXPIRED


def test_self_signed_and_foreign_ca_are_not_trusted() -> None:
    selfsigned = verdict([make_leaf([HOST], None)])
    assert selfsigned.result is TlsResult.CERTIFICATE_NOT_TRUSTED
    assert not selfsigned.chain_trusted and selfsigned.matches_host
    assert selfsigned.error == "self-signed certificate, not in the trust store"
    foreign = verdict([make_leaf([HOST], OTHER)])
    assert foreign.result is TlsResult.CERTIFICATE_NOT_TRUSTED


def test_untrusted_beats_expired_and_mismatch() -> None:
    leaf = make_leaf(["other.test"], OTHER, not_before=NOW - 9 * DAY, not_after=NOW - DAY)
    got = verdict([leaf])
    assert got.result is TlsResult.CERTIFICATE_NOT_TRUSTED and got.expired


def test_leaf_without_server_auth_is_a_validation_failure() -> None:
    leaf = make_leaf([HOST], ROOT, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    got = verdict([leaf])
    assert got.result is TlsResult.VALIDATION_FAILURE
    assert not got.chain_trusted and got.matches_host


def test_intermediate_must_be_presented() -> None:
    intermediate = make_ca("Test Intermediate", issuer=ROOT)
    leaf = make_leaf([HOST], intermediate)
    assert verdict([leaf, intermediate.cert]).result is TlsResult.OK
    assert verdict([leaf]).result is TlsResult.CERTIFICATE_NOT_TRUSTED


def test_empty_chain_is_refused() -> None:
    with pytest.raises(ValueError):
        verdict([])


def test_key_facts_and_signature_algorithm() -> None:
    rsa_leaf = make_leaf([HOST], None, key="rsa")
    assert (key_facts(rsa_leaf).key_type, key_facts(rsa_leaf).key_bits) == ("RSA", 2048)
    assert signature_algorithm(rsa_leaf) == "sha256WithRSAEncryption"
    ec_leaf = make_leaf([HOST], ROOT)
    assert (key_facts(ec_leaf).key_type, key_facts(ec_leaf).key_bits) == ("EC", 256)
    assert signature_algorithm(ec_leaf) == "ecdsa-with-SHA256"
    ed = make_leaf([HOST], None, key="ed25519")
    assert (key_facts(ed).key_type, signature_algorithm(ed)) == ("Ed25519", "ed25519")


def test_certificate_rows_describe_the_chain() -> None:
    intermediate = make_ca("Test Intermediate", issuer=ROOT)
    leaf = make_leaf([HOST, "example.test"], intermediate)
    rows = certificate_rows([leaf, intermediate.cert])
    assert [r["position"] for r in rows] == [0, 1]
    assert rows[0]["sans"] == [HOST, "example.test"] and not rows[0]["is_ca"]
    assert rows[1]["is_ca"] and rows[1]["subject"] == "CN=Test Intermediate"
    assert rows[1]["issuer"] == "CN=Test Root" and not rows[1]["self_signed"]
    assert rows[0]["spki_sha256"] == hashlib.sha256(spki_der(leaf)).hexdigest()
    der = leaf.public_bytes(serialization.Encoding.DER)
    assert rows[0]["sha256"] == hashlib.sha256(der).hexdigest()
    assert chain_from_rows(list(reversed(rows))) == [leaf, intermediate.cert]


def test_load_trust(tmp_path: Path) -> None:
    mozilla = load_trust()
    assert len(mozilla.roots) > 100 and mozilla.sources == ["Mozilla"]
    pem = tmp_path / "ca.pem"
    pem.write_bytes(ROOT.cert.public_bytes(serialization.Encoding.PEM))
    both = load_trust(pem)
    assert len(both.roots) == len(mozilla.roots) + 1
    assert assess_chain([make_leaf([HOST], ROOT)], HOST, both, now=NOW).result is TlsResult.OK
    assert assess_chain([make_leaf([HOST], ROOT)], HOST, mozilla,
                        now=NOW).result is TlsResult.CERTIFICATE_NOT_TRUSTED
    (tmp_path / "empty.pem").write_text("nothing here\n")
    with pytest.raises(InputError, match="no PEM certificate"):
        load_trust(tmp_path / "empty.pem")
    with pytest.raises(InputError, match="cannot read"):
        load_trust(tmp_path / "missing.pem")


# -- research.policy.dane --------------------------------------------------------------------------

def spki_sha256(cert) -> bytes:  # type: ignore[no-untyped-def]
    return hashlib.sha256(spki_der(cert)).digest()


def cert_sha256(cert) -> bytes:  # type: ignore[no-untyped-def]
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()


def test_parse_tlsa() -> None:
    record = parse_tlsa("3 1 1 0A0b 0c")
    assert record == TlsaRecord(3, 1, 1, bytes.fromhex("0a0b0c"))
    assert record.text == "3 1 1 0a0b0c" and record.usable and not record.pkix
    assert parse_tlsa("1 0 2 ff").pkix and not parse_tlsa("1 0 2 ff").usable
    assert not parse_tlsa("3 2 1 ff").usable  # selector 2 does not exist
    for bad in ("3 1 1", "3 1 1 abc", "x 1 1 ab", "3 1 1 zz", "300 1 1 ab"):
        with pytest.raises(ValueError):
            parse_tlsa(bad)


def test_association_data_is_what_rfc_6698_says() -> None:
    leaf = make_leaf([HOST], ROOT)
    der = leaf.public_bytes(serialization.Encoding.DER)
    assert association_data(leaf, 0, 0) == der
    assert association_data(leaf, 1, 0) == spki_der(leaf)
    assert association_data(leaf, 0, 1) == hashlib.sha256(der).digest()
    assert association_data(leaf, 1, 2) == hashlib.sha512(spki_der(leaf)).digest()
    with pytest.raises(ValueError):
        association_data(leaf, 1, 3)


def test_dane_ee_ignores_names_and_dates() -> None:
    leaf = make_leaf(["elsewhere.test"], None, not_before=NOW - 9 * DAY, not_after=NOW - DAY)
    got = match_chain([TlsaRecord(3, 1, 1, spki_sha256(leaf))], [leaf], HOST, now=NOW)
    assert got.matched and got.usage == 3
    miss = match_chain([TlsaRecord(3, 1, 1, b"\0" * 32)], [leaf], HOST, now=NOW)
    assert not miss.matched and "DANE-EE records do not match the leaf" in miss.reason


def test_dane_ta_needs_the_anchor_a_signature_path_a_name_and_dates() -> None:
    leaf = make_leaf([HOST], ROOT)
    record = TlsaRecord(2, 0, 1, cert_sha256(ROOT.cert))
    assert match_chain([record], [leaf, ROOT.cert], HOST, now=NOW).usage == 2
    # The anchor's digest alone cannot be checked when the server leaves the anchor out...
    assert not match_chain([record], [leaf], HOST, now=NOW).matched
    # ...but a record carrying the whole anchor certificate can be.
    full = TlsaRecord(2, 0, 0, ROOT.cert.public_bytes(serialization.Encoding.DER))
    assert match_chain([full], [leaf], HOST, now=NOW).matched
    wrong_name = match_chain([record], [make_leaf(["other.test"], ROOT), ROOT.cert], HOST,
                             now=NOW)
    assert not wrong_name.matched and "not valid for mx.example.test" in wrong_name.reason
    old = make_leaf([HOST], ROOT, not_before=NOW - 9 * DAY, not_after=NOW - DAY)
    expired = match_chain([record], [old, ROOT.cert], HOST, now=NOW)
    assert not expired.matched and "validity" in expired.reason
    # The presented "anchor" matches the record, but did not sign the leaf.
    forged = match_chain([TlsaRecord(2, 1, 1, spki_sha256(OTHER.cert))],
                         [leaf, OTHER.cert], HOST, now=NOW)
    assert not forged.matched and "is not signed by" in forged.reason


def test_pkix_usages_are_unusable_for_smtp() -> None:
    leaf = make_leaf([HOST], ROOT)
    records = [TlsaRecord(1, 1, 1, spki_sha256(leaf)), TlsaRecord(0, 0, 1, cert_sha256(ROOT.cert))]
    assert all(record_matches(r, c) for r, c in zip(records, [leaf, ROOT.cert], strict=True))
    got = match_chain(records, [leaf, ROOT.cert], HOST, now=NOW)
    assert not got.matched and got.reason.startswith("no usable TLSA record")


def test_no_certificate_matches_nothing() -> None:
    got = match_chain([TlsaRecord(3, 1, 1, b"\1" * 32)], [], HOST, now=NOW)
    assert not got.matched and got.reason == "no certificate presented"
