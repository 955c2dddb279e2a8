"""Parquet tables written a batch of rows at a time, so a table never has to fit in memory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from research.store.files import publish, temporary_beside
from research.store.frames import make_table
from research.store.schema import dtypes


@contextmanager
def system_memory() -> Iterator[None]:
    """Arrow allocates from the system allocator inside, and from its default pool again after.

    Arrow's default pool (mimalloc or jemalloc) keeps much of what it frees for later; a table
    written or read back a batch at a time through it ends up holding memory that grows with the
    table (about 70 MB more for the CSV export of a 3,300-host survey), which the system
    allocator returns. Not for use from several threads at once: the pool is process-wide.
    """
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def arrow_schema(name: str) -> pa.Schema:
    """The Arrow schema of table ``name``, list columns typed (an empty batch would say null)."""
    schema = pa.Schema.from_pandas(make_table(name, []), preserve_index=False)
    for column, dtype in dtypes(name).items():
        if dtype == "object":
            index = schema.get_field_index(column)
            schema = schema.set(index, pa.field(column, pa.list_(pa.string())))
    return schema


class BatchWriter:
    """Table ``name`` of the schema, written to ``path`` in batches of ``batch_rows`` rows (each
    a Parquet row group) beside its final name; :meth:`close` publishes it, :meth:`discard`
    drops it. As a context manager, an exception discards. Raises OSError if the directory
    cannot be written.
    """

    def __init__(self, name: str, path: Path, batch_rows: int) -> None:
        self.name = name
        self.path = path
        self.schema = arrow_schema(name)
        self.batch_rows = batch_rows
        self._tmp = temporary_beside(path)
        self._writer = pq.ParquetWriter(self._tmp, self.schema)
        self._rows: list[dict[str, Any]] = []
        self.count = 0
        """Rows written (or buffered) so far."""

    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        self.count += 1
        if len(self._rows) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self._write(make_table(self.name, self._rows))
            self._rows = []

    def _write(self, frame: pd.DataFrame) -> None:
        self._writer.write_table(pa.Table.from_pandas(frame, schema=self.schema,
                                                      preserve_index=False))

    def close(self) -> Path:
        """Write what is buffered, close the file and move it into place."""
        self.flush()
        self._writer.close()
        publish(self._tmp, self.path)
        return self.path

    def discard(self) -> None:
        self._writer.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()
