"""Domain-list reading and name normalisation, on small files whose right answers are known."""

from __future__ import annotations

import bz2
import gc
import gzip
import hashlib
import io
import lzma
import re
import tempfile
import zipfile
from pathlib import Path

import pytest

from research.errors import InputError, InvalidDomainError
from research.scan._listfile import BLOCK_SIZE, MAX_LINE
from research.scan.inputs import (
    STUDY_LIST,
    entries_sha256,
    from_arguments,
    lists_dir,
    normalize_domain,
    read_domain_list,
    shipped_lists,
)
from research.scan.optout import read_opt_out

# A Tranco-style list as downloaded: rank,domain rows, no header, CRLF line endings; with a
# name that is not a domain and a repeat, which stay rows.
RANKED = "1,google.com\r\n2,Facebook.com\r\n3,bücher.example\r\n7,not a.domain\r\n9,GOOGLE.com\r\n"
RANKED_ENTRIES = [(1, "google.com"), (2, "facebook.com"), (3, "xn--bcher-kva.example"),
                  (7, None), (9, None)]
COMPRESSIONS = ["gzip", "bzip2", "xz", "zip"]


def packed(data: bytes, how: str, member: str = "top-1m.csv") -> bytes:
    """``data`` as a file compressed ``how`` (``plain``: as it is)."""
    if how == "gzip":
        return gzip.compress(data)
    if how == "bzip2":
        return bz2.compress(data)
    if how == "xz":
        return lzma.compress(data)
    if how == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(member, data)
        return buffer.getvalue()
    assert how == "plain"
    return data


class Pipe(io.RawIOBase):
    """A stream that cannot seek, as standard input from a pipe; counts the bytes read."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        chunk = self._data.read(len(buffer))
        buffer[:len(chunk)] = chunk
        self.bytes_read += len(chunk)
        return len(chunk)


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
    assert [(e.rank, e.domain) for e in got] == [
        (1, "gmail.com"), (2, "yahoo.com"), (3, None)
    ]
    assert list(got)[2].error and "invalid character" in list(got)[2].error
    assert got.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
    assert got.source == str(f)


def test_csv_uses_its_rank_column(tmp_path: Path) -> None:
    f = tmp_path / "list.csv"
    f.write_text("rank,domain\n5,b.example\n2,a.example\n")
    got = read_domain_list(f)
    assert [(e.rank, e.domain) for e in got] == [(5, "b.example"), (2, "a.example")]


def test_csv_without_rank_numbers_rows(tmp_path: Path) -> None:
    f = tmp_path / "list.csv"
    f.write_text("Domain,provider\na.example,x\nb.example,y\n")
    assert [(e.rank, e.domain) for e in read_domain_list(f)] == [
        (1, "a.example"), (2, "b.example")
    ]


def test_duplicates_are_kept_as_invalid_rows(tmp_path: Path) -> None:
    got = from_arguments(["a.example", "A.EXAMPLE.", "b.example"])
    assert [e.domain for e in got] == ["a.example", None, "b.example"]
    assert list(got)[1].error == "duplicate of a.example at rank 1"
    # A repeat given the same rank as the first is a repeat all the same.
    f = tmp_path / "ranked.csv"
    f.write_text("rank,domain\n4,a.example\n4,a.example\n", encoding="utf-8")
    assert [(e.domain, e.error) for e in read_domain_list(f)] == [
        ("a.example", None), (None, "duplicate of a.example at rank 4")]


def test_shipped_study_list_reads_as_100_valid_domains() -> None:
    got = read_domain_list(STUDY_LIST)
    assert len(got) == len(list(got)) == 100
    assert all(e.domain for e in got)
    first = next(iter(got))
    assert (first.domain, first.rank) == ("gmail.com", 1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no domains"),
        (b"# only a comment\n\n", "no domains"),
        (b"\x00\x01\x02binary", "binary file"),
        (b"\xff\xfe\xfa not utf8", "not UTF-8"),
        (b"name,provider\nx.example,y\n", "no 'domain' column"),
        (b"rank,domain\nfirst,x.example\n", "not an integer"),
        (b"a.example\nb.\xe9xample\n", "line 2 is not UTF-8"),
        (b"a.example\n" * 10_000 + b"b.exa\x00mple\n", "binary file"),
        (b"a.example\n" + b"b" * (MAX_LINE + 1), "line 2 is longer than"),
        (gzip.compress(b"", mtime=0), "no domains"),
        (gzip.compress(b"\x00\x01binary", mtime=0), "binary file (inside gzip)"),
        (gzip.compress(b"a.example\n" * 1000, mtime=0)[:-30], "gzip data ends early"),
        (b"\x1f\x8b" + b"not gzip at all" * 10, "corrupt gzip data"),
        (bz2.compress(b"a.example\n")[:-1] + b"\x00", "corrupt bzip2 data"),
        (b"\x28\xb5\x2f\xfd" + b"\x00" * 20, "zstd-compressed; unpack it first"),
        (packed(b"", "zip")[:0] + b"PK\x05\x06" + b"\x00" * 18, "zip archive of 0 files"),
        (b"PK\x03\x04 truncated zip", "corrupt zip data"),
    ],
)
def test_unusable_files_raise_one_line_input_errors(
    tmp_path: Path, content: bytes, message: str
) -> None:
    f = tmp_path / "bad"
    f.write_bytes(content)
    with pytest.raises(InputError, match=re.escape(message)) as err:
        read_domain_list(f)
    assert "\n" not in str(err.value) and str(err.value).startswith(f"{f}: ")


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
    assert [e.domain for e in mine] == ["mine.example"]
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


def test_headerless_rank_domain_csv_keeps_its_ranks(tmp_path: Path) -> None:
    # The file the survey used to reject: "CSV has no 'domain' column (columns: 1, ...)".
    f = tmp_path / "top-1m.csv"
    f.write_text(RANKED, encoding="utf-8", newline="")
    got = read_domain_list(f)
    assert [(e.rank, e.domain) for e in got] == RANKED_ENTRIES
    assert [e.input for e in got][:2] == ["google.com", "Facebook.com"]
    assert list(got)[4].error == "duplicate of google.com at rank 1"
    assert got.format == "rank,domain CSV without a header"
    assert got.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
    assert (got.top, got.list_id) == (None, None)


def test_headerless_tab_separated_with_extra_columns(tmp_path: Path) -> None:
    f = tmp_path / "export.tsv"
    f.write_text("10\ta.example\tsome note\n20\tb.example\n", encoding="utf-8")
    assert [(e.rank, e.domain) for e in read_domain_list(f)] == [
        (10, "a.example"), (20, "b.example")
    ]


def test_headerless_rank_that_is_not_a_number_names_its_line(tmp_path: Path) -> None:
    f = tmp_path / "list.csv"
    f.write_text("1,a.example\n# a comment\n2,b.example\ntotal,2\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"list.csv: line 4: rank 'total' is not an integer"):
        read_domain_list(f)


@pytest.mark.parametrize("how", COMPRESSIONS)
def test_each_compression_reads_the_same_entries_by_content_not_name(
    tmp_path: Path, how: str
) -> None:
    f = tmp_path / "list.dat"  # the name says nothing: the first bytes do
    f.write_bytes(packed(RANKED.encode(), how))
    got = read_domain_list(f)
    assert [(e.rank, e.domain) for e in got] == RANKED_ENTRIES
    assert got.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()  # the file as given
    stored = "zip member top-1m.csv" if how == "zip" else how
    assert got.format == f"rank,domain CSV without a header, {stored}"


@pytest.mark.parametrize("how", ["plain", *COMPRESSIONS])
def test_a_stream_that_cannot_seek_reads_like_a_file(how: str) -> None:
    data = packed(RANKED.encode(), how)
    pipe = Pipe(data)
    got = read_domain_list(pipe)
    assert [(e.rank, e.domain) for e in got] == RANKED_ENTRIES
    assert got.sha256 == hashlib.sha256(data).hexdigest()
    assert not pipe.closed  # the caller's stream stays the caller's


def test_zip_directories_and_macos_metadata_are_not_members(tmp_path: Path) -> None:
    f = tmp_path / "list.zip"
    with zipfile.ZipFile(f, "w") as archive:  # stored, not deflated
        archive.writestr("lists/", b"")
        archive.writestr("__MACOSX/lists/._top-1m.csv", b"\x00\x05\x16\x07")
        archive.writestr("lists/top-1m.csv", RANKED.encode())
    got = read_domain_list(f)
    assert [(e.rank, e.domain) for e in got] == RANKED_ENTRIES
    assert got.format == "rank,domain CSV without a header, zip member lists/top-1m.csv"


def test_top_takes_the_first_entries_in_file_order_invalid_and_repeated_ones_too(
    tmp_path: Path,
) -> None:
    f = tmp_path / "list.txt"
    f.write_text("# header comment\na.example\n\nnot a.domain\nA.example\nb.example\n"
                 "c.example\n", encoding="utf-8")
    got = read_domain_list(f, top=4, list_id=" K2VWW ")
    assert [(e.rank, e.domain) for e in got] == [
        (1, "a.example"), (2, None), (3, None), (4, "b.example")
    ]
    assert (got.top, got.list_id, got.format) == (4, "K2VWW", "one domain a line")
    # The checksum of the entries taken, as data/README.md defines it.
    assert got.sha256 == hashlib.sha256(
        b"1,a.example\n2,not a.domain\n3,A.example\n4,b.example").hexdigest()
    assert list(read_domain_list(f, top=100)) == list(read_domain_list(f))


def test_the_entries_are_set_aside_on_disk_when_read_not_held(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spools = tmp_path / "tmp"
    spools.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spools))
    f = tmp_path / "list.csv"
    f.write_text(RANKED, encoding="utf-8")
    got = read_domain_list(f)
    f.unlink()  # checked whole and set aside when read: the file is not read again
    assert len(got) == 5
    assert [(e.rank, e.domain) for e in got] == RANKED_ENTRIES
    # Each iteration reads the entries anew, with its own place in them.
    first, second = iter(got), iter(got)
    assert (next(first).rank, next(first).rank, next(second).rank) == (1, 2, 1)
    assert [e.rank for e in second] == [2, 3, 7, 9]
    del first, second
    assert len(list(spools.iterdir())) == 1
    del got
    gc.collect()
    assert list(spools.iterdir()) == []  # the spool goes with the list


def test_top_checksum_is_of_the_entries_whatever_the_compression(tmp_path: Path) -> None:
    digests = set()
    for how in ["plain", *COMPRESSIONS]:
        f = tmp_path / f"list-{how}"
        f.write_bytes(packed(RANKED.encode(), how))
        digests.add(read_domain_list(f, top=2).sha256)
    assert digests == {hashlib.sha256(b"1,google.com\n2,Facebook.com").hexdigest()}
    assert entries_sha256([("google.com", 1), ("Facebook.com", 2)]) in digests
    assert read_domain_list(tmp_path / "list-plain", top=3).sha256 not in digests


def test_top_of_a_million_lines_reads_only_what_it_needs(tmp_path: Path) -> None:
    # After line 1,000 every line is undecodable: reading one of them would fail the list.
    n = 1000
    good = b"".join(b"%d,d%d.example\r\n" % (i, i) for i in range(1, n + 1))
    f = tmp_path / "million.csv"
    f.write_bytes(good + b"\xff\xfe not UTF-8\r\n" * (1_000_000 - n))
    got = read_domain_list(f, top=n)
    assert len(got) == len(list(got)) == n
    assert (list(got)[-1].rank, list(got)[-1].domain) == (n, f"d{n}.example")
    with pytest.raises(InputError, match=f"line {n + 1} is not UTF-8"):
        read_domain_list(f)  # the whole list does read line 1,001


def test_top_of_a_compressed_million_lines_reads_a_block_of_it() -> None:
    lines = b"".join(b"%d,d%d.example\n" % (i, i) for i in range(1, 1_000_001))
    data = gzip.compress(lines, compresslevel=1)
    pipe = Pipe(data)
    got = read_domain_list(pipe, top=1000)
    assert [e.rank for e in got] == list(range(1, 1001))
    assert len(data) > 2_000_000
    # 1,000 lines are 18 kB unpacked: what was read is the decompressor's look-ahead.
    assert pipe.bytes_read <= 2 * BLOCK_SIZE, pipe.bytes_read


def test_line_endings_byte_order_mark_and_a_crlf_split_between_blocks(tmp_path: Path) -> None:
    f = tmp_path / "list.txt"
    f.write_bytes(b"\xef\xbb\xbfa.example\rb.example\r\nc.example\n")
    assert [e.domain for e in read_domain_list(f)] == ["a.example", "b.example",
                                                                "c.example"]
    # A \r\n whose \r ends the first block is one line ending, not two: line numbers hold.
    padding = b"x" * (BLOCK_SIZE - len(b"rank,domain\r\n1,.example\r"))
    first = b"rank,domain\r\n1," + padding + b".example\r"
    assert len(first) == BLOCK_SIZE
    f.write_bytes(first + b"\n2,y.example\r\nthree,z.example\r\n")
    with pytest.raises(InputError, match="line 4: rank 'three'"):
        read_domain_list(f)


def test_zip_of_several_files_and_encrypted_zip_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "lists.zip"
    with zipfile.ZipFile(f, "w") as archive:
        archive.writestr("top-1m.csv", RANKED.encode())
        archive.writestr("README.txt", b"about the list")
    with pytest.raises(InputError, match=r"a zip archive of 2 files \(top-1m.csv, README.txt\)"):
        read_domain_list(f)
    data = bytearray(packed(RANKED.encode(), "zip"))
    # The "encrypted" flag bit, in the local header (offset 6) and the central directory entry.
    data[6] |= 1
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 1
    f.write_bytes(bytes(data))
    with pytest.raises(InputError, match=re.escape("top-1m.csv in the zip archive is encrypted")):
        read_domain_list(f)


@pytest.mark.parametrize(("top", "list_id", "message"), [
    (0, None, "top must be at least 1, not 0"),
    (-5, None, "top must be at least 1"),
    (None, "two\nlines", "is not one line"),
    (None, "  ", "is not one line"),
    (None, "x" * 201, "at most 200"),
])
def test_bad_top_and_list_id(tmp_path: Path, top: int | None, list_id: str | None,
                             message: str) -> None:
    f = tmp_path / "list.txt"
    f.write_text("a.example\n")
    with pytest.raises(InputError, match=message):
        read_domain_list(f, top=top, list_id=list_id)


def test_opt_out_list_is_read_by_the_same_reader(tmp_path: Path) -> None:
    f = tmp_path / "opt-out.gz"
    f.write_bytes(gzip.compress(b"\xef\xbb\xbf# operators who asked\r\nx.example\r\n"
                                b"192.0.2.0/24 # a network\r\n"))
    got = read_opt_out(f)
    assert (got.names, [str(n) for n in got.networks]) == (frozenset({"x.example"}),
                                                           ["192.0.2.0/24"])
    assert got.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
    f.write_bytes(b"x.example\n\x00\x01")
    with pytest.raises(InputError, match="binary file, not an opt-out list"):
        read_opt_out(f)
