"""persistent_worker / persistent_async_worker over every engine."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import tenacity
from tenacity import retry_if_exception_type

from localqueue import (
    AttemptStore,
    Empty,
    MessageDecodeError,
    MessageState,
    PersistentQueue,
)
from localqueue.worker import PersistentWorkerConfig, persistent_async_worker, persistent_worker


class Crash(BaseException):
    """Stands in for the process dying mid-handler."""


def no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
def queue(jobs: PersistentQueue) -> PersistentQueue:
    return jobs


@pytest.fixture
def config(attempt_store: AttemptStore) -> PersistentWorkerConfig:
    return PersistentWorkerConfig(store=attempt_store, max_tries=3, sleep=no_sleep)


def test_success_acks_and_passes_the_value_and_extra_arguments(
    queue: PersistentQueue, config: PersistentWorkerConfig
) -> None:
    queue.put({"to": "a@example.com"})

    @persistent_worker(queue, config=config)
    def send(job: dict[str, str], greeting: str) -> str:
        return f"{greeting} {job['to']}"

    assert send("hi") == "hi a@example.com"
    assert queue.stats().total == 0


def test_an_empty_queue_raises_empty(
    queue: PersistentQueue, config: PersistentWorkerConfig
) -> None:
    @persistent_worker(queue, config=config)
    def handle(value: Any) -> None: ...

    with pytest.raises(Empty):
        handle()


def test_final_failure_dead_letters_with_the_error(
    queue: PersistentQueue, config: PersistentWorkerConfig, attempt_store: AttemptStore
) -> None:
    message = queue.put("job")
    calls: list[str] = []

    @persistent_worker(queue, config=config)
    def handle(value: str) -> None:
        calls.append(value)
        raise ConnectionError("smtp down")

    with pytest.raises(ConnectionError):
        handle()
    assert calls == ["job"] * 3
    dead = queue.inspect(message.id)
    assert dead.state is MessageState.DEAD
    assert dead.last_error == "ConnectionError: smtp down"
    assert dead.failed_at is not None
    record = attempt_store.get_record(message.id)
    assert record is not None
    assert record.exhausted


def test_tenacity_retry_error_is_unwrapped_for_last_error(
    queue: PersistentQueue, config: PersistentWorkerConfig
) -> None:
    message = queue.put("job")

    @persistent_worker(queue, config=config, reraise=False)
    def handle(value: str) -> None:
        raise ConnectionError("smtp down")

    with pytest.raises(tenacity.RetryError):
        handle()
    assert queue.inspect(message.id).last_error == "ConnectionError: smtp down"


def test_an_error_not_retried_dead_letters_at_once(
    queue: PersistentQueue, config: PersistentWorkerConfig
) -> None:
    message = queue.put("job")
    calls: list[str] = []

    @persistent_worker(queue, config=config, retry=retry_if_exception_type(ConnectionError))
    def handle(value: str) -> None:
        calls.append(value)
        raise ValueError("bad address")

    with pytest.raises(ValueError, match="bad address"):
        handle()
    assert calls == ["job"]
    assert queue.inspect(message.id).state is MessageState.DEAD


def test_release_instead_of_dead_letter(
    queue: PersistentQueue, config: PersistentWorkerConfig
) -> None:
    message = queue.put("job")

    @persistent_worker(queue, config=config, dead_letter_on_failure=False, release_delay=60)
    def handle(value: str) -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        handle()
    released = queue.inspect(message.id)
    assert released.state is MessageState.READY
    assert released.last_error == "ConnectionError: down"
    assert queue.stats().delayed == 1


def test_an_undecodable_message_is_dead_lettered(
    queue: PersistentQueue, config: PersistentWorkerConfig
) -> None:
    bad = queue.store.put(queue.name, b"\xff{", codec="json")
    calls: list[Any] = []

    @persistent_worker(queue, config=config)
    def handle(value: Any) -> None:
        calls.append(value)

    with pytest.raises(MessageDecodeError):
        handle()
    assert calls == []
    dead = queue.inspect(bad.id)
    assert dead.state is MessageState.DEAD
    assert dead.last_error is not None
    assert bad.id in dead.last_error


def test_a_requeued_dead_letter_gets_a_fresh_budget(
    queue: PersistentQueue, config: PersistentWorkerConfig
) -> None:
    message = queue.put("job")
    calls: list[str] = []
    healthy = False

    @persistent_worker(queue, config=config)
    def handle(value: str) -> str:
        calls.append(value)
        if not healthy:
            raise ConnectionError("down")
        return "sent"

    with pytest.raises(ConnectionError):
        handle()
    assert len(calls) == 3
    queue.requeue_dead(message.id)
    healthy = True
    assert handle() == "sent"
    assert len(calls) == 4
    assert queue.stats().total == 0


def test_a_redelivery_continues_the_budget(
    queue: PersistentQueue, config: PersistentWorkerConfig
) -> None:
    queue.put("job")
    calls: list[int] = []

    @persistent_worker(queue, config=config)
    def handle(value: str) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise Crash  # the process "dies" during the second attempt
        raise ConnectionError("down")

    with pytest.raises(Crash):
        handle()
    assert len(calls) == 2
    with pytest.raises(ConnectionError):
        handle()
    assert len(calls) == 3  # only the third of max_tries=3 was left
    assert queue.stats().dead == 1


def test_worker_id_is_recorded_as_leased_by(
    queue: PersistentQueue, config: PersistentWorkerConfig
) -> None:
    message = queue.put("job")
    seen: list[str | None] = []

    @persistent_worker(queue, config=config, worker_id="worker-1")
    def handle(value: str) -> None:
        seen.append(queue.inspect(message.id).leased_by)

    handle()
    assert seen == ["worker-1"]


def test_async_worker_acks_and_dead_letters(
    queue: PersistentQueue, attempt_store: AttemptStore
) -> None:
    async def no_async_sleep(seconds: float) -> None:
        return None

    ok = queue.put({"n": 1})
    bad = queue.put({"n": 2})
    calls: list[int] = []

    @persistent_async_worker(queue, store=attempt_store, max_tries=2, sleep=no_async_sleep)
    async def handle(job: dict[str, int]) -> int:
        calls.append(job["n"])
        if job["n"] == 2:
            raise ConnectionError("down")
        return job["n"] * 10

    assert asyncio.run(handle()) == 10
    with pytest.raises(ConnectionError):
        asyncio.run(handle())
    assert calls == [1, 2, 2]
    assert queue.store.inspect(queue.name, ok.id) is None
    assert queue.inspect(bad.id).state is MessageState.DEAD


def test_an_unexpected_heartbeat_error_neither_hangs_the_handler_nor_stops_other_heartbeats(
    queue: PersistentQueue, config: PersistentWorkerConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    extend = queue.extend_lease
    failing = queue.put("failing-heartbeat")
    queue.put("healthy-heartbeat")
    extended: list[Any] = []

    def extend_lease(message: Any, lease_timeout: float | None = None) -> None:
        if message.id == failing.id:
            raise OSError("an engine error the store did not translate")
        extended.append(message.value)
        extend(message, lease_timeout)

    monkeypatch.setattr(queue, "extend_lease", extend_lease)
    fast_beats = config.replace(lease_timeout=5.0, heartbeat_interval=0.02)

    @persistent_worker(queue, config=fast_beats)
    def handle(value: str) -> str:
        time.sleep(0.2)
        return value

    outcome: list[str] = []
    runner = threading.Thread(target=lambda: outcome.append(handle()), daemon=True)
    runner.start()
    runner.join(10)
    assert not runner.is_alive(), "the handler's end waited forever on a dead heartbeat"
    assert outcome == ["failing-heartbeat"]
    assert handle() == "healthy-heartbeat"
    assert "healthy-heartbeat" in extended
    assert queue.stats().total == 0


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="max_tries or stop"):
        PersistentWorkerConfig(max_tries=2, stop=tenacity.stop_after_attempt(2))
    with pytest.raises(ValueError, match="delay"):
        PersistentWorkerConfig(release_delay=-1)


def test_a_first_attempt_whose_worker_vanished_still_counts(
    queue: PersistentQueue, config: PersistentWorkerConfig, attempt_store: AttemptStore
) -> None:
    # A worker leases the message and dies in its first attempt before anything
    # is recorded (first attempts are written only once they fail): the lease
    # expires and the next worker must count that attempt.
    message = queue.put("job")
    assert queue.get_message(block=False, lease_timeout=0.05).id == message.id
    time.sleep(0.1)
    calls: list[str] = []

    @persistent_worker(queue, config=config)
    def handle(value: str) -> None:
        calls.append(value)
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        handle()
    assert len(calls) == 2  # max_tries=3, one spent by the vanished worker
    record = attempt_store.get_record(message.id)
    assert record is not None
    assert (record.attempts, record.exhausted) == (3, True)
    assert queue.stats().dead == 1


def test_tenacity_sees_a_failed_first_attempt_as_usual(
    queue: PersistentQueue, attempt_store: AttemptStore
) -> None:
    # The first attempt may run outside Tenacity's loop; its failure must still
    # reach after, wait, before_sleep and stop exactly as if the loop had run it.
    queue.put("job")
    events: list[str] = []

    def handle(value: str) -> str:
        events.append("call")
        if events.count("call") == 1:
            raise ConnectionError("down")
        return "sent"

    config = PersistentWorkerConfig(
        store=attempt_store,
        max_tries=3,
        wait=tenacity.wait_fixed(7),
        sleep=lambda seconds: events.append(f"sleep {seconds:g}"),
        after=lambda state: events.append(f"after {state.attempt_number}"),
        before_sleep=lambda state: events.append(f"before_sleep {state.attempt_number}"),
    )
    assert persistent_worker(queue, config=config)(handle)() == "sent"
    assert events == ["call", "after 1", "before_sleep 1", "sleep 7", "call"]
    assert queue.stats().total == 0


def test_a_before_callback_and_a_result_predicate_see_the_first_attempt(
    queue: PersistentQueue, attempt_store: AttemptStore
) -> None:
    queue.put("job")
    before: list[int] = []
    results = iter([None, "sent"])
    config = PersistentWorkerConfig(
        store=attempt_store,
        max_tries=3,
        sleep=no_sleep,
        before=lambda state: before.append(state.attempt_number),
        retry=tenacity.retry_if_result(lambda result: result is None),
    )
    assert persistent_worker(queue, config=config)(lambda value: next(results))() == "sent"
    assert before == [1, 2]
    assert queue.stats().total == 0


def test_a_first_attempt_error_not_retried_dead_letters_with_that_error(
    queue: PersistentQueue, attempt_store: AttemptStore
) -> None:
    message = queue.put("job")
    config = PersistentWorkerConfig(
        store=attempt_store,
        max_tries=3,
        sleep=no_sleep,
        retry=retry_if_exception_type(ConnectionError),
    )

    @persistent_worker(queue, config=config)
    def handle(value: str) -> None:
        raise ValueError("bad job")

    with pytest.raises(ValueError, match="bad job"):
        handle()
    dead = queue.inspect(message.id)
    assert dead.state is MessageState.DEAD
    assert dead.last_error == "ValueError: bad job"
