"""What produced a result: the tool's version and the libraries that shape what it finds."""

from __future__ import annotations

import importlib.util
import platform
import re
import ssl
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

TOOL = "starttls-survey"
SURVEY_LIBRARIES = ("sslyze", "nassl", "dnspython", "pandas", "pyarrow", "cryptography")
"""The libraries whose versions shape a survey's results (``meta.json`` ``versions``)."""
LOG_LIBRARIES = ("pandas", "pyarrow", "dpkt")
"""The libraries that read MTA logs and captures (the ``logs`` output's ``versions``)."""


def version_of(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None if it is not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def tool_version() -> dict[str, str | None]:
    return {"name": TOOL, "version": version_of(TOOL)}


def library_versions(dists: Iterable[str], *, openssl: bool = False) -> dict[str, Any]:
    """Python and each of ``dists``; with ``openssl``, also the OpenSSL builds the TLS scans use
    (nassl's two, and Python's ``ssl`` module's, which the SMTP probe's default client uses)."""
    versions: dict[str, Any] = {"python": platform.python_version()}
    for dist in dists:
        versions[dist] = version_of(dist)
    if openssl:
        versions["openssl_nassl"] = _nassl_openssl("_nassl")
        versions["openssl_nassl_legacy"] = _nassl_openssl("_nassl_legacy")
        versions["openssl_python_ssl"] = ssl.OPENSSL_VERSION
    return versions


@cache
def _nassl_openssl(module: str) -> str | None:
    """The OpenSSL version string built into one of nassl's extension modules.

    nassl exposes no version call, so read the version banner OpenSSL embeds in its binary.
    """
    spec = importlib.util.find_spec(f"nassl.{module}")
    if spec is None or spec.origin is None:
        return None
    banner = rb"OpenSSL \d+\.\d+\.\d+[a-z]*\s+\d+ \w+ \d{4}"
    match = re.search(banner, Path(spec.origin).read_bytes())
    return match.group().decode() if match else None
