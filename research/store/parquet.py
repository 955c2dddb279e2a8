"""Parquet tables written a batch of rows at a time, so a table never has to fit in memory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

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


ROW_GROUP_BYTES = 512 * 1024
"""Arrow bytes of rows gathered before they are written as one Parquet row group. A Parquet
writer keeps every row group's metadata in memory until it closes, about 1 kB a column: a row
group per batch made that grow with the table (11 MB for 500 batches of 20 columns); what is
gathered is held as well, so neither may be large."""


class BatchWriter:
    """Table ``name`` of the schema, written to ``path`` beside its final name: rows are turned
    into Arrow data ``batch_rows`` at a time, and written as a Parquet row group each time
    :data:`ROW_GROUP_BYTES` of it have gathered; :meth:`close` publishes the file,
    :meth:`discard` drops it. As a context manager, an exception discards. Raises OSError if the
    directory cannot be written.
    """

    def __init__(self, name: str, path: Path, batch_rows: int,
                 row_group_bytes: int = ROW_GROUP_BYTES) -> None:
        self.name = name
        self.path = path
        self.schema = arrow_schema(name)
        self.batch_rows = batch_rows
        self.row_group_bytes = row_group_bytes
        self._tmp = temporary_beside(path)
        self._writer = pq.ParquetWriter(self._tmp, self.schema)
        self._rows: list[dict[str, Any]] = []
        self._batches: list[pa.Table] = []
        self._gathered = 0
        self.count = 0
        """Rows written (or gathered) so far."""

    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        self.count += 1
        if len(self._rows) >= self.batch_rows:
            self._gather()
            if self._gathered >= self.row_group_bytes:
                self.flush()

    def _gather(self) -> None:
        if self._rows:
            batch = pa.Table.from_pandas(make_table(self.name, self._rows), schema=self.schema,
                                         preserve_index=False)
            self._rows = []
            self._batches.append(batch)
            self._gathered += batch.nbytes

    def flush(self) -> None:
        """Write what has gathered as one row group."""
        self._gather()
        if self._batches:
            table = pa.concat_tables(self._batches)
            self._batches, self._gathered = [], 0
            self._writer.write_table(table, row_group_size=table.num_rows)

    def close(self) -> Path:
        """Write what is gathered, close the file and move it into place."""
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
