"""The long-running Worker, in process, over every engine."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import pytest
import tenacity

from localqueue import AttemptStore, MessageState, PersistentQueue
from localqueue.runner import Worker
from localqueue.worker import MessageOutcome, PersistentWorkerConfig

WAIT = 60.0  # generous upper bound for anything this file waits on


def no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
def config(attempt_store: AttemptStore) -> PersistentWorkerConfig:
    return PersistentWorkerConfig(store=attempt_store, max_tries=2, sleep=no_sleep)


def wait_until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_until_empty_processes_everything_with_threads(
    jobs: PersistentQueue, config: PersistentWorkerConfig
) -> None:
    jobs.put_many(range(20))
    seen: list[int] = []
    lock = threading.Lock()

    def handle(n: int) -> None:
        with lock:
            seen.append(n)
        if n == 7:
            raise ConnectionError("down")

    stats = Worker(jobs, handle, config=config, concurrency=3).run(until_empty=True)
    assert sorted(set(seen)) == list(range(20))
    assert seen.count(7) == 2
    assert (stats.acked, stats.dead_lettered) == (19, 1)
    assert jobs.stats().as_dict() == {
        "ready": 0,
        "delayed": 0,
        "inflight": 0,
        "dead": 1,
        "total": 1,
    }


def test_until_empty_processes_everything_with_async_tasks(
    jobs: PersistentQueue, attempt_store: AttemptStore
) -> None:
    jobs.put_many(range(10))
    seen: list[int] = []

    async def handle(n: int) -> int:
        await asyncio.sleep(0)
        seen.append(n)
        return n

    outcomes: list[MessageOutcome] = []
    worker = Worker(
        jobs,
        handle,
        config=PersistentWorkerConfig(store=attempt_store),
        concurrency=4,
        on_outcome=outcomes.append,
    )
    stats = worker.run(until_empty=True)
    assert sorted(seen) == list(range(10))
    assert stats.acked == 10
    assert sorted(o.result for o in outcomes) == list(range(10))
    assert jobs.stats().total == 0


def test_max_messages_and_worker_id(jobs: PersistentQueue, config: PersistentWorkerConfig) -> None:
    messages = jobs.put_many(["a", "b", "c"])
    leased_by: list[str | None] = []

    def handle(value: str) -> None:
        leased_by.append(jobs.inspect(messages[0].id).leased_by)

    stats = Worker(jobs, handle, config=config, worker_id="w-7").run(max_messages=1)
    assert stats.processed == 1
    assert leased_by == ["w-7"]
    assert jobs.stats().ready == 2


def test_stop_finishes_in_flight_messages_and_leaves_nothing_leased(
    jobs: PersistentQueue, config: PersistentWorkerConfig
) -> None:
    jobs.put_many(range(6))
    started = threading.Semaphore(0)
    release = threading.Event()

    def handle(n: int) -> None:
        started.release()
        release.wait(WAIT)

    worker = Worker(jobs, handle, config=config, concurrency=2)
    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.update(stats=worker.run()))
    runner.start()
    for _ in range(2):
        assert started.acquire(timeout=WAIT)
    worker.stop()
    release.set()
    runner.join(WAIT)
    assert not runner.is_alive()
    assert result["stats"].acked == 2
    stats = jobs.stats()
    assert (stats.inflight, stats.ready) == (0, 4)


def test_stop_during_a_retry_wait_releases_the_message(
    jobs: PersistentQueue, attempt_store: AttemptStore
) -> None:
    message = jobs.put("job")
    failed = threading.Event()

    def handle(value: str) -> None:
        failed.set()
        raise ConnectionError("down")

    config = PersistentWorkerConfig(
        store=attempt_store, max_tries=5, wait=tenacity.wait_fixed(3600)
    )
    worker = Worker(jobs, handle, config=config)
    runner = threading.Thread(target=worker.run)
    runner.start()
    assert failed.wait(WAIT)
    worker.stop()
    runner.join(WAIT)
    assert not runner.is_alive()
    released = jobs.inspect(message.id)
    assert released.state is MessageState.READY
    record = attempt_store.get_record(message.id)
    assert record is not None
    assert record.attempts == 1
    assert not record.exhausted


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_acked_outcome_counts_the_attempts_it_took(
    jobs: PersistentQueue, config: PersistentWorkerConfig, kind: str
) -> None:
    jobs.put("flaky")
    calls: list[str] = []

    def handle(value: str) -> None:
        calls.append(value)
        if len(calls) == 1:
            raise ConnectionError("down")

    async def handle_async(value: str) -> None:
        handle(value)

    worker = Worker(
        jobs,
        handle if kind == "sync" else handle_async,
        config=config if kind == "sync" else config.replace(sleep=None),
        handle_signals=False,
        keep_outcomes=True,
    )
    (outcome,) = worker.run(until_empty=True).outcomes
    assert (outcome.status, outcome.attempts) == ("acked", 2)


def test_a_slow_handler_is_not_delivered_twice_while_its_heartbeat_runs(
    jobs: PersistentQueue, attempt_store: AttemptStore
) -> None:
    jobs.put("slow")
    lease = 1.0
    calls: list[str] = []
    stolen: list[Any] = []
    handler_started = threading.Event()
    handler_done = threading.Event()

    def handle(value: str) -> None:
        calls.append(value)
        handler_started.set()
        time.sleep(lease * 3)  # three lease lengths: without heartbeats it would expire
        handler_done.set()

    def rival() -> None:
        # Another consumer polling the same store while the handler runs.
        handler_started.wait(WAIT)
        while not handler_done.is_set():
            stolen.extend(jobs.get_messages(1, lease_timeout=lease))
            time.sleep(0.05)

    config = PersistentWorkerConfig(
        store=attempt_store, lease_timeout=lease, heartbeat_interval=lease / 5
    )
    rival_thread = threading.Thread(target=rival)
    rival_thread.start()
    try:
        stats = Worker(jobs, handle, config=config).run(until_empty=True)
    finally:
        handler_done.set()
        rival_thread.join(WAIT)
    assert calls == ["slow"]
    assert stolen == []
    assert stats.acked == 1
    assert jobs.stats().total == 0


def test_bad_arguments_are_rejected(jobs: PersistentQueue) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        Worker(jobs, print, concurrency=0)
    with pytest.raises(ValueError, match="max_messages"):
        Worker(jobs, print, handle_signals=False).run(max_messages=0)


class CountingAttemptStore:
    """Wraps an attempt store and counts its writes (the layer above is what is tested)."""

    def __init__(self, inner: AttemptStore) -> None:
        self.inner = inner
        self.writes: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name in ("begin_attempt", "record_failure", "reset"):

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.writes.append(name)
                return attribute(*args, **kwargs)

            return counted
        return attribute


def test_first_try_successes_write_no_retry_state(
    jobs: PersistentQueue, attempt_store: AttemptStore
) -> None:
    counting = CountingAttemptStore(attempt_store)
    jobs.put_many(range(50))
    config = PersistentWorkerConfig(store=counting, max_tries=3, sleep=no_sleep)  # type: ignore[arg-type]
    stats = Worker(jobs, lambda n: n, config=config, handle_signals=False).run(until_empty=True)
    assert stats.acked == 50
    assert counting.writes == []
    assert jobs.stats().total == 0


def test_fast_handlers_are_leased_and_acked_in_batches_yet_each_runs_once(
    jobs: PersistentQueue, config: PersistentWorkerConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs.put_many(range(500))
    seen: list[int] = []
    lock = threading.Lock()
    store_calls: Counter[str] = Counter()
    for name in ("lease", "ack", "ack_many"):
        original = getattr(jobs.store, name)

        def counted(*args: Any, _name: str = name, _call: Any = original, **kwargs: Any) -> Any:
            store_calls[_name] += 1
            return _call(*args, **kwargs)

        monkeypatch.setattr(jobs.store, name, counted)

    def handle(n: int) -> int:
        with lock:
            seen.append(n)
        return n

    worker = Worker(jobs, handle, config=config, concurrency=3, keep_outcomes=True)
    stats = worker.run(until_empty=True)
    assert sorted(seen) == list(range(500))
    assert stats.acked == 500
    assert sorted(o.result for o in stats.outcomes) == list(range(500))
    assert jobs.stats().total == 0
    # Batches, not one store call per message: few leases, and acks only in bulk.
    assert store_calls["ack"] == 0
    assert store_calls["lease"] < 100
    assert store_calls["ack_many"] < 100


def test_max_messages_bounds_a_batched_run(
    jobs: PersistentQueue, config: PersistentWorkerConfig
) -> None:
    jobs.put_many(range(300))
    stats = Worker(jobs, lambda n: n, config=config).run(until_empty=True, max_messages=120)
    assert stats.acked == 120
    assert jobs.stats().as_dict()["ready"] == 180


def test_a_buffered_message_whose_lease_ran_short_is_renewed_or_left_to_its_taker(
    jobs: PersistentQueue, config: PersistentWorkerConfig
) -> None:
    # Fast handlers grow the lease batch; then one turns slow for longer than the
    # lease, so the rest of its batch expires in the buffer and a rival takes it.
    # Started anyway, those messages would run twice.
    lease = 0.6
    jobs.put_many(range(40))
    calls: list[int] = []
    taken: list[int] = []
    slow_started = threading.Event()
    slow_done = threading.Event()

    def handle(n: int) -> None:
        calls.append(n)
        if len(calls) == 10:
            slow_started.set()
            time.sleep(lease * 1.5)
            slow_done.set()

    def rival() -> None:
        slow_started.wait(WAIT)
        while not slow_done.is_set():
            for message in jobs.get_messages(100, lease_timeout=WAIT):
                taken.append(message.value)
                jobs.ack(message)
            time.sleep(0.02)

    rival_thread = threading.Thread(target=rival)
    rival_thread.start()
    worker = Worker(
        jobs,
        handle,
        config=config.replace(lease_timeout=lease, heartbeat_interval=lease / 5),
        handle_signals=False,
    )
    try:
        stats = worker.run(until_empty=True)
    finally:
        slow_done.set()
        rival_thread.join(WAIT)
    assert taken, "the rival should have taken the expired buffered messages"
    assert set(calls).isdisjoint(taken)
    assert sorted(calls + taken) == list(range(40))
    assert (stats.acked, stats.lease_lost) == (len(calls), 0)
    assert jobs.stats().total == 0


def test_a_buffered_message_renewed_after_a_slow_handler_keeps_its_whole_budget(
    jobs: PersistentQueue, config: PersistentWorkerConfig
) -> None:
    # With max_tries=1 a delivery charged without running would dead-letter the
    # message unrun: the batch behind the slow handler must run each message once.
    lease = 0.6
    jobs.put_many(range(40))
    calls: list[int] = []

    def handle(n: int) -> None:
        calls.append(n)
        if len(calls) == 10:
            time.sleep(lease / 2)  # past a third of the buffered messages' leases

    worker = Worker(
        jobs,
        handle,
        config=config.replace(max_tries=1, lease_timeout=lease, heartbeat_interval=lease / 5),
        handle_signals=False,
    )
    stats = worker.run(until_empty=True)
    assert sorted(calls) == list(range(40))
    assert (stats.acked, stats.dead_lettered) == (40, 0)
    assert jobs.stats().total == 0
