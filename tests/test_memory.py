"""The process's memory set-up (:mod:`research.memory`), each in a fresh interpreter: what glibc
does without it and with it."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

GLIBC = hasattr(ctypes.CDLL(None), "mallinfo2")


def _run(script: str, *args: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("MALLOC_MMAP_THRESHOLD_", "ARROW_DEFAULT_MEMORY_POOL")}
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          check=True, timeout=60, env={**environ, **env}).stdout.strip()


_MAPPED_AFTER_A_LARGE_FREE = '''
import ctypes, os, sys
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
if sys.argv[1] == "steady":
    from research.memory import steady_memory
    steady_memory()
large = bytearray(8 << 20)  # mapped; freeing it raises glibc's threshold unless fixed
del large
before = libc.mallinfo2().hblks
block = bytearray(1 << 20)
print(libc.mallinfo2().hblks - before, os.environ.get("ARROW_DEFAULT_MEMORY_POOL"))
'''


@pytest.mark.skipif(not GLIBC,
                    reason="glibc ≥ 2.33 only: mallinfo2 tells mapped blocks apart")
def test_the_command_keeps_the_heap_from_taking_large_blocks() -> None:
    def mapped(mode: str, **env: str) -> str:
        return _run(_MAPPED_AFTER_A_LARGE_FREE, mode, **env)

    # glibc's own way: after an 8 MiB block is freed, a 1 MiB block comes from the heap.
    assert mapped("plain") == "0 None"
    # The command's: it still gets a mapping of its own, given back whole when freed.
    assert mapped("steady") == "1 system"
    # A user's own choices stand.
    assert mapped("steady", MALLOC_MMAP_THRESHOLD_=str(16 << 20),
                  ARROW_DEFAULT_MEMORY_POOL="jemalloc") == "0 jemalloc"


_FREED_BETWEEN_LIVE_BLOCKS = '''
import sys

def resident_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

# 40 MB of 2 kB blocks from the heap (above pymalloc's 512 bytes, below the mmap threshold);
# every tenth stays, so the freed ones lie between live blocks, none at the heap's top.
blocks = [bytearray(2000) for _ in range(20_000)]
kept = blocks[::10]
del blocks
before = resident_mb()
if sys.argv[1] == "give back":
    from research.memory import give_back_memory
    give_back_memory()
print(round(before - resident_mb()))
'''


@pytest.mark.skipif(not GLIBC, reason="glibc only: malloc_trim")
def test_memory_freed_between_live_blocks_goes_back_only_when_given_back() -> None:
    # glibc's own way: the 36 MB freed stay in the process (only the heap's top is trimmed).
    assert int(_run(_FREED_BETWEEN_LIVE_BLOCKS, "keep")) < 5
    # Given back: most of it leaves (a page stays where a live block sits on it).
    assert int(_run(_FREED_BETWEEN_LIVE_BLOCKS, "give back")) > 20
