"""Where things live, and the scanner's defaults.

No side effects on import: nothing is created or read here.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
DATA_DIR = PROJECT_DIR / "data"
TESTBED_DIR = DATA_DIR / "testbed"
"""Scenario files (``NAME.toml``) for :mod:`research.testbed`."""
DOMAIN_LIST = DATA_DIR / "top100_email_domains.csv"
"""The 2019 study's list of the 100 most popular e-mail domains."""
RESULTS_DIR = PROJECT_DIR / "results"
"""Default parent of scan output directories (raw log, tables)."""
REPORTS_DIR = PROJECT_DIR / "reports"

RAW_LOG_NAME = "raw.jsonl"
META_NAME = "meta.json"

DEFAULT_PORT = 25
DEFAULT_TIMEOUT = 10.0
"""Seconds for one network operation (connect, one SMTP reply, one DNS query)."""
DEFAULT_CONCURRENCY = 10
"""Hosts probed at the same time."""
DEFAULT_PER_HOST_CONNECTIONS = 2
"""Concurrent connections to any one MX host; mail servers throttle scanners."""
DEFAULT_EHLO_NAME = "starttls-survey.invalid"
"""Identifies the scanner in EHLO; live surveys should pass a name that resolves to them."""
DNS_RETRIES = 2
"""Extra attempts after a temporary DNS failure (SERVFAIL, timeout)."""
