"""The process's memory: what keeps a long survey's peak from growing with its list, where the
C allocator is glibc's (elsewhere these change nothing).

The survey's own data live on disk (:mod:`research.store.diskmap`) or are streamed; what is left
to grow is the allocator's free memory, which glibc keeps in the process unless told otherwise.
"""

from __future__ import annotations

import ctypes
import os

M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter for the size from which a block gets a mapping of its own."""
MMAP_THRESHOLD = 128 * 1024
"""glibc's initial mmap threshold, bytes, kept fixed by :func:`steady_memory`."""


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def steady_memory() -> None:
    """Set up this process so that a survey's peak memory does not grow with its list, as the
    command does before anything else; call it first in a process of your own that runs long
    surveys (the benchmarks do). A user's own setting of either variable below stands.

    - Arrow's default pool (mimalloc or jemalloc) keeps what the table writer's batches free;
      the system allocator returns it (``ARROW_DEFAULT_MEMORY_POOL``, read when pyarrow loads).
    - glibc raises its mmap threshold each time a mapped block is freed, up to 32 MiB, after
      which blocks that large come from the heap, where a freed block between live ones stays
      in the process: the tables' Arrow and pandas batches then left 20 MB of free heap after a
      10,000-domain survey's tables against 9 MB after a 1,000-domain survey's. A fixed
      threshold turns the raising off, as ``MALLOC_MMAP_THRESHOLD_`` does.
    """
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def give_back_memory() -> None:
    """Return the free pages of the C heap to the system (glibc's ``malloc_trim``).

    glibc gives back on its own only the free memory at the top of each heap; what a stream of
    work freed between blocks still in use stays in the process, counted in its resident size,
    and what comes next is laid on top of it. After the stream of a 10,000-domain survey that
    was 29 MB of free heap (22 MB after 1,000 domains); the survey calls this between the
    stream and the tables.
    """
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)
