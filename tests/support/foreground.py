"""A testbed in the foreground (``testbed up``) as a user runs it: started, read until it has
said how to scan it, stopped with Ctrl-C."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def foreground(command: list[str | Path], **popen: Any
               ) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``command`` and read its output up to the line that says Ctrl-C stops it; yield
    the process and that text. A process still running at the end is killed."""
    proc = subprocess.Popen([str(c) for c in command], stdout=subprocess.PIPE, text=True,
                            **popen)
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        yield proc, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def interrupt(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C: the rest of the output, once the process has exited with status 0."""
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    return out
