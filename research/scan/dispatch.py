"""Where address probes run: local threads, or any ``concurrent.futures.Executor`` (Dask too).

One task probes one address (IP, port) for all its MX names from start to end
(:func:`research.scan.address.survey_address`) and returns its raw-log records, so a task
carries an :class:`~research.scan.address.AddressTask` and the probe settings out and JSON-able
dicts back. Only the process that runs the survey writes the raw log. At most ``window`` tasks
are in flight at once, and at most ``per_provider_connections`` of one provider: that bounds the
addresses probed at the same time (and, with each address's and provider's own caps, the
connections), wherever the tasks run.

For a Dask cluster, pass a ``distributed.Client`` (or use ``--dask-scheduler ADDRESS``): the
tasks go to its workers through ``Client.get_executor()``. Every worker needs this package
installed and must be allowed to reach the mail servers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from typing import Any

from research.errors import InputError
from research.scan.address import AddressTask, survey_address
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


def run_addresses(tasks: Iterable[AddressTask], settings: ProbeSettings, *, window: int,
                  executor: Any = None) -> Iterator[list[Record]]:
    """Probe every address, at most ``window`` at once and at most
    ``settings.per_provider_connections`` of one provider at once, yielding each address's
    records as it finishes.

    A task holds at least one connection while it runs, so more tasks of one provider than its
    connection cap would only wait on the provider's gate; they wait here instead, and the
    window goes to other providers' addresses. ``executor`` None runs the tasks on ``window``
    local threads; an Executor (or a Dask client) given by the caller is used as it is and not
    shut down. Raises InputError for an ``executor`` that is neither; re-raises what a task
    raised (a bug, not a server's doing).
    """
    own = executor is None
    pool = ThreadPoolExecutor(max_workers=window, thread_name_prefix="address") if own else (
        as_executor(executor))
    queue = _ProviderQueue(tasks, settings.per_provider_connections)
    pending: dict[Future[list[Record]], str] = {}

    def fill() -> None:
        while len(pending) < window:
            task = queue.next()
            if task is None:
                return
            pending[pool.submit(survey_address, task, settings)] = task.provider

    try:
        fill()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                queue.finished(pending.pop(future))
            fill()
            for future in done:
                yield future.result()
    except BaseException:
        # Interrupted (or the consumer stopped): drop what has not started and do not wait for
        # the addresses being probed, whose records nobody will write.
        for future in pending:
            future.cancel()
        if own:
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    if own:
        pool.shutdown()


class _ProviderQueue:
    """Tasks in their order, handed out round the providers that have room."""

    def __init__(self, tasks: Iterable[AddressTask], per_provider: int) -> None:
        self._waiting: dict[str, deque[AddressTask]] = {}
        for task in tasks:
            self._waiting.setdefault(task.provider, deque()).append(task)
        self._order: deque[str] = deque(self._waiting)
        self._running: dict[str, int] = {}
        self._cap = per_provider

    def next(self) -> AddressTask | None:
        for _ in range(len(self._order)):
            provider = self._order[0]
            self._order.rotate(-1)
            if self._running.get(provider, 0) < self._cap:
                waiting = self._waiting[provider]
                task = waiting.popleft()
                if not waiting:
                    del self._waiting[provider]
                    self._order.remove(provider)
                self._running[provider] = self._running.get(provider, 0) + 1
                return task
        return None

    def finished(self, provider: str) -> None:
        self._running[provider] -= 1
