"""research.analysis.ciphers: weak-suite classification and cipher summaries, on small hand-built
surveys whose right answers are worked out here."""

from __future__ import annotations

import math

import pytest
from support.survey_builder import (
    CBC,
    GCM,
    TLS13,
    build,
    domain,
    host,
    mx,
    suite,
)

from research.analysis import (
    cipher_summary,
    cipher_version_summary,
    classify_cipher,
    host_ciphers,
    is_weak_cipher,
    suite_class_counts,
    weak_hosts,
    weak_suites,
)
from research.store.results import SurveyResults

# --- weak-suite classification --------------------------------------------------------------------

@pytest.mark.parametrize(("name", "tags"), [
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", ()),
    ("TLS_AES_256_GCM_SHA384", ()),
    ("TLS_CHACHA20_POLY1305_SHA256", ()),
    ("TLS_RSA_WITH_SEED_CBC_SHA", ()),
    ("ECDHE-RSA-AES128-GCM-SHA256", ()),
    ("TLS_RSA_WITH_RC4_128_SHA", ("RC4",)),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", ("3DES",)),
    ("TLS_DHE_RSA_WITH_DES_CBC_SHA", ("DES",)),
    ("TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", ("EXPORT", "DES")),
    ("TLS_RSA_EXPORT_WITH_RC4_40_MD5", ("EXPORT", "RC4")),
    ("TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5", ("EXPORT", "RC2")),
    ("TLS_DH_anon_WITH_AES_128_CBC_SHA", ("anon",)),
    ("TLS_ECDH_anon_WITH_RC4_128_SHA", ("anon", "RC4")),
    ("TLS_RSA_WITH_NULL_SHA256", ("NULL",)),
    ("TLS_NULL_WITH_NULL_NULL", ("NULL",)),
    ("SSL_CK_DES_192_EDE3_CBC_WITH_MD5", ("3DES",)),
    ("SSL_CK_DES_64_CBC_WITH_MD5", ("DES",)),
    ("SSL_CK_RC4_128_EXPORT40_WITH_MD5", ("EXPORT", "RC4")),
    ("DES-CBC3-SHA", ("3DES",)),
    ("EXP-RC4-MD5", ("EXPORT", "RC4")),
    ("ADH-AES128-SHA", ("anon",)),
    ("AECDH-NULL-SHA", ("NULL", "anon")),
])
def test_classify_cipher(name: str, tags: tuple[str, ...]) -> None:
    assert classify_cipher(name) == tags
    assert is_weak_cipher(name) is bool(tags)


# --- ciphers --------------------------------------------------------------------------------------

def cipher_survey() -> SurveyResults:
    rc4 = "TLS_RSA_WITH_RC4_128_SHA"
    return build(
        [domain("c.example", 1)],
        [mx("c.example", 10, "two.example"), mx("c.example", 20, "one.example")],
        [host("two.example", "192.0.2.1", versions=("TLS 1.0", "TLS 1.2")),
         host("two.example", "192.0.2.2", versions=("TLS 1.2",)),
         host("one.example", "192.0.2.3", versions=("TLS 1.2", "TLS 1.3"))],
        [suite("two.example", "TLS 1.2", GCM, "192.0.2.1"),
         suite("two.example", "TLS 1.2", GCM, "192.0.2.2"),
         suite("two.example", "TLS 1.0", rc4, "192.0.2.1"),  # one IP only
         suite("one.example", "TLS 1.2", GCM, "192.0.2.3"),
         suite("one.example", "TLS 1.2", CBC, "192.0.2.3"),
         suite("one.example", "TLS 1.3", TLS13, "192.0.2.3")])


def test_host_ciphers_need_every_ip_and_weak_suites_any_ip() -> None:
    r = cipher_survey()
    hc = host_ciphers(r)
    assert hc[hc["mx_host"] == "two.example"]["cipher"].tolist() == [GCM]
    assert hc[hc["mx_host"] == "one.example"]["cipher"].tolist() == [TLS13, CBC, GCM]  # by name
    weak = weak_suites(r)
    assert weak[["mx_host", "tls_version", "weaknesses", "ips"]].values.tolist() == [
        ["two.example", "TLS 1.0", "RC4", 1]]
    assert weak_hosts(r)[["mx_host", "weak_suites", "weaknesses"]].values.tolist() == [
        ["two.example", 1, "RC4"]]


def test_cipher_summaries_per_version() -> None:
    r = cipher_survey()
    summary = cipher_summary(r)
    gcm = summary[(summary["tls_version"] == "TLS 1.2") & (summary["cipher"] == GCM)].iloc[0]
    assert (gcm["hosts"], gcm["share"]) == (2, 1.0)
    per_version = cipher_version_summary(r).set_index("tls_version")
    v12 = per_version.loc["TLS 1.2"]
    assert (v12["hosts"], v12["suites"], v12["host_suites"]) == (2, 2, 3)
    assert v12["fs_share"] == pytest.approx(1.0)  # all ECDHE
    assert v12["aead_share"] == pytest.approx(2 / 3)  # GCM twice, CBC once
    assert v12["hosts_aead_share"] == pytest.approx(1.0)
    assert per_version.loc["TLS 1.0", "hosts"] == 0  # RC4 only on one of two IPs
    assert math.isnan(per_version.loc["TLS 1.0", "fs_share"])
    counts = suite_class_counts(r)
    assert counts.loc["TLS 1.2"].to_dict() == {"FS + AEAD": 2, "FS, no AEAD": 1,
                                               "no FS, AEAD": 0, "no FS, no AEAD": 0, "weak": 0}
    assert counts.loc["TLS 1.3", "FS + AEAD"] == 1 and counts.values.sum() == 4


def test_anonymous_flag_counts_as_weak_even_with_a_bland_name() -> None:
    r = build([domain("a.example", 1)], [mx("a.example", 10, "mx.a.example")],
              [host("mx.a.example")],
              [suite("mx.a.example", "TLS 1.2", "SOME_SUITE", anonymous=True)])
    assert weak_suites(r)["weaknesses"].tolist() == ["anon"]
