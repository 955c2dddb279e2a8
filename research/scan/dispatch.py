"""Where address probes run: local threads, or any ``concurrent.futures.Executor`` (Dask too).

One task probes one address (IP, port) for all its MX names known when it starts
(:func:`research.scan.address.probe_address`), or the names that arrived later
(:func:`research.scan.address.follow_up`), and returns its raw-log records, so a task carries
an :class:`~research.scan.address.AddressTask` (or a follow-up) and the probe settings out, and
JSON-able dicts and the address as known back. Only the process that runs the survey writes the
raw log. :class:`AddressQueue` takes tasks while it runs them: at most ``window`` in flight at
once, and at most ``per_provider_connections`` of one provider: that bounds the addresses
probed at the same time (and, with each address's and provider's own caps, the connections),
wherever the tasks run.

For a Dask cluster, pass a ``distributed.Client`` (or use ``--dask-scheduler ADDRESS``): the
tasks go to its workers through ``Client.get_executor()``. Every worker needs this package
installed and must be allowed to reach the mail servers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

from research.errors import InputError
from research.scan.address import AddressOutcome, AddressTask, AddressWork, FollowUp, run_work
from research.settings import ProbeSettings


class Queued(Protocol):
    """What waits in an :class:`AddressQueue`: the address it is for, and whose line it waits
    in (an :data:`~research.scan.address.AddressWork`, or what its ``start`` makes one of)."""

    @property
    def ip(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def provider(self) -> str: ...


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


class AddressQueue:
    """Address probes that run while more are added: at most ``window`` in flight, and at most
    ``settings.per_provider_connections`` of one provider.

    A task holds at least one connection while it runs, so more tasks of one provider than its
    connection cap would only wait on the provider's gate; they wait here instead, and the
    window goes to other providers' addresses (round the providers that have room, each
    provider's tasks in the order added). ``executor`` None runs them on ``window`` local
    threads; an Executor (or a Dask client) given by the caller is used as it is and never shut
    down. Raises InputError for an ``executor`` that is neither.

    Work is submitted only from the thread that calls :meth:`add` and :meth:`finished` (a Dask
    executor is not to be driven from its own callbacks); ``notify``, if given, is called with
    each future as it finishes, from whichever thread finishes it, so a caller with its own
    completion queue learns of it there, then hands the future to :meth:`finished`. Without
    one, :meth:`completed` waits for them.

    ``start``, if given, makes the work to run of what waited, as it starts (same address, same
    provider): what waits can then stay small while the queue is long, and what the work needs
    is loaded only for the ``window`` that runs. Without it, what is added is the work.
    """

    def __init__(self, settings: ProbeSettings, *, window: int, executor: Any = None,
                 notify: Callable[[Future[AddressOutcome]], None] | None = None,
                 start: Callable[[Queued], AddressWork] | None = None) -> None:
        self._own = executor is None
        self._pool = (ThreadPoolExecutor(max_workers=window, thread_name_prefix="address")
                      if self._own else as_executor(executor))
        self._settings = settings
        self._window = window
        self._notify = notify
        self._start = start
        self._waiting = _ProviderQueue(settings.per_provider_connections)
        self._running: dict[Future[AddressOutcome], AddressWork] = {}

    def __len__(self) -> int:
        """Tasks added and not yet handed back: waiting or running."""
        return len(self._waiting) + len(self._running)

    @property
    def running(self) -> int:
        """Tasks started and not yet handed back: at most ``window``."""
        return len(self._running)

    def running_of(self, provider: str) -> int:
        """Tasks of ``provider`` started and not yet handed back: at most its cap."""
        return self._waiting.running_of(provider)

    def add(self, work: Queued) -> None:
        """Queue ``work``; it starts at once if the window and its provider have room. Raises
        TypeError, without a ``start``, for what is no address work."""
        if self._start is None:
            _as_work(work)
        self._waiting.add(work)
        self._fill()

    def waiting(self, ip: str, port: int) -> AddressTask | None:
        """The task of (``ip``, ``port``) if it is queued and not started: it may still change
        (:meth:`replace`)."""
        return self._waiting.find(ip, port)

    def replace(self, task: AddressTask) -> None:
        """Put ``task`` in the place of the queued, not started task of the same address (more
        names, perhaps another provider: it then waits in that provider's line)."""
        self._waiting.replace(task)

    def finished(self, future: Future[AddressOutcome]) -> tuple[AddressWork, AddressOutcome]:
        """A finished future's work and outcome, with its place given to the next task.
        Re-raises what the task raised (a bug, not a server's doing)."""
        work = self._running.pop(future)
        self._waiting.finished(work.provider)
        self._fill()
        return work, future.result()

    def completed(self, timeout: float | None = None
                  ) -> Iterator[tuple[AddressWork, AddressOutcome]]:
        """Each piece of work and its outcome as it finishes, until none is left (or nothing
        finishes within ``timeout`` seconds); for callers without a loop of their own."""
        while self._running:
            done, _ = wait(list(self._running), timeout=timeout, return_when=FIRST_COMPLETED)
            if not done:
                return
            for future in done:
                yield self.finished(future)

    def close(self, *, cancel: bool = False) -> None:
        """Stop: with ``cancel``, drop what has not started and do not wait for what runs
        (whose records nobody will write); otherwise wait for the running work."""
        if cancel:
            for future in self._running:
                future.cancel()
            self._waiting.clear()
        if self._own:
            self._pool.shutdown(wait=not cancel, cancel_futures=cancel)

    def _fill(self) -> None:
        while len(self._running) < self._window:
            queued = self._waiting.next()
            if queued is None:
                return
            work = _as_work(queued) if self._start is None else self._start(queued)
            future = self._pool.submit(run_work, work, self._settings)
            self._running[future] = work
            if self._notify is not None:
                future.add_done_callback(self._notify)


def _as_work(queued: Queued) -> AddressWork:
    if not isinstance(queued, AddressTask | FollowUp):
        raise TypeError(f"not address work: {queued!r} (an AddressQueue without a start)")
    return queued


class _ProviderQueue:
    """Work waiting, handed out round the providers that have room, each provider's in order."""

    def __init__(self, per_provider: int) -> None:
        self._waiting: dict[str, deque[Queued]] = {}
        self._order: deque[str] = deque()
        self._running: dict[str, int] = {}
        self._cap = per_provider
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, work: Queued) -> None:
        if work.provider not in self._waiting:
            self._waiting[work.provider] = deque()
            self._order.append(work.provider)
        self._waiting[work.provider].append(work)
        self._count += 1

    def find(self, ip: str, port: int) -> AddressTask | None:
        for line in self._waiting.values():
            for work in line:
                if isinstance(work, AddressTask) and (work.ip, work.port) == (ip, port):
                    return work
        return None

    def replace(self, task: AddressTask) -> None:
        for provider, line in self._waiting.items():
            for i, work in enumerate(line):
                if isinstance(work, AddressTask) and (work.ip, work.port) == (task.ip, task.port):
                    if provider == task.provider:
                        line[i] = task
                    else:
                        del line[i]
                        self._count -= 1
                        self._drop_if_empty(provider)
                        self.add(task)
                    return
        raise KeyError((task.ip, task.port))

    def next(self) -> Queued | None:
        for _ in range(len(self._order)):
            provider = self._order[0]
            self._order.rotate(-1)
            if self._running.get(provider, 0) < self._cap:
                work = self._waiting[provider].popleft()
                self._count -= 1
                self._drop_if_empty(provider)
                self._running[provider] = self._running.get(provider, 0) + 1
                return work
        return None

    def running_of(self, provider: str) -> int:
        return self._running.get(provider, 0)

    def finished(self, provider: str) -> None:
        self._running[provider] -= 1
        if not self._running[provider]:
            del self._running[provider]

    def clear(self) -> None:
        self._waiting.clear()
        self._order.clear()
        self._count = 0

    def _drop_if_empty(self, provider: str) -> None:
        if not self._waiting[provider]:
            del self._waiting[provider]
            self._order.remove(provider)
