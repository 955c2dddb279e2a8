"""Your own mail server's TLS: sessions from MTA logs (Postfix, Exim, Sendmail) and captures.

Every input file is recognised by its content: gzip is unwrapped, pcap/pcapng magic bytes make it a
capture (:mod:`research.traffic.pcap`), anything else is read as a text log, line by line, each line
framed (:mod:`research.traffic.logs.lines`) and handed to the parser of the MTA that wrote it
(:mod:`~research.traffic.logs.postfix`, :mod:`~research.traffic.logs.exim`,
:mod:`~research.traffic.logs.sendmail`), so one syslog file may hold several MTAs. Files are
streamed: nothing is held per line, only the sessions still open, and rows go to the Parquet writer
in batches::

    from research.traffic.reader import write_sessions
    write_sessions(["/var/log/mail.log", "/var/log/mail.log.1.gz", "smtp.pcapng"], "out/")

Lines that have no known framing, and TLS lines whose fields cannot be read, are counted as
``unparseable`` per file (in ``meta.json``), never fatal; other programs' lines are skipped.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Protocol, cast

import pandas as pd

from research.errors import InputError
from research.settings import RESULTS_DIR
from research.store.datapackage import write_sessions_package
from research.store.files import META_NAME, write_json
from research.store.licenses import license_entry
from research.store.packaged import package_path
from research.store.provenance import LOG_LIBRARIES, library_versions, tool_version
from research.store.schema import InputKind, SessionSource
from research.traffic.logs.exim import EximParser
from research.traffic.logs.lines import Clock, family, frame
from research.traffic.logs.postfix import PostfixParser
from research.traffic.logs.sendmail import SendmailParser
from research.traffic.pcap import capture_kind, read_capture
from research.traffic.sessions import (
    SESSIONS_FILE,
    InputStats,
    Row,
    SessionWriter,
    load_sessions,
    load_sessions_meta,
    sessions_frame,
)

__all__ = [
    "Clock",
    "InputStats",
    "detect_kind",
    "load_sessions",
    "load_sessions_meta",
    "read_sessions",
    "sample_files",
    "sessions_for_notebook",
    "sessions_frame",
    "sessions_from",
    "write_sessions",
]

GZIP_MAGIC = b"\x1f\x8b"


class _Parser(Protocol):
    source: SessionSource

    def __init__(self, file: str) -> None: ...

    def feed(self, line: Any, number: int) -> list[Row] | None: ...

    def finish(self) -> list[Row]: ...


def _open(path: Path) -> tuple[IO[bytes], bool]:
    """The file's bytes (gunzipped if gzip) and whether it was compressed.

    Raises InputError if the file cannot be opened.
    """
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if raw.read(2) == GZIP_MAGIC:
        raw.close()
        # The caller closes it (a generator streams from it), so no context manager here.
        return cast(IO[bytes], gzip.open(path, "rb")), True
    raw.seek(0)
    return raw, False


def detect_kind(path: str | Path) -> InputKind:
    """``pcap``, ``pcapng`` or ``log``, from the file's first bytes (inside gzip too).

    Raises InputError if the file cannot be read.
    """
    stream, _ = _open(Path(path))
    try:
        head = stream.read(4)
    except (OSError, EOFError, zlib.error):
        head = b""
    finally:
        stream.close()
    return capture_kind(head) or InputKind.LOG


def sessions_from(path: str | Path, stats: InputStats | None = None, *,
                  timezone: str = "UTC", year: int | None = None,
                  local_ips: Iterable[str] = ()) -> Iterator[Row]:
    """Session rows of one file (log or capture), streamed; ``stats`` is filled in as it goes.

    ``timezone``/``year``: see :class:`~research.traffic.logs.lines.Clock`. ``local_ips``: this
    server's addresses, for captures (see :func:`research.traffic.pcap.read_capture`).
    Raises InputError if the file cannot be opened or ``timezone`` is unknown.
    """
    p = Path(path)
    kind = detect_kind(p)
    stream, compressed = _open(p)
    st = stats if stats is not None else InputStats(str(p), kind)
    st.path, st.kind, st.compressed = str(p), kind, compressed
    with stream:
        if kind == InputKind.LOG:
            mtime = dt.datetime.fromtimestamp(os.stat(p).st_mtime, dt.UTC)
            yield from _log_sessions(stream, st, Clock(timezone, year, mtime))
        else:
            yield from read_capture(stream, st, local_ips=local_ips)


def _log_sessions(stream: IO[bytes], st: InputStats, clock: Clock) -> Iterator[Row]:
    parsers: dict[str, _Parser] = {}
    makers: dict[str, type[_Parser]] = {SessionSource.POSTFIX: PostfixParser,
                                        SessionSource.EXIM: EximParser,
                                        SessionSource.SENDMAIL: SendmailParser}
    number = 0
    try:
        for number, raw in enumerate(stream, 1):
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not text.strip():
                continue
            line = frame(text, clock)
            if line is None:
                st.unparseable += 1
                continue
            mta = family(line.program)
            if mta is None:
                continue  # another program's line in a shared syslog file
            parser = parsers.get(mta)
            if parser is None:
                parser = parsers[mta] = makers[mta](st.path)
            rows = parser.feed(line, number)
            if rows is None:
                st.unparseable += 1
                continue
            yield from _counted(rows, st)
    except (EOFError, OSError, zlib.error):
        # A truncated or corrupt gzip member: what was read counts, the rest is one bad line.
        st.unparseable += 1
    st.lines = number
    for parser in parsers.values():
        yield from _counted(parser.finish(), st)


def _counted(rows: list[Row], st: InputStats) -> Iterator[Row]:
    for row in rows:
        st.sessions += 1
        st.sources[row["source"]] += 1
        yield row


def read_sessions(paths: Sequence[str | Path], *, timezone: str = "UTC",
                  year: int | None = None, local_ips: Iterable[str] = ()) -> pd.DataFrame:
    """All sessions of ``paths`` as one ``sessions`` DataFrame, in memory (for small inputs
    and notebooks; :func:`write_sessions` streams to disk). Raises like :func:`sessions_from`.
    """
    rows: list[Row] = []
    for path in paths:
        rows.extend(sessions_from(path, timezone=timezone, year=year, local_ips=local_ips))
    return sessions_frame(rows)


def write_sessions(paths: Sequence[str | Path], out_dir: str | Path, *,
                   timezone: str = "UTC", year: int | None = None,
                   local_ips: Sequence[str] = (), license: str | None = None
                   ) -> dict[str, Any]:
    """Read every input, write ``out_dir/sessions.parquet``, ``meta.json`` and the Data Package
    that publishes them (``datapackage.json``, ``sessions.csv``) under ``license`` (an SPDX
    identifier or the licence's address; none by default); return the meta.

    Raises InputError (nothing written) if an input is missing or unreadable, ``timezone``
    is unknown or ``license`` is no licence; OSError if ``out_dir`` cannot be written.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise InputError("no input files")
    for f in files:
        if not f.is_file():
            raise InputError(f"{f}: no such file")
        detect_kind(f)  # fails early, before anything is written, if unreadable
    Clock(timezone)  # validates the zone name
    if license is not None:
        license_entry(license)
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    inputs: list[InputStats] = []
    with SessionWriter(out_dir) as writer:
        for f in files:
            st = InputStats(str(f), InputKind.LOG)
            inputs.append(st)
            writer.write_all(sessions_from(f, st, timezone=timezone, year=year,
                                           local_ips=local_ips))
    meta = {
        "created_at": created,
        "tool": tool_version(),
        "versions": library_versions(LOG_LIBRARIES),
        "inputs": [st.as_dict() for st in inputs],
        "options": {"timezone": timezone, "year": year, "local_ips": list(local_ips),
                    "license": license},
        "counts": {"sessions": writer.rows,
                   **{k: dict(v) for k, v in writer.counts.items()}},
    }
    write_json(Path(out_dir) / META_NAME, meta)
    write_sessions_package(Path(out_dir), meta)
    return meta


SAMPLE_LOCAL_IPS = ("127.0.0.1",)
"""The sampled Postfix listened and sent from 127.0.0.1: its captures' local address."""


def samples_dir() -> Path:
    """Small real logs and captures shipped inside the package (package data in
    ``research/traffic/samples/``; provenance in its ``README.md``)."""
    return package_path("research.traffic", "samples")


def sample_files() -> list[Path]:
    """The shipped sample logs and captures (everything in :func:`samples_dir` but README)."""
    return sorted(p for p in samples_dir().iterdir() if p.is_file() and p.suffix != ".md")


def sessions_for_notebook(target: str = "testbed", results_dir: str | Path | None = None,
                          logs: str | Path | Sequence[str | Path] | None = None, *,
                          local_ips: Sequence[str] = (), timezone: str = "UTC"
                          ) -> pd.DataFrame:
    """The sessions a notebook works on.

    ``results_dir`` holding a ``sessions.parquet`` is loaded as it is. Otherwise the inputs
    are read and written there first (``DIR/sessions.parquet`` and ``meta.json``; into
    ``DIR/sessions/`` when ``DIR`` already holds a survey's ``meta.json``; default
    ``results/my-mail-server``): the files ``logs`` names, or, for ``target="testbed"``
    without ``logs``, the shipped samples of real Postfix, Exim and Sendmail logs and a
    capture (:func:`sample_files`).

    Raises:
        InputError: ``target`` is neither ``testbed`` nor ``live``; ``target="live"`` without
            ``logs``; an input cannot be read.
    """
    if target not in ("testbed", "live"):
        raise InputError(f"target must be 'testbed' or 'live', not {target!r}")
    out = Path(results_dir) if results_dir else RESULTS_DIR / "my-mail-server"
    if (out / SESSIONS_FILE).is_file():
        return load_sessions(out)
    if (out / META_NAME).exists():
        out = out / "sessions"  # a survey lives there: keep its meta.json
        if (out / SESSIONS_FILE).is_file():
            return load_sessions(out)
    if logs is None:
        if target == "live":
            raise InputError("target 'live' needs logs: the paths of your MTA's logs or "
                             "captures")
        files: list[Path] = sample_files()
        local = list(local_ips) or list(SAMPLE_LOCAL_IPS)
    else:
        files = [Path(logs)] if isinstance(logs, str | Path) else [Path(p) for p in logs]
        local = list(local_ips)
    write_sessions(files, out, timezone=timezone, local_ips=local)
    return load_sessions(out)
