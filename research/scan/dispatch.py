"""Where host probes run: local threads, or any ``concurrent.futures.Executor`` (Dask too).

One task probes one (MX host, IP) target from start to end
(:func:`research.scan.target.survey_target`) and returns its raw-log record, so a task carries a
target and the probe settings out and one JSON-able dict back. Only the process that runs the survey
writes the raw log. At most ``window`` tasks are in flight at once: that bounds the hosts probed at
the same time (and, with each host's own cap, the connections), and keeps the survey's memory
independent of the length of the list.

For a Dask cluster, pass a ``distributed.Client`` (or use ``--dask-scheduler ADDRESS``): the
tasks go to its workers through ``Client.get_executor()``. Every worker needs this package
installed and must be allowed to reach the mail servers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from typing import Any

from research.errors import InputError
from research.scan.engine import TlsTarget
from research.scan.target import survey_target
from research.settings import ProbeSettings
from research.store.records import Record


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


def run_targets(targets: Iterable[TlsTarget], settings: ProbeSettings, *, window: int,
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
