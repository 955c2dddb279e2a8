"""Where host probes run: local threads, or any ``concurrent.futures.Executor`` (Dask too).

One task probes one (MX host, IP) target from start to end — the SMTP probe, then the TLS
engine — and returns its raw-log record, so a task carries a target and a few settings out and
one JSON-able dict back. Only the process that runs the survey writes the raw log. At most
``window`` tasks are in flight at once: that bounds the hosts probed at the same time (and, with
each host's own cap, the connections), and keeps the survey's memory independent of the
length of the list.

For a Dask cluster, pass a ``distributed.Client`` (or use ``--dask-scheduler ADDRESS``): the
tasks go to its workers through ``Client.get_executor()``. Every worker needs this package
installed and must be allowed to reach the mail servers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from functools import cache
from typing import Any

from research.errors import InputError
from research.policy.pki import CertTrust, load_trust
from research.scan.engine import EngineSettings, scan_host
from research.scan.smtp import probe_smtp
from research.scan.sslyze import TlsTarget
from research.store.rawlog import Record


def survey_target(target: TlsTarget, settings: EngineSettings) -> Record:
    """Probe one target (SMTP, then TLS if STARTTLS was accepted) and return its host record.

    Runs wherever the executor puts it. Never raises for what the server does.
    """
    from research.scan.survey import host_record  # the survey imports this module

    trust = _trust(settings.trust_ca)
    probe = probe_smtp(target.mx_host, target.ip, port=settings.port,
                       ehlo_name=settings.ehlo_name, timeout=settings.timeout)
    if not probe.starttls_accepted:
        return host_record(probe, None, trust=trust)
    scan = scan_host(target, settings)
    record = host_record(probe, scan, trust=trust)
    record["undecided"] = scan.undecided
    # The client's own count; the testbed's server-side counts are what benchmarks report.
    record["tls_sessions"] = scan.sessions
    return record


_trust_lock = threading.Lock()


@cache
def _load_trust(trust_ca: str | None) -> CertTrust:
    return load_trust(trust_ca)


def _trust(trust_ca: str | None) -> CertTrust:
    """The roots certificates are judged against, loaded once per process (workers too)."""
    with _trust_lock:
        return _load_trust(trust_ca)


def as_executor(executor: Any) -> Executor:
    """``executor`` as a ``concurrent.futures.Executor``: a Dask ``Client`` becomes its
    ``get_executor()``; an Executor is returned as it is.

    Raises InputError for anything else.
    """
    if isinstance(executor, Executor):
        return executor
    get_executor = getattr(executor, "get_executor", None)
    if callable(get_executor):
        found = get_executor()
        if isinstance(found, Executor):
            return found
    raise InputError(f"not a concurrent.futures.Executor or Dask client: {executor!r}")


def describe(executor: Any) -> str:
    """A short description of where tasks run, for ``meta.json``."""
    if executor is None:
        return "threads"
    scheduler = getattr(getattr(executor, "scheduler", None), "address", None)
    if scheduler is None:
        scheduler = getattr(getattr(getattr(executor, "_client", None), "scheduler", None),
                            "address", None)
    if scheduler is not None:
        return f"dask {scheduler}"
    return type(executor).__name__


def run_targets(targets: Iterable[TlsTarget], settings: EngineSettings, *, window: int,
                executor: Any = None) -> Iterator[Record]:
    """Probe every target, at most ``window`` at once, yielding records as they finish.

    ``executor`` None runs the tasks on ``window`` local threads; an Executor (or a Dask
    client) given by the caller is used as it is and not shut down. Raises InputError for an
    ``executor`` that is neither; re-raises what a task raised (a bug, not a server's doing).
    """
    own = executor is None
    pool = ThreadPoolExecutor(max_workers=window, thread_name_prefix="host") if own else (
        as_executor(executor))
    todo = iter(targets)
    pending: set[Future[Record]] = set()
    try:
        for target in todo:
            pending.add(pool.submit(survey_target, target, settings))
            if len(pending) >= window:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                nxt = next(todo, None)
                if nxt is not None:
                    pending.add(pool.submit(survey_target, nxt, settings))
                yield future.result()
    except BaseException:
        # Interrupted (or the consumer stopped): drop what has not started and do not wait for
        # the hosts being probed, whose records nobody will write.
        for future in pending:
            future.cancel()
        if own:
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    if own:
        pool.shutdown()
