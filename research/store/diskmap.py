"""A map whose size costs disk, not memory: what a survey keeps per domain, name or record.

A survey of a long list remembers something about every domain, MX name and finished record
(which names it has met, where each record starts in the raw log, what each address it probed
taught). In Python dicts that grows with the list; here it lives in a private temporary SQLite
database (deleted when closed, or when the process ends) whose page cache is all it holds in
memory, so a survey's peak memory does not grow with the list.
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

V = TypeVar("V")

Key = tuple[str | int, ...]
"""A key: one value per key column, each a ``str`` or an ``int`` as the column says."""

CACHE_KIB = 512
"""The page cache of each map, KiB: what a map holds in memory at most, beyond one row."""

_TYPES = {str: "TEXT", int: "INTEGER"}
_NONE = pickle.dumps(None)


class DiskMap(Generic[V]):
    """Keys (tuples of the given column types) → picklable values, in key order on iteration:
    integers by value, text by code point (as Python sorts ``str``).

    Like a dict, but every value is a copy: change one and store it again. Use it from one
    thread (SQLite's connection rule); :meth:`close` frees the file.
    """

    def __init__(self, *columns: type) -> None:
        if not columns or any(c not in _TYPES for c in columns):
            raise TypeError(f"key columns must be str or int, not {columns!r}")
        self._width = len(columns)
        keys = [f"k{i}" for i in range(self._width)]
        # An empty file name is a private database on disk, deleted when the connection closes.
        self._db = sqlite3.connect("", isolation_level=None)
        for pragma in (f"cache_size = -{CACHE_KIB}", "journal_mode = OFF", "synchronous = OFF",
                       "temp_store = FILE"):
            self._db.execute(f"PRAGMA {pragma}")
        key_list = ", ".join(keys)
        self._db.execute(
            "CREATE TABLE m ("
            + ", ".join(f"{k} {_TYPES[c]} NOT NULL" for k, c in zip(keys, columns, strict=True))
            + f", v BLOB NOT NULL, PRIMARY KEY ({key_list})) WITHOUT ROWID")
        where = " AND ".join(f"{k} = ?" for k in keys)
        self._put = (f"INSERT OR REPLACE INTO m ({key_list}, v) "
                     f"VALUES ({', '.join('?' * (self._width + 1))})")
        self._add = self._put.replace("OR REPLACE", "OR IGNORE")
        self._get = f"SELECT v FROM m WHERE {where}"
        self._ordered = f"SELECT {key_list}, v FROM m ORDER BY {key_list}"

    def _key(self, key: Key | str | int) -> Key:
        parts = key if isinstance(key, tuple) else (key,)
        if len(parts) != self._width:
            raise KeyError(key)
        return parts

    def __setitem__(self, key: Key | str | int, value: V) -> None:
        self._db.execute(self._put, (*self._key(key), pickle.dumps(value, protocol=5)))

    def get(self, key: Key | str | int, default: V | None = None) -> V | None:
        row = self._db.execute(self._get, self._key(key)).fetchone()
        return default if row is None else pickle.loads(row[0])

    def __getitem__(self, key: Key | str | int) -> V:
        row = self._db.execute(self._get, self._key(key)).fetchone()
        if row is None:
            raise KeyError(key)
        value: V = pickle.loads(row[0])
        return value

    def __contains__(self, key: Any) -> bool:
        return self._db.execute(self._get, self._key(key)).fetchone() is not None

    def add(self, key: Key | str | int, value: V | None = None) -> bool:
        """Set ``key`` to ``value`` if it is not set, as a set's add (with a value); True if it
        was new. One statement either way."""
        stored = _NONE if value is None else pickle.dumps(value, protocol=5)
        cursor = self._db.execute(self._add, (*self._key(key), stored))
        return cursor.rowcount == 1

    def __len__(self) -> int:
        count: int = self._db.execute("SELECT count(*) FROM m").fetchone()[0]
        return count

    def items(self) -> Iterator[tuple[Key, V]]:
        """Every (key, value), in key order (read while iterating: do not change the map)."""
        for row in self._db.execute(self._ordered):
            yield tuple(row[:-1]), pickle.loads(row[-1])

    def values(self) -> Iterator[V]:
        for _, value in self.items():
            yield value

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """A context in which many writes cost one transaction (the index's first pass)."""
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DiskMap[V]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
