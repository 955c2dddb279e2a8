"""Domain lists: read them (plain or CSV), normalise each name, keep invalid ones as data.

Lists that ship with the package (``research/scan/lists/NAME.csv``, package data) are read by
name: ``read_domain_list("isc-2019-top100")``, ``--domains isc-2019-top100``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from research.errors import InputError, InvalidDomainError
from research.policy.names import is_ip_address
from research.store.packaged import package_path

MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63
STUDY_LIST = "isc-2019-top100"
"""The 2019 study's list of the 100 most popular e-mail domains, shipped with the package."""


@dataclass(frozen=True)
class DomainInput:
    """One entry of a domain list.

    ``domain`` is the normalised name, or ``None`` when ``input`` is not a valid domain name (then
    ``error`` says why); invalid entries stay in the survey as ``invalid`` rows.
    """

    input: str
    rank: int
    domain: str | None
    error: str | None = None


@dataclass(frozen=True)
class DomainList:
    entries: list[DomainInput]
    source: str
    """A file path, a shipped list's name, or ``arguments`` for names given on the command
    line."""
    sha256: str


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


def make_entries(names: Iterable[tuple[str, int]]) -> list[DomainInput]:
    """Normalise ``(input, rank)`` pairs; invalid or repeated names get an ``error``."""
    entries = []
    first_rank: dict[str, int] = {}
    for raw, rank in names:
        try:
            domain = normalize_domain(raw)
        except InvalidDomainError as exc:
            entries.append(DomainInput(input=raw, rank=rank, domain=None, error=str(exc)))
            continue
        if domain in first_rank:
            # One row per domain keeps the tables' join keys unique; the repeat stays visible.
            error = f"duplicate of {domain} at rank {first_rank[domain]}"
            entries.append(DomainInput(input=raw, rank=rank, domain=None, error=error))
            continue
        first_rank[domain] = rank
        entries.append(DomainInput(input=raw, rank=rank, domain=domain))
    return entries


def from_arguments(names: Iterable[str]) -> DomainList:
    """A domain list from names given directly (ranked in the order given)."""
    names = list(names)
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()
    return DomainList(
        entries=make_entries((n, i) for i, n in enumerate(names, 1)),
        source="arguments",
        sha256=digest,
    )


def read_text_file(path: Path, what: str) -> tuple[bytes, str]:
    """The bytes of a user's input file and their UTF-8 text; ``what`` names it in errors.

    Raises:
        InputError: the file cannot be read, is a directory, is binary (holds NUL bytes) or is
            not UTF-8 text.
    """
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a {what}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} ({exc.strerror})") from None
    if b"\x00" in data:
        raise InputError(f"{path}: binary file, not a {what}")
    try:
        return data, data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: {what} is not UTF-8 text") from None


def lists_dir() -> Path:
    """The domain lists shipped with the package (``NAME.csv``; package data)."""
    return package_path("research.scan", "lists")


def shipped_lists() -> list[str]:
    """Names of the shipped domain lists, sorted (:data:`STUDY_LIST` among them)."""
    return sorted(p.stem for p in lists_dir().glob("*.csv"))


def read_domain_list(path: str | Path) -> DomainList:
    """Read a domain list: one domain a line, or a CSV with a ``domain`` column (``rank`` optional).

    ``path`` is a file, or the name of a shipped list (:func:`shipped_lists`) when no file of
    that name exists. Blank lines and ``#`` comments are ignored in plain lists. Without a
    ``rank`` column, ranks are the 1-based order of the entries.

    Raises:
        InputError: the file cannot be read, is not UTF-8 text, is empty, or is a CSV without a
            ``domain`` column or with a non-integer ``rank``.
    """
    path, source = _locate(Path(path))
    data, text = read_text_file(path, "domain list")
    pairs = _parse_text(text, path)
    if not pairs:
        raise InputError(f"{path}: no domains in file")
    return DomainList(
        entries=make_entries(pairs),
        source=source,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _locate(path: Path) -> tuple[Path, str]:
    """The file to read for ``path`` and the source to record: the file itself if it exists,
    else a shipped list of that name (recorded by name, the same on every machine)."""
    if path.exists() or len(path.parts) != 1 or path.suffix:
        return path, str(path)
    name = str(path)
    if name in shipped_lists():
        return lists_dir() / f"{name}.csv", name
    raise InputError(f"{name}: no such file, nor a shipped list "
                     f"(shipped: {', '.join(shipped_lists()) or 'none'})")


def _parse_text(text: str, path: Path) -> list[tuple[str, int]]:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return []
    first = lines[0]
    if "," in first or "\t" in first or first.strip().lower() == "domain":
        return _parse_csv("\n".join(lines), path)
    return [(ln.strip(), i) for i, ln in enumerate(lines, 1)]


def _parse_csv(text: str, path: Path) -> list[tuple[str, int]]:
    dialect = "excel-tab" if "\t" in text.splitlines()[0] else "excel"
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
    if "domain" not in fields:
        found = ", ".join(f for f in fields if f) or "none"
        raise InputError(f"{path}: CSV has no 'domain' column (columns: {found})")
    domain_key, rank_key = fields["domain"], fields.get("rank")
    pairs = []
    for i, row in enumerate(reader, 1):
        raw = (row.get(domain_key) or "").strip()
        if not raw:
            continue
        rank = i
        if rank_key is not None and (row.get(rank_key) or "").strip():
            try:
                rank = int((row[rank_key] or "").strip())
            except ValueError:
                raise InputError(
                    f"{path}: line {i + 1}: rank {row[rank_key]!r} is not an integer"
                ) from None
        pairs.append((raw, rank))
    return pairs
