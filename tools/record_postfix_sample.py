"""Record research/traffic/samples/postfix-maillog.log and the capture beside it: a real
Postfix (Debian's package) relaying the standard workload to the ``mta`` testbed, as the log
tests run it.

    .venv/bin/python tools/record_postfix_sample.py research/traffic/samples/

That needs root (Postfix's master runs as root and drops to the ``postfix`` user) and the
``postfix`` package; tcpdump for the capture.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.postfix_harness import record_samples

if __name__ == "__main__":
    print(record_samples(Path(sys.argv[1] if len(sys.argv) > 1 else "research/traffic/samples")))
