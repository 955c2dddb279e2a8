"""Domain-list reading and name normalisation, on small files whose right answers are known."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from research.errors import InputError, InvalidDomainError
from research.scan.inputs import (
    STUDY_LIST,
    from_arguments,
    lists_dir,
    normalize_domain,
    read_domain_list,
    shipped_lists,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.COM", "example.com"),
        ("  example.com.  ", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("MAIL-1.example.org", "mail-1.example.org"),
    ],
)
def test_normalize_accepts_and_canonicalises(raw: str, expected: str) -> None:
    assert normalize_domain(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("localhost", "fully qualified"),
        ("*.example.com", "wildcard"),
        ("192.0.2.1", "IP literal"),
        ("[2001:db8::1]", "IP literal"),
        ("a..example.com", "empty label"),
        ("-bad.example.com", "starts or ends"),
        ("bad_chars!.example", "invalid character"),
        ("a" * 64 + ".example", "label longer than 63"),
        (".".join(["abcdefghi"] * 26) + ".com", "longer than 253"),
    ],
)
def test_normalize_rejects_with_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidDomainError, match=reason):
        normalize_domain(raw)


def test_plain_list_ranks_by_line_and_skips_comments(tmp_path: Path) -> None:
    f = tmp_path / "list.txt"
    f.write_text("# popular\nGmail.com\n\nyahoo.com.\nnot a.domain\n")
    got = read_domain_list(f)
    assert [(e.rank, e.domain) for e in got.entries] == [
        (1, "gmail.com"), (2, "yahoo.com"), (3, None)
    ]
    assert got.entries[2].error and "invalid character" in got.entries[2].error
    assert got.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
    assert got.source == str(f)


def test_csv_uses_its_rank_column(tmp_path: Path) -> None:
    f = tmp_path / "list.csv"
    f.write_text("rank,domain\n5,b.example\n2,a.example\n")
    got = read_domain_list(f)
    assert [(e.rank, e.domain) for e in got.entries] == [(5, "b.example"), (2, "a.example")]


def test_csv_without_rank_numbers_rows(tmp_path: Path) -> None:
    f = tmp_path / "list.csv"
    f.write_text("Domain,provider\na.example,x\nb.example,y\n")
    assert [(e.rank, e.domain) for e in read_domain_list(f).entries] == [
        (1, "a.example"), (2, "b.example")
    ]


def test_duplicates_are_kept_as_invalid_rows(tmp_path: Path) -> None:
    got = from_arguments(["a.example", "A.EXAMPLE.", "b.example"])
    assert [e.domain for e in got.entries] == ["a.example", None, "b.example"]
    assert got.entries[1].error == "duplicate of a.example at rank 1"


def test_shipped_study_list_reads_as_100_valid_domains() -> None:
    got = read_domain_list(STUDY_LIST)
    assert len(got.entries) == 100
    assert all(e.domain for e in got.entries)
    assert got.entries[0].domain == "gmail.com" and got.entries[0].rank == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no domains"),
        (b"# only a comment\n\n", "no domains"),
        (b"\x00\x01\x02binary", "binary file"),
        (b"\xff\xfe\xfa not utf8", "not UTF-8"),
        (b"name,provider\nx.example,y\n", "no 'domain' column"),
        (b"rank,domain\nfirst,x.example\n", "not an integer"),
    ],
)
def test_unusable_files_raise_one_line_input_errors(
    tmp_path: Path, content: bytes, message: str
) -> None:
    f = tmp_path / "bad"
    f.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        read_domain_list(f)
    assert "\n" not in str(err.value)


def test_shipped_list_is_read_by_name_and_recorded_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert STUDY_LIST in shipped_lists()
    by_name = read_domain_list(STUDY_LIST)
    shipped = lists_dir() / f"{STUDY_LIST}.csv"
    assert by_name.source == STUDY_LIST  # the same on every machine, not a site-packages path
    assert by_name.sha256 == hashlib.sha256(shipped.read_bytes()).hexdigest()
    # A file of that name is the user's and comes first.
    Path(STUDY_LIST).write_text("mine.example\n")
    mine = read_domain_list(STUDY_LIST)
    assert [e.domain for e in mine.entries] == ["mine.example"]
    assert mine.source == STUDY_LIST and mine.sha256 != by_name.sha256


def test_unknown_list_name_says_which_lists_ship(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as err:
        read_domain_list("top-1m")
    assert str(err.value) == f"top-1m: no such file, nor a shipped list (shipped: {STUDY_LIST})"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_domain_list(tmp_path / "nope.txt")
    with pytest.raises(InputError, match="is a directory"):
        read_domain_list(tmp_path)
