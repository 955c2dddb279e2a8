"""Domain lists: read them (plain, CSV, ranked; compressed or not), normalise each name, keep
invalid ones as data.

Lists that ship with the package (``research/scan/lists/NAME.csv``, package data) are read by
name: ``read_domain_list("isc-2019-top100")``, ``--domains isc-2019-top100``.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import sys
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from research.errors import InputError, InvalidDomainError
from research.policy.names import is_ip_address
from research.scan._listfile import ListFile
from research.store.diskmap import DiskMap
from research.store.packaged import package_path

MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63
MAX_LIST_ID_LENGTH = 200
STUDY_LIST = "isc-2019-top100"
"""The 2019 study's list of the 100 most popular e-mail domains, shipped with the package."""
STDIN = "-"
"""The ``source`` that means standard input."""

LAYOUT_LINES = "one domain a line"
LAYOUT_CSV = "CSV with a header"
LAYOUT_RANKED = "rank,domain CSV without a header"


@dataclass(frozen=True, slots=True)
class DomainInput:
    """One entry of a domain list.

    ``domain`` is the normalised name, or ``None`` when ``input`` is not a valid domain name (then
    ``error`` says why); invalid entries stay in the survey as ``invalid`` rows.
    """

    input: str
    rank: int
    domain: str | None
    error: str | None = None


@dataclass(frozen=True, eq=False)
class DomainList:
    """The entries to survey and where they came from (``meta.json`` records it).

    Iterating yields the :class:`DomainInput` entries in list order, normalised as they are
    pulled; the entries themselves are not held: a list read from a file or a stream was
    checked whole when read and set aside on disk (:class:`_Spool`), so a survey's memory does
    not grow with its list. ``len()`` is the number of entries.
    """

    source: str
    """A file path, a shipped list's name, ``<stdin>``, or ``arguments`` for names given on the
    command line."""
    sha256: str
    """See :func:`read_domain_list`; for arguments, of the names joined by newlines."""
    count: int
    """How many entries (rows) the list has."""
    top: int | None = None
    """The ``top`` the entries were limited to, if any."""
    list_id: str | None = None
    """The list's published ID, as the user gave it."""
    format: str | None = None
    """How the file was read: its layout and compression (``rank,domain CSV without a
    header, zip member top-1m.csv``)."""
    pairs: Iterable[tuple[str, int]] = field(default=(), repr=False)
    """The ``(input, rank)`` pairs, re-readable: a :class:`_Spool` or a tuple."""

    def __iter__(self) -> Iterator[DomainInput]:
        return make_entries(self.pairs)

    def __len__(self) -> int:
        return self.count


class _Spool:
    """``(input, rank)`` pairs written to a private temporary file, read back on each
    iteration (each iteration with its own handle); the file is deleted with this object or
    when the process ends."""

    def __init__(self) -> None:
        fd, name = tempfile.mkstemp(prefix="starttls-survey-list-", suffix=".jsonl")
        self._path = Path(name)
        self._file = os.fdopen(fd, "w", encoding="utf-8")
        self._cleanup = weakref.finalize(self, _remove, self._path)

    def add(self, raw: str, rank: int) -> None:
        # JSON, not a separator: a CSV cell may hold any character but a line ending.
        self._file.write(json.dumps([rank, raw], ensure_ascii=False) + "\n")

    def close(self) -> None:
        """Done writing (call before iterating)."""
        self._file.close()

    def __iter__(self) -> Iterator[tuple[str, int]]:
        with self._path.open(encoding="utf-8") as f:
            for line in f:
                rank, raw = json.loads(line)
                yield raw, rank


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def normalize_domain(name: str) -> str:
    """Return ``name`` lower-cased, stripped, without trailing dot, as IDNA A-labels.

    Raises:
        InvalidDomainError: empty name, bad characters, a label or the name too long, an IP
            literal, a wildcard, or a name IDNA cannot encode.
    """
    text = name.strip()
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise InvalidDomainError("empty domain name")
    if "*" in text:
        raise InvalidDomainError(f"wildcard is not a domain: {name.strip()!r}")
    if is_ip_address(text):
        raise InvalidDomainError(f"IP literal is not a domain: {name.strip()!r}")
    labels = text.split(".")
    if len(labels) < 2:
        raise InvalidDomainError(f"not a fully qualified domain name: {name.strip()!r}")
    ascii_labels = [_to_a_label(label, name) for label in labels]
    result = ".".join(ascii_labels)
    if len(result) > MAX_NAME_LENGTH:
        raise InvalidDomainError(f"name longer than {MAX_NAME_LENGTH} characters: {name.strip()!r}")
    return result


def _to_a_label(label: str, original: str) -> str:
    if not label:
        raise InvalidDomainError(f"empty label in {original.strip()!r}")
    if label.isascii():
        ascii_label = label.lower()
    else:
        try:
            # Python's codec implements IDNA 2003; good enough to turn user input into A-labels,
            # and it lower-cases (nameprep) as a side effect.
            ascii_label = label.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise InvalidDomainError(f"cannot IDNA-encode {original.strip()!r}: {exc}") from None
    if len(ascii_label) > MAX_LABEL_LENGTH:
        raise InvalidDomainError(
            f"label longer than {MAX_LABEL_LENGTH} characters in {original.strip()!r}"
        )
    if not all(c.isalnum() or c in "-_" for c in ascii_label):
        raise InvalidDomainError(f"invalid character in {original.strip()!r}")
    if ascii_label.startswith("-") or ascii_label.endswith("-"):
        raise InvalidDomainError(f"label starts or ends with '-' in {original.strip()!r}")
    return ascii_label


def make_entries(names: Iterable[tuple[str, int]]) -> Iterator[DomainInput]:
    """Normalise ``(input, rank)`` pairs as they are pulled; invalid or repeated names get an
    ``error``. The names met so far are kept on disk (:class:`DiskMap`), not in memory."""
    with DiskMap[int](str) as first_rank:
        for raw, rank in names:
            try:
                domain = normalize_domain(raw)
            except InvalidDomainError as exc:
                yield DomainInput(input=raw, rank=rank, domain=None, error=str(exc))
                continue
            if not first_rank.add(domain, rank):
                # One row per domain keeps the tables' join keys unique; the repeat stays
                # visible.
                error = f"duplicate of {domain} at rank {first_rank[domain]}"
                yield DomainInput(input=raw, rank=rank, domain=None, error=error)
                continue
            # Most names are given normalised: one string for both saves a copy of each.
            yield DomainInput(input=raw, rank=rank, domain=raw if domain == raw else domain)


def from_arguments(names: Iterable[str]) -> DomainList:
    """A domain list from names given directly (ranked in the order given)."""
    given = tuple(names)
    digest = hashlib.sha256("\n".join(given).encode()).hexdigest()
    return DomainList(source="arguments", sha256=digest, count=len(given),
                      pairs=tuple((n, i) for i, n in enumerate(given, 1)))


def read_domain_list(source: str | Path | IO[bytes], *, top: int | None = None,
                     list_id: str | None = None) -> DomainList:
    """Read a domain list: one domain a line, a CSV with a ``domain`` column (``rank``
    optional), or header-less ``rank,domain`` rows (the Tranco, Umbrella and Alexa form); plain,
    gzip, bzip2, xz, or a zip holding one file (see ``data/README.md``).

    ``source`` is a path, the name of a shipped list (:func:`shipped_lists`) when no file of
    that name exists, ``-`` for standard input, or a binary stream (left open). ``top``
    takes the first ``top`` entries in file order (invalid and repeated names count: they
    become rows) and reads the file no further. ``list_id`` is the list's published ID (Tranco
    asks papers to cite it), kept for ``meta.json``.

    The checksum (:attr:`DomainList.sha256`): without ``top``, SHA-256 of the bytes as given
    (compressed, if they were: what ``sha256sum`` prints); with ``top``, SHA-256 of the entries
    taken (:func:`entries_sha256`), which does not depend on the rest of the file or its
    compression.

    Raises:
        InputError: the file cannot be read, is binary, is not UTF-8 text, has no entries, is
            a zip of more or fewer than one file, is corrupt compressed data, or is a CSV
            without a ``domain`` column or with a non-integer rank; ``top`` below 1; a
            ``list_id`` that is not one short line of text.
    """
    if top is not None and top < 1:
        raise InputError(f"top must be at least 1, not {top}")
    list_id = _checked_list_id(list_id)
    shipped = None
    if isinstance(source, str | Path) and str(source) == STDIN:
        source = sys.stdin.buffer
    elif isinstance(source, str | Path):
        source, shipped = _locate(Path(source))
    with ListFile(source, "domain list") as file:
        reader = _ListReader(file.lines(), file.name)
        spool = _Spool()
        taken = _EntriesDigest()
        count = 0
        try:
            for raw, rank in itertools.islice(reader, top):
                spool.add(raw, rank)
                taken.add(raw, rank)
                count += 1
        finally:
            spool.close()
        if not count:
            raise InputError(f"{file.name}: no domains in file")
        stored = f"zip member {file.member}" if file.member else file.compression
        return DomainList(
            source=shipped or file.name,
            sha256=taken.hexdigest() if top is not None else file.sha256(),
            count=count,
            top=top,
            list_id=list_id,
            format=", ".join(p for p in (reader.layout, stored) if p),
            pairs=spool,
        )


def lists_dir() -> Path:
    """The domain lists shipped with the package (``NAME.csv``; package data)."""
    return package_path("research.scan", "lists")


def shipped_lists() -> list[str]:
    """Names of the shipped domain lists, sorted (:data:`STUDY_LIST` among them)."""
    return sorted(p.stem for p in lists_dir().glob("*.csv"))


def _locate(path: Path) -> tuple[Path, str | None]:
    """The file to read for ``path``, and the shipped list's name when it is one (recorded by
    name, the same on every machine): the file itself if it exists, else a shipped list."""
    if path.exists() or len(path.parts) != 1 or path.suffix:
        return path, None
    name = str(path)
    if name in shipped_lists():
        return lists_dir() / f"{name}.csv", name
    raise InputError(f"{name}: no such file, nor a shipped list "
                     f"(shipped: {', '.join(shipped_lists()) or 'none'})")


def entries_sha256(pairs: Iterable[tuple[str, int]]) -> str:
    """SHA-256 (hex) of ``(input, rank)`` entries: their ``RANK,INPUT`` lines joined by ``\\n``
    (UTF-8, no final newline), ``INPUT`` as read with surrounding whitespace stripped."""
    digest = _EntriesDigest()
    for raw, rank in pairs:
        digest.add(raw, rank)
    return digest.hexdigest()


class _EntriesDigest:
    """:func:`entries_sha256`, one entry at a time."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._separator = b""

    def add(self, raw: str, rank: int) -> None:
        self._digest.update(self._separator + f"{rank},{raw}".encode())
        self._separator = b"\n"

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _checked_list_id(list_id: str | None) -> str | None:
    if list_id is None:
        return None
    text = list_id.strip()
    if not text or len(text) > MAX_LIST_ID_LENGTH or not text.isprintable():
        raise InputError(f"list ID {list_id!r} is not one line of at most "
                         f"{MAX_LIST_ID_LENGTH} printable characters")
    return text


class _ListReader:
    """``(input, rank)`` pairs of a list's lines, parsed as they are pulled; ``layout`` says how
    the list was read once the first entry is."""

    def __init__(self, lines: Iterator[tuple[int, str]], name: str) -> None:
        self.name = name
        self.layout: str | None = None
        self.number = 0
        """Line number of the line read last (for errors)."""
        self._lines = lines

    def _content(self) -> Iterator[str]:
        for number, text in self._lines:
            self.number = number
            if text.strip() and not text.lstrip().startswith("#"):
                yield text

    def __iter__(self) -> Iterator[tuple[str, int]]:
        content = self._content()
        first = next(content, None)
        if first is None:
            return
        lines = itertools.chain([first], content)
        if "," in first or "\t" in first or first.strip().lower() == "domain":
            yield from self._csv(lines, "excel-tab" if "\t" in first else "excel")
            return
        self.layout = LAYOUT_LINES
        for rank, text in enumerate(lines, 1):
            yield text.strip(), rank

    def _csv(self, lines: Iterator[str], dialect: str) -> Iterator[tuple[str, int]]:
        reader = csv.reader(lines, dialect=dialect)
        first = next(reader)
        rows: Iterator[list[str]] = reader
        domain_at: int
        rank_at: int | None
        if first and _is_rank(first[0]):
            # No header: rank,domain rows, as Tranco, Umbrella and Alexa publish them.
            self.layout = LAYOUT_RANKED
            domain_at, rank_at = 1, 0
            rows = itertools.chain([first], reader)
        else:
            self.layout = LAYOUT_CSV
            fields = [f.strip().lower() for f in first]
            if "domain" not in fields:
                found = ", ".join(f for f in fields if f) or "none"
                raise InputError(f"{self.name}: CSV has no 'domain' column (columns: {found}) "
                                 "and no rank,domain rows")
            domain_at = fields.index("domain")
            rank_at = fields.index("rank") if "rank" in fields else None
        for i, row in enumerate(rows, 1):
            raw = row[domain_at].strip() if len(row) > domain_at else ""
            if not raw:
                continue
            cell = row[rank_at].strip() if rank_at is not None and len(row) > rank_at else ""
            try:
                rank = int(cell) if cell else i
            except ValueError:
                raise InputError(f"{self.name}: line {self.number}: rank {cell!r} is not an "
                                 "integer") from None
            yield raw, rank


def _is_rank(field: str) -> bool:
    text = field.strip()
    return text.isascii() and text.isdigit()
