"""Worker resilience: store errors never stop ``Worker.run()`` unless they are meant to.

Most tests run over a wrapper around the memory store that raises chosen store
errors on chosen calls (a real engine underneath, the failures planted above
it); one runs a real SQLite file through its own fault hook.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from localqueue import PersistentQueue
from localqueue._models import QueueMessage, RetryRecord
from localqueue.errors import (
    QueueStoreLockedError,
    SchemaVersionError,
    StoreClosedError,
    StoreCorruptedError,
    StoreError,
    ValidationError,
)
from localqueue.protocols import Fault, FaultKind
from localqueue.registry import open_queue_store
from localqueue.runner import BACKOFF_CAP, BACKOFF_FIRST, Worker, backoff_delay
from localqueue.stores.memory import MemoryAttemptStore, MemoryQueueStore
from localqueue.worker import PersistentWorkerConfig, persistent_worker

WAIT = 60.0  # generous bound on anything a test waits for


def no_sleep(seconds: float) -> None:
    return None


@dataclass
class Rule:
    """Raise ``error()`` from ``method`` calls (about ``message_id``, if given)."""

    method: str
    error: Callable[[], Exception]
    message_id: str | None = None
    times: int | None = None  # None: until removed
    rate: float = 1.0  # the share of matching calls that fail (seeded, so reproducible)
    rng: random.Random = field(default_factory=lambda: random.Random(19))

    def hits(self, method: str, ids: Sequence[str]) -> bool:
        if method != self.method or self.times == 0:
            return False
        if self.message_id is not None and self.message_id not in ids:
            return False
        if self.rate < 1.0 and self.rng.random() >= self.rate:
            return False
        if self.times is not None:
            self.times -= 1
        return True


class Clock:
    """A settable clock for the memory store, so tests expire leases at once."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class FlakyStore:
    """A :class:`MemoryQueueStore` whose chosen calls raise chosen store errors.

    Every call is timed in :attr:`calls` (method, monotonic time, whether it raised).
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.inner = MemoryQueueStore(clock=clock)
        self.capabilities = self.inner.capabilities
        self.rules: list[Rule] = []
        self.calls: list[tuple[str, float, bool]] = []
        self._lock = threading.Lock()

    def fail(self, method: str, error: Callable[[], Exception], **options: Any) -> Rule:
        rule = Rule(method, error, **options)
        with self._lock:
            self.rules.append(rule)
        return rule

    def heal(self) -> None:
        with self._lock:
            self.rules.clear()

    def _call(self, method: str, ids: Sequence[str], *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            rule = next((r for r in self.rules if r.hits(method, ids)), None)
            self.calls.append((method, time.monotonic(), rule is not None))
        if rule is not None:
            raise rule.error()
        return getattr(self.inner, method)(*args, **kwargs)

    def lease(self, queue: str, **kwargs: Any) -> list[QueueMessage]:
        result: list[QueueMessage] = self._call("lease", (), queue, **kwargs)
        return result

    def ack(self, queue: str, message_id: str, **kwargs: Any) -> bool:
        return bool(self._call("ack", (message_id,), queue, message_id, **kwargs))

    def ack_many(self, queue: str, leases: Sequence[tuple[str, str | None]]) -> int:
        return int(self._call("ack_many", [m for m, _ in leases], queue, leases))

    def release(self, queue: str, message_id: str, **kwargs: Any) -> bool:
        return bool(self._call("release", (message_id,), queue, message_id, **kwargs))

    def dead_letter(self, queue: str, message_id: str, **kwargs: Any) -> bool:
        return bool(self._call("dead_letter", (message_id,), queue, message_id, **kwargs))

    def extend(self, queue: str, message_id: str, **kwargs: Any) -> bool:
        return bool(self._call("extend", (message_id,), queue, message_id, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def failing_lease_times(self) -> list[float]:
        return [at for method, at, failed in self.calls if method == "lease" and failed]


class FlakyAttempts(MemoryAttemptStore):
    """A memory attempt store whose ``record_failure`` fails while :attr:`down` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = threading.Event()

    def record_failure(
        self, key: str, error: str | None, *, exhausted: bool = False
    ) -> RetryRecord | None:
        if self.down.is_set():
            raise StoreError("attempt store: connection to the server lost")
        return super().record_failure(key, error, exhausted=exhausted)


def lost_connection() -> Exception:
    return StoreError("connection to the server lost")


def quick(worker: Worker, first: float = 0.01, cap: float = 0.08) -> Worker:
    """The worker with a short back-off, so a test sees many failures in little time."""
    worker.backoff_first = first
    worker.backoff_cap = cap
    return worker


def run_in_thread(worker: Worker, **options: Any) -> Callable[[], Any]:
    """Start ``worker.run(**options)`` in a thread; returns a join that gives its result."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["stats"] = worker.run(**options)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def join() -> Any:
        thread.join(WAIT)
        assert not thread.is_alive(), "the worker did not return"
        if "error" in box:
            raise box["error"]
        return box["stats"]

    return join


def runner_warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "localqueue.runner" and r.levelno == logging.WARNING and text in r.message
    ]


# -- back-off -----------------------------------------------------------------


def test_backoff_doubles_from_the_first_pause_up_to_the_cap_with_jitter() -> None:
    low = [backoff_delay(n, rng=lambda: 0.0) for n in range(1, 12)]
    high = [backoff_delay(n, rng=lambda: 1.0) for n in range(1, 12)]
    assert high[0] == BACKOFF_FIRST
    assert low[0] == BACKOFF_FIRST / 2
    assert high[1] == 2 * BACKOFF_FIRST
    assert high[2] == 4 * BACKOFF_FIRST
    assert max(high) == BACKOFF_CAP
    assert high[-1] == BACKOFF_CAP
    assert low[-1] == BACKOFF_CAP / 2  # jitter never goes below half the ceiling
    assert all(a <= b for a, b in itertools.pairwise(high))
    # Huge streaks neither overflow nor pass the cap.
    assert backoff_delay(10**9) <= BACKOFF_CAP


def test_lease_failures_are_retried_with_bounded_backoff_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    jobs = PersistentQueue("jobs", store)
    jobs.put_many(range(10))
    store.fail("lease", lost_connection, times=8)
    seen: list[int] = []
    worker = quick(
        Worker(jobs, seen.append, config=PersistentWorkerConfig(store=MemoryAttemptStore()))
    )
    with caplog.at_level(logging.INFO, logger="localqueue.runner"):
        stats = worker.run(until_empty=True)
    assert sorted(seen) == list(range(10))
    assert stats.acked == 10
    failed_at = store.failing_lease_times()
    assert len(failed_at) == 8
    gaps = [b - a for a, b in itertools.pairwise(failed_at)]
    for n, gap in enumerate(gaps, start=1):
        # At least half the n-th ceiling (the jitter's floor) and never much past the cap.
        assert gap >= min(0.08, 0.01 * 2 ** (n - 1)) / 2 * 0.9, gaps
        assert gap <= 0.08 + 1.0, gaps
    assert len(runner_warnings(caplog, "store failed while leasing")) == 1
    assert any("store is back after 8 failures" in r.message for r in caplog.records)


def test_a_success_resets_the_backoff_and_a_new_outage_is_logged_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore()
    jobs = PersistentQueue("jobs", store)
    jobs.put_many(range(3))
    store.fail("lease", lost_connection, times=6)
    handled = threading.Event()

    def handle(n: int) -> None:
        if n == 0:
            store.fail("lease", lost_connection, times=2)  # a second, short outage
            handled.set()

    worker = quick(
        Worker(jobs, handle, config=PersistentWorkerConfig(store=MemoryAttemptStore())),
        first=0.02,
        cap=0.32,
    )
    with caplog.at_level(logging.INFO, logger="localqueue.runner"):
        stats = worker.run(until_empty=True)
    assert handled.is_set()
    assert stats.acked == 3
    failed_at = store.failing_lease_times()
    assert len(failed_at) == 8
    end_of_first = failed_at[5] - failed_at[4]  # the 5th pause: a ceiling of 0.32, at least 0.16
    second_streak_first = failed_at[7] - failed_at[6]  # the 1st pause again: at most 0.02
    assert second_streak_first < end_of_first
    assert len(runner_warnings(caplog, "store failed while leasing")) == 2


# -- one message's errors skip that message -----------------------------------


def test_a_message_whose_ack_fails_as_damaged_is_skipped_and_the_rest_are_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    store = FlakyStore(clock)
    jobs = PersistentQueue("jobs", store, lease_timeout=30.0)
    messages = jobs.put_many(range(30))
    bad = messages[12].id
    store.fail("ack_many", lambda: StoreCorruptedError("record damaged"), message_id=bad)
    store.fail("ack", lambda: StoreCorruptedError("record damaged"), message_id=bad)
    calls: Counter[int] = Counter()
    config = PersistentWorkerConfig(store=MemoryAttemptStore())
    with caplog.at_level(logging.WARNING, logger="localqueue.worker"):
        stats = Worker(jobs, lambda n: calls.update([n]), config=config).run(until_empty=True)
    assert (stats.acked, stats.skipped) == (29, 1)
    assert set(calls) == set(range(30))
    skipped = [r for r in caplog.records if getattr(r, "message_id", None) == bad]
    assert skipped
    assert getattr(skipped[0], "reason", None) == "StoreCorruptedError"
    assert bad in skipped[0].getMessage()
    # Nothing lost: the skipped message is still leased, and comes back once its lease expires.
    assert jobs.inspect(bad).state.value == "inflight"
    store.heal()
    clock.now += 31
    again = Worker(jobs, lambda n: calls.update([n]), config=config).run(until_empty=True)
    assert again.acked == 1
    assert calls[12] == 2
    assert jobs.stats().total == 0


def test_a_failed_message_whose_dead_letter_fails_is_dead_lettered_on_redelivery() -> None:
    clock = Clock()
    store = FlakyStore(clock)
    jobs = PersistentQueue("jobs", store, lease_timeout=30.0)
    messages = jobs.put_many(range(5))
    bad = messages[2].id
    store.fail("dead_letter", lambda: StoreCorruptedError("record damaged"), message_id=bad)
    calls: Counter[int] = Counter()

    def handle(n: int) -> None:
        calls.update([n])
        if n == 2:
            raise ValueError("bad input")

    config = PersistentWorkerConfig(store=MemoryAttemptStore(), max_tries=2, sleep=no_sleep)
    stats = Worker(jobs, handle, config=config).run(until_empty=True)
    assert (stats.acked, stats.skipped, stats.dead_lettered) == (4, 1, 0)
    store.heal()
    clock.now += 31
    again = Worker(jobs, handle, config=config).run(until_empty=True)
    # The spent budget was recorded before the dead letter failed: no third run.
    assert again.dead_lettered == 1
    assert calls[2] == 2
    (dead,) = jobs.dead_letters()
    assert dead.id == bad
    assert "ValueError: bad input" in (dead.last_error or "")


def test_an_error_text_the_store_refuses_is_recorded_escaped() -> None:
    store = FlakyStore()
    jobs = PersistentQueue("jobs", store)
    (message,) = jobs.put_many([1])
    store.fail(
        "dead_letter", lambda: ValidationError("error text refused"), message_id=message.id, times=1
    )

    def handle(n: int) -> None:
        raise ValueError("caf\u00e9 \x00 broke")

    config = PersistentWorkerConfig(store=MemoryAttemptStore(), max_tries=1)
    stats = Worker(jobs, handle, config=config).run(until_empty=True)
    assert stats.dead_lettered == 1
    (dead,) = jobs.dead_letters()
    assert dead.last_error == "ValueError: caf\\xe9 \\x00 broke"


def test_an_attempt_store_failure_skips_the_message_instead_of_dead_lettering_it() -> None:
    clock = Clock()
    store = FlakyStore(clock)
    jobs = PersistentQueue("jobs", store, lease_timeout=30.0)
    jobs.put_many(range(4))
    attempts = FlakyAttempts()
    calls: Counter[int] = Counter()

    def handle(n: int) -> None:
        calls.update([n])
        if n == 1 and calls[1] == 1:
            attempts.down.set()  # the failure cannot be recorded
            raise ConnectionError("downstream timeout")

    config = PersistentWorkerConfig(store=attempts, max_tries=3, sleep=no_sleep)
    worker = quick(Worker(jobs, handle, config=config))
    stats = worker.run(until_empty=True)
    attempts.down.clear()
    assert (stats.skipped, stats.dead_lettered) == (1, 0)
    assert jobs.dead_letters() == []
    clock.now += 31
    again = Worker(jobs, handle, config=config).run(until_empty=True)
    assert calls[1] == 2
    assert jobs.stats().total == 0
    assert stats.acked + again.acked == 4


def test_single_message_decorators_raise_store_errors_and_leave_the_message_leased() -> None:
    store = FlakyStore()
    jobs = PersistentQueue("jobs", store)
    first, second = jobs.put_many([1, 2])
    attempts = FlakyAttempts()

    @persistent_worker(jobs, store=attempts, max_tries=1)
    def handle(n: int) -> None:
        if n == 1:
            attempts.down.set()
            raise ConnectionError("downstream timeout")

    with pytest.raises(StoreError, match="attempt store"):
        handle()
    attempts.down.clear()
    assert jobs.dead_letters() == []  # the attempt store's failure is not the message's
    assert jobs.inspect(first.id).state.value == "inflight"
    store.fail("ack", lost_connection, message_id=second.id)
    with pytest.raises(StoreError, match="connection to the server lost"):
        handle()  # a success whose ack failed is not reported as done
    assert jobs.inspect(second.id).state.value == "inflight"


def test_async_worker_survives_lease_and_settlement_failures() -> None:
    clock = Clock()
    store = FlakyStore(clock)
    jobs = PersistentQueue("jobs", store, lease_timeout=30.0)
    messages = jobs.put_many(range(6))
    store.fail("lease", lost_connection, times=5)
    store.fail("ack", lambda: StoreCorruptedError("record damaged"), message_id=messages[3].id)
    seen: list[int] = []

    async def handle(n: int) -> None:
        await asyncio.sleep(0)
        seen.append(n)

    config = PersistentWorkerConfig(store=MemoryAttemptStore())
    stats = quick(Worker(jobs, handle, config=config, concurrency=2)).run(until_empty=True)
    assert sorted(seen) == list(range(6))
    assert (stats.acked, stats.skipped) == (5, 1)
    assert len(store.failing_lease_times()) == 5


def test_acks_cut_off_by_dropped_connections_are_retried_not_lost() -> None:
    store = FlakyStore()
    jobs = PersistentQueue("jobs", store)
    jobs.put_many(range(50))
    # Three ack calls in a row lose their connection.
    store.fail("ack_many", lost_connection, times=3)
    calls: Counter[int] = Counter()
    config = PersistentWorkerConfig(store=MemoryAttemptStore())
    stats = quick(Worker(jobs, lambda n: calls.update([n]), config=config, concurrency=3)).run(
        until_empty=True
    )
    assert stats.acked == 50
    assert stats.skipped == 0
    assert all(count == 1 for count in calls.values())
    assert len(calls) == 50
    assert jobs.stats().total == 0


@pytest.mark.parametrize(("slow", "skipped"), [(0.5, 0), (1.3, 1)], ids=["lease-holds", "expired"])
def test_a_buffered_message_whose_renewal_fails_runs_while_its_lease_holds(
    slow: float, skipped: int
) -> None:
    store = FlakyStore()
    jobs = PersistentQueue("jobs", store, lease_timeout=1.0)
    messages = jobs.put_many(range(20))
    # Message 6 waits in a lease batch behind a slow message 5, so its lease runs short.
    store.fail("extend", lost_connection, message_id=messages[6].id)
    calls: Counter[int] = Counter()

    def handle(n: int) -> None:
        calls.update([n])
        if n == 5:
            time.sleep(slow)

    config = PersistentWorkerConfig(store=MemoryAttemptStore())
    stats = Worker(jobs, handle, config=config).run(until_empty=True)
    assert set(calls) == set(range(20))
    assert stats.skipped == skipped
    assert stats.acked + stats.skipped >= 20
    if not skipped:
        assert calls[6] == 1
        assert jobs.stats().total == 0


@pytest.mark.parametrize("rate", [0.2, 0.6])
def test_connections_dropped_at_any_rate_lose_and_double_ack_nothing(rate: float) -> None:
    clock = Clock()
    store = FlakyStore(clock)
    jobs = PersistentQueue("jobs", store, lease_timeout=30.0)
    jobs.put_many(range(200))
    for method in ("lease", "ack_many", "ack", "extend", "dead_letter", "release"):
        store.fail(method, lost_connection, rate=rate)
    calls: Counter[int] = Counter()
    lock = threading.Lock()

    def handle(n: int) -> None:
        with lock:
            calls.update([n])
        if n % 10 == 0:
            raise ValueError("bad input")

    config = PersistentWorkerConfig(store=MemoryAttemptStore(), max_tries=1)
    acked = dead = 0
    for _ in range(20):  # each round ends once nothing is available; skipped ones come back
        worker = quick(Worker(jobs, handle, config=config, concurrency=3), cap=0.02)
        stats = worker.run(until_empty=True)
        acked += stats.acked
        dead += stats.dead_lettered
        if jobs.stats().total == jobs.stats().dead:
            break
        clock.now += 31  # expire the leases of skipped messages
    assert set(calls) == set(range(200))
    assert (acked, dead) == (180, 20)
    assert jobs.stats().dead == 20
    assert jobs.stats().total == 20


# -- exit conditions ----------------------------------------------------------


@pytest.mark.parametrize(
    "fatal",
    [
        lambda: StoreClosedError("the store is closed"),
        lambda: SchemaVersionError(99, 1),
    ],
    ids=["closed", "newer-schema"],
)
def test_only_errors_that_cannot_recover_end_the_run(fatal: Callable[[], Exception]) -> None:
    store = FlakyStore()
    jobs = PersistentQueue("jobs", store)
    jobs.put_many(range(3))
    store.fail("lease", lost_connection, times=2)
    store.fail("lease", lambda: QueueStoreLockedError("locked"), times=2)
    store.fail("lease", lambda: StoreCorruptedError("record damaged"), times=2)
    store.fail("lease", fatal, times=1)
    worker = quick(Worker(jobs, lambda n: None, config=PersistentWorkerConfig()))
    expected = type(fatal())
    with pytest.raises(expected):
        worker.run(until_empty=True)
    assert len(store.failing_lease_times()) == 7
    assert jobs.stats().ready == 3  # nothing was taken and left behind


def test_a_worker_in_an_outage_keeps_trying_until_stopped() -> None:
    store = FlakyStore()
    jobs = PersistentQueue("jobs", store)
    jobs.put(1)
    store.fail("lease", lost_connection)  # for good
    worker = quick(Worker(jobs, lambda n: None, config=PersistentWorkerConfig()), cap=0.05)
    join = run_in_thread(worker, until_empty=True)
    deadline = time.monotonic() + WAIT
    while len(store.failing_lease_times()) < 10:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    worker.stop()
    stats = join()
    assert stats.processed == 0
    assert jobs.stats().ready == 1


# -- a real engine --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["locked", "engine_error"])
def test_a_sqlite_worker_drains_everything_after_the_store_fails_for_a_while(
    tmp_path: Path, kind: FaultKind
) -> None:
    store = open_queue_store(f"sqlite:///{tmp_path}/jobs.sqlite3")
    try:
        jobs = PersistentQueue("jobs", store, lease_timeout=30.0)
        jobs.put_many(range(40))
        active, ended = threading.Event(), threading.Event()

        def fail_for_a_while() -> None:
            with store.inject_fault(Fault(kind, timeout=0.1)):  # type: ignore[attr-defined]
                active.set()
                time.sleep(1.0)
            ended.set()

        calls: Counter[int] = Counter()

        def handle(n: int) -> None:
            calls.update([n])
            if n == 10:
                # The fault starts as this message finishes: its ack, and the
                # leases after it, meet the failing store.
                threading.Thread(target=fail_for_a_while, daemon=True).start()
                assert active.wait(WAIT)

        config = PersistentWorkerConfig(store=MemoryAttemptStore())
        worker = quick(Worker(jobs, handle, config=config, concurrency=2), cap=0.2)
        stats = worker.run(until_empty=True)
        assert ended.wait(WAIT)
        assert stats.acked + stats.lease_lost == 40
        assert stats.skipped == 0
        assert set(calls) == set(range(40))
        assert calls[10] == 1
        assert jobs.stats().total == 0
    finally:
        store.close()
