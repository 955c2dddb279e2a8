"""TXT policy records shared by MTA-STS (RFC 8461 §3.1) and TLS-RPT (RFC 8460 §3).

Both are ``v=<version>; key=value; ...`` records at a fixed name under the domain, and both
RFCs say the same about several: records whose first field is not the version are ignored, and
if not exactly one remains, the domain has no policy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from research.store.schema import RecordStatus

_FIELD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_FIELD_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")
_DELIM = re.compile(r"[ \t]*;[ \t]*")


def first_field(text: str) -> str:
    return text.split(";", 1)[0].strip()


@dataclass(frozen=True)
class TaggedRecord:
    """The one record of a kind at a name, parsed; or why there is none."""

    status: RecordStatus
    record: str | None = None
    fields: tuple[tuple[str, str], ...] = ()
    """(name, value) after the version field, in order."""
    error: str | None = None


def select_record(records: list[str], version: str,
                  value_patterns: Mapping[str, re.Pattern[str]] | None = None) -> TaggedRecord:
    """The record whose first field is ``version`` (e.g. ``v=STSv1``), split into fields.

    ``none`` without such a record, ``multiple`` with several, ``invalid`` when the one record
    breaks the shared grammar: ``version`` then one or more ``;``-separated ``name=value``
    fields (names of 1–32 letters, digits, ``_-.``; values of printable ASCII without ``;``,
    ``=`` or space, unless ``value_patterns`` has another pattern for that name), an optional
    final ``;``.
    """
    tagged = [r for r in records if first_field(r) == version]
    if not tagged:
        return TaggedRecord(RecordStatus.NONE)
    if len(tagged) > 1:
        return TaggedRecord(RecordStatus.MULTIPLE,
                            error=f"{len(tagged)} records start with {version}")
    text = tagged[0]
    parts = _DELIM.split(text.strip())
    if parts and parts[-1] == "":
        parts.pop()  # the optional trailing delimiter
    fields: list[tuple[str, str]] = []
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        if not eq or not _FIELD_NAME.fullmatch(key):
            return TaggedRecord(RecordStatus.INVALID, text, error=f"bad field {part!r}")
        pattern = (value_patterns or {}).get(key, _FIELD_VALUE)
        if not pattern.fullmatch(value):
            return TaggedRecord(RecordStatus.INVALID, text,
                                error=f"bad value in field {part!r}")
        fields.append((key, value))
    if not fields:
        return TaggedRecord(RecordStatus.INVALID, text, error="no field after the version")
    return TaggedRecord(RecordStatus.VALID, text, tuple(fields))
