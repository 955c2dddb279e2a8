"""The address queue: tasks added while it runs, a window of tasks in flight, a cap per
provider, and a task's exception passed on — with real address probes on the testbed.

The queue starts tasks only inside :meth:`AddressQueue.add` and :meth:`AddressQueue.finished`,
on the caller's thread, so what it runs is checked exactly after each of those calls; the
servers' own counts check the connections it let be open.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from research.errors import InputError
from research.scan.address import AddressTask, AddressWork, FollowUp
from research.scan.dispatch import AddressQueue, Queued
from research.settings import ProbeSettings
from research.testbed import Testbed
from tests.support.scanning import started_testbed

pytestmark = pytest.mark.testbed

ALPHA = [f"127.0.235.{i}" for i in (1, 2, 3)]
BETA = [f"127.0.235.{i}" for i in (11, 12, 13)]
WINDOW = 3

_TLS = '''tls_min = "1.2"
tls_max = "1.3"
ciphers = "ECDHE-RSA-AES128-GCM-SHA256"
expect = { status = "starttls", versions = ["TLS 1.2", "TLS 1.3"], webpki = "ok" }'''

SCENARIO = "\n".join([
    '''[scenario]
name = "dispatch"
description = "two providers of three addresses each, an internet-like distance away"
rtt_ms = 30

[[shared_limits]]
# Never reached: it counts the connections open at once across every address.
name = "all"
addresses = ''' + repr([*ALPHA, *BETA]) + '''
count_limit = 100
''',
    *(f'''[[hosts]]
name = "mx{i}.{provider}.test"
addresses = ["{ip}"]
{_TLS}
''' for provider, ips in (("alpha", ALPHA), ("beta", BETA)) for i, ip in enumerate(ips)),
    *(f'''[[domains]]
name = "{provider}.test"
mx = {[[10, f"mx{i}.{provider}.test"] for i in range(3)]!r}
expect = {{ dns_status = "mx" }}
''' for provider in ("alpha", "beta")),
])


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    with started_testbed(tmp_path_factory.mktemp("dispatch"), "dispatch", SCENARIO) as tb:
        yield tb


def _settings(tb: Testbed, **options: object) -> ProbeSettings:
    return tb.settings(engine="versions", per_host_connections=1, timeout=5,
                       **options).probe


def _tasks(tb: Testbed, provider: str) -> list[AddressTask]:
    survey = uuid.uuid4().hex
    return [AddressTask(ip, tb.smtp_port, (name,), f"{provider}.test", survey)
            for (name, ip) in sorted(tb.stats()) if f".{provider}." in name]


def test_the_window_and_the_provider_cap_hold_while_tasks_are_added(testbed: Testbed) -> None:
    settings = _settings(testbed, per_provider_connections=2)
    queue = AddressQueue(settings, window=WINDOW)
    alpha, beta = _tasks(testbed, "alpha"), _tasks(testbed, "beta")
    before = testbed.group_stats()["all"].sessions
    seen: list[tuple[int, int, int]] = []

    def check() -> None:
        running = (queue.running, queue.running_of("alpha.test"), queue.running_of("beta.test"))
        assert running[0] <= WINDOW and running[1] <= 2 and running[2] <= 2
        seen.append(running)

    for task in alpha:
        queue.add(task)
        check()
    # Three of one provider, a cap of two: the third waits although the window has room.
    assert seen[-1] == (2, 2, 0) and len(queue) == 3
    finished = []
    sessions = 0
    for work, outcome in queue.completed():
        check()
        finished.append(work)
        sessions += outcome.records[-1]["sessions"]
        assert outcome.records[-1]["kind"] == "address_probe"
        if beta:
            # Added while the queue runs: started as soon as the window has room.
            queue.add(beta.pop(0))
            check()
    queue.close()
    assert len(finished) == 6 and not len(queue)
    assert max(r[0] for r in seen) == WINDOW
    stats = testbed.group_stats()["all"]
    # One connection per task at most (--per-host 1): never more open than the window.
    assert stats.peak_connections <= WINDOW
    assert stats.sessions - before == sessions


def test_a_follow_up_waits_its_turn_and_counts_from_the_address(testbed: Testbed) -> None:
    settings = _settings(testbed, per_provider_connections=1)
    queue = AddressQueue(settings, window=WINDOW, executor=ThreadPoolExecutor(2))
    task = _tasks(testbed, "alpha")[0]
    queue.add(task)
    ((_, outcome),) = list(queue.completed())
    other = f"other.{task.names[0]}"
    queue.add(FollowUp(outcome.known, (other,)))
    ((work, follow),) = list(queue.completed())
    assert isinstance(work, FollowUp)
    hosts = [r for r in follow.records if r["kind"] == "host"]
    assert [r["mx_host"] for r in hosts] == [other]
    last = follow.records[-1]
    # One session, for the name's certificate, on top of the address's own.
    assert last["sessions"] == outcome.records[-1]["sessions"] + 1
    assert last["mx_hosts"] == sorted([task.names[0], other])
    queue.close()


@dataclass(frozen=True)
class _Pointer:
    """What waits: an address and its provider, the task kept elsewhere."""

    ip: str
    port: int
    provider: str


def test_what_waits_becomes_work_only_as_it_starts(testbed: Testbed) -> None:
    settings = _settings(testbed, per_provider_connections=1)
    kept = {task.ip: task for task in _tasks(testbed, "alpha")}
    made: list[str] = []

    def start(queued: Queued) -> AddressWork:
        made.append(queued.ip)
        return kept[queued.ip]

    queue = AddressQueue(settings, window=WINDOW, start=start)
    for ip in sorted(kept):
        queue.add(_Pointer(ip, testbed.smtp_port, "alpha.test"))
    # A cap of one for the provider: one made, two still waiting as pointers.
    assert made == sorted(kept)[:1] and len(queue) == 3
    done = [work for work, _ in queue.completed()]
    assert made == sorted(kept) and done == [kept[ip] for ip in sorted(kept)]
    queue.close()
    # Without a start, only address work can wait.
    plain = AddressQueue(settings, window=WINDOW)
    with pytest.raises(TypeError, match="not address work"):
        plain.add(_Pointer(ALPHA[0], testbed.smtp_port, "alpha.test"))
    assert not len(plain)
    plain.close()


def test_a_task_that_raises_is_passed_on(testbed: Testbed) -> None:
    queue = AddressQueue(_settings(testbed), window=WINDOW)
    broken = AddressTask("127.0.235.1", testbed.smtp_port, (), "alpha.test", uuid.uuid4().hex)
    queue.add(broken)
    with pytest.raises(IndexError):
        list(queue.completed())
    # Its place is given back: the queue goes on with the next task.
    queue.add(_tasks(testbed, "beta")[0])
    assert len(list(queue.completed())) == 1
    queue.close()


def test_what_is_no_executor_is_refused(testbed: Testbed) -> None:
    with pytest.raises(InputError, match=r"not a concurrent\.futures\.Executor"):
        AddressQueue(_settings(testbed), window=WINDOW, executor=object())
