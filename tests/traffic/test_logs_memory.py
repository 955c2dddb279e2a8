"""Streaming: peak memory does not grow with the size of the log.

A large log is generated from the real Postfix sample (its lines repeated, each copy with its
own process ids and queue ids, so every copy is a fresh set of sessions), then parsed into a
sessions table in a child process that reports its peak resident memory. Four times the input
must not cost anywhere near four times the memory: a parser that held the file, or every row,
would grow at least by the extra input.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.mta_expectations import POSTFIX_SAMPLE

from research.traffic.reader import read_sessions

_PID = re.compile(r"\[(\d+)\]:")
_QID = re.compile(r": ([0-9A-F]{9,12}): ")

CHILD = """
import json, resource, sys
from research.traffic.reader import write_sessions
meta = write_sessions([sys.argv[1]], sys.argv[2])
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_kib": peak_kib, "sessions": meta["counts"]["sessions"],
                  "unparseable": meta["inputs"][0]["unparseable"]}))
"""


def generate(path: Path, copies: int, *, compress: bool = False) -> int:
    """Write ``copies`` renumbered copies of the sample; return the uncompressed size."""
    lines = POSTFIX_SAMPLE.read_text().splitlines()
    opener = gzip.open if compress else open
    size = 0
    with opener(path, "wt", encoding="utf-8") as out:  # type: ignore[operator]
        for i in range(copies):
            offset = 100_000 + i * 1_000
            block = "\n".join(
                _QID.sub(lambda m, i=i: f": {m.group(1)}{i:X}: ",
                         _PID.sub(lambda m, o=offset: f"[{int(m.group(1)) % 1000 + o}]:", ln))
                for ln in lines) + "\n"
            out.write(block)
            size += len(block)
    return size


def run_child(log: Path, out: Path) -> dict[str, int]:
    result = subprocess.run([sys.executable, "-c", CHILD, str(log), str(out)], check=True,
                            capture_output=True, text=True, cwd=out.parent, timeout=600)
    data: dict[str, int] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_log(tmp_path: Path) -> None:
    per_copy = len(POSTFIX_SAMPLE.read_text().splitlines())
    copies = 2_500  # ~20 MB of log lines
    small, large = tmp_path / "small.log", tmp_path / "large.log.gz"
    small_size = generate(small, copies)
    large_size = generate(large, 4 * copies, compress=True)
    a = run_child(small, tmp_path / "a")
    b = run_child(large, tmp_path / "b")
    sessions_per_copy = len(read_sessions([POSTFIX_SAMPLE]))  # test_logs checks these
    assert a["sessions"] == copies * sessions_per_copy, a
    assert b["sessions"] == 4 * copies * sessions_per_copy, b
    assert a["unparseable"] == b["unparseable"] == 0
    extra_input_kib = (large_size - small_size) / 1024
    growth_kib = b["peak_kib"] - a["peak_kib"]
    assert growth_kib < 0.25 * extra_input_kib, (
        f"peak grew {growth_kib:.0f} KiB for {extra_input_kib:.0f} KiB more log "
        f"({per_copy} lines per copy)")
