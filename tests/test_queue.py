"""PersistentQueue: the user API over every embedded store."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from localqueue import (
    ConfigurationError,
    Empty,
    Full,
    InvalidOptionError,
    LeaseLostError,
    MessageNotFoundError,
    MessageState,
    PersistentQueue,
    QueueStats,
    UnknownSerializerError,
    ValidationError,
)
from localqueue.protocols import QueueStore


@pytest.fixture
def queue(queue_store: QueueStore) -> PersistentQueue:
    return PersistentQueue("emails", queue_store, lease_timeout=30)


def test_put_get_task_done_like_queue_queue(queue: PersistentQueue) -> None:
    queue.put({"to": "a@example.com"})
    queue.put_nowait({"to": "b@example.com"})
    assert queue.qsize() == 2
    assert queue.get() == {"to": "a@example.com"}
    assert queue.get_nowait() == {"to": "b@example.com"}
    assert queue.stats() == QueueStats(inflight=2)
    queue.task_done()
    queue.task_done()
    assert queue.empty()
    assert queue.stats().total == 0
    with pytest.raises(ValueError, match="task_done"):
        queue.task_done()
    queue.join(timeout=1)


def test_get_raises_empty_without_blocking(queue: PersistentQueue) -> None:
    with pytest.raises(Empty):
        queue.get_nowait()
    with pytest.raises(Empty):
        queue.get(timeout=0.05)
    with pytest.raises(Empty):
        queue.get_message(block=False)
    assert queue.get_messages(3) == []


def test_blocking_get_wakes_on_a_put(queue: PersistentQueue) -> None:
    threading.Timer(0.1, lambda: queue.put("late")).start()
    assert queue.get(timeout=20) == "late"


def test_manual_control_ack_release_dead_letter(queue: PersistentQueue) -> None:
    queue.put("job")
    message = queue.get_message(leased_by="worker-1")
    assert message.leased_by == "worker-1"
    assert queue.inspect(message.id).state is MessageState.INFLIGHT
    queue.release(message, delay=0, error=RuntimeError("try later"))
    seen = queue.inspect(message.id)
    assert seen.state is MessageState.READY
    assert seen.last_error == "RuntimeError: try later"
    again = queue.get_message()
    queue.dead_letter(again, error=ValueError("bad input"))
    dead = queue.dead_letters()
    assert [d.id for d in dead] == [message.id]
    assert dead[0].last_error == "ValueError: bad input"
    queue.requeue_dead(message.id)
    final = queue.get_message()
    assert final.attempts == 1
    queue.ack(final)
    assert queue.stats().total == 0


def test_settling_a_lost_lease_raises(queue: PersistentQueue) -> None:
    queue.put("job")
    message = queue.get_message()
    queue.ack(message)
    with pytest.raises(LeaseLostError):
        queue.ack(message)
    with pytest.raises(LeaseLostError):
        queue.release(message)
    with pytest.raises(LeaseLostError):
        queue.extend_lease(message)
    queue.ack(message, missing_ok=True)
    with pytest.raises(MessageNotFoundError):
        queue.ack("no-such-id")
    with pytest.raises(MessageNotFoundError):
        queue.inspect("no-such-id")
    with pytest.raises(MessageNotFoundError):
        queue.requeue_dead("no-such-id")


def test_extend_lease_heartbeat(queue: PersistentQueue) -> None:
    queue.put("job")
    message = queue.get_message(lease_timeout=5)
    queue.extend_lease(message, 600)
    seen = queue.inspect(message.id)
    assert seen.leased_until is not None
    assert seen.leased_until > time.time() + 300


def test_consume_acks_on_success(queue: PersistentQueue) -> None:
    queue.put("job")
    with queue.consume() as message:
        assert message is not None
        assert message.value == "job"
    assert queue.stats().total == 0
    with queue.consume() as nothing:
        assert nothing is None


def test_consume_releases_then_dead_letters_after_max_attempts(queue: PersistentQueue) -> None:
    queue.put("poison")
    seen: list[int] = []

    def fail_once() -> None:
        with queue.consume(max_attempts=2) as message:
            assert message is not None
            seen.append(message.attempts)
            raise RuntimeError("boom")

    for _ in (1, 2):
        with pytest.raises(RuntimeError):
            fail_once()
    assert seen == [1, 2]
    assert queue.stats() == QueueStats(dead=1)
    assert queue.dead_letters()[0].last_error == "RuntimeError: boom"


def test_batch_put_lease_and_ack(queue: PersistentQueue) -> None:
    stored = queue.put_many([{"n": i} for i in range(10)])
    assert len(stored) == 10
    leased = queue.get_messages(4)
    assert [m.value for m in leased] == [{"n": i} for i in range(4)]
    assert queue.ack_many(leased) == 4
    assert queue.ack_many([]) == 0
    assert queue.qsize() == 6


def test_priority_delay_dedup_peek(queue: PersistentQueue) -> None:
    queue.put("later", delay=3600)
    queue.put("normal")
    queue.put("urgent", priority=9)
    first = queue.put("once", dedup_key="k")
    assert queue.put("twice", dedup_key="k").id == first.id
    peeked = queue.peek()
    assert peeked is not None
    assert peeked.value == "urgent"
    assert [queue.get_nowait() for _ in range(3)] == ["urgent", "normal", "once"]
    assert queue.stats().delayed == 1


def test_purge_and_requeue_all(queue: PersistentQueue) -> None:
    for i in range(3):
        queue.put(i)
    for _ in range(2):
        queue.dead_letter(queue.get_message(), error="x")
    assert queue.requeue_all_dead() == 2
    assert queue.purge() == 3
    queue.put("x")
    queue.dead_letter(queue.get_message())
    assert queue.purge("dead") == 1
    assert queue.purge("all") == 0


def test_maxsize_blocks_then_raises_full(queue_store: QueueStore) -> None:
    queue = PersistentQueue("bounded", queue_store, maxsize=2)
    queue.put(1)
    queue.put(2)
    assert queue.full()
    with pytest.raises(Full):
        queue.put_nowait(3)
    with pytest.raises(Full):
        queue.put(3, timeout=0.05)
    with pytest.raises(Full):
        queue.put_many([3])
    queue.get()
    queue.task_done()
    queue.put(3, timeout=1)
    assert queue.stats().ready == 2


def test_join_waits_until_everything_is_settled(queue: PersistentQueue) -> None:
    queue.put("job")

    def work() -> None:
        queue.get()
        time.sleep(0.1)
        queue.task_done()

    threading.Thread(target=work).start()
    queue.join(timeout=20)
    assert queue.stats().total == 0
    queue.put("stuck")
    with pytest.raises(TimeoutError):
        queue.join(timeout=0.05)


def test_bad_arguments_are_typed_errors(queue_store: QueueStore, tmp_path: Path) -> None:
    for kwargs in ({"maxsize": -1}, {"maxsize": 1.5}, {"lease_timeout": 0}):
        with pytest.raises(ValidationError):
            PersistentQueue("q", queue_store, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        PersistentQueue("bad name", queue_store)
    with pytest.raises(ValidationError):
        PersistentQueue("q", queue_store, store_path=tmp_path / "x.db")
    queue = PersistentQueue("q", queue_store)
    with pytest.raises(ValidationError):
        queue.get_messages(0)
    with pytest.raises(ValidationError):
        queue.get(timeout=-1)
    with pytest.raises(ValidationError), queue.consume(max_attempts=0):
        pass
    with pytest.raises(ValidationError):
        queue.put("x", delay=-1)
    assert queue.stats().total == 0


@pytest.mark.parametrize("bad", [None, 7, {"id": "x"}, b"id"])
def test_settling_something_that_is_not_a_message_is_a_typed_error(
    queue: PersistentQueue, bad: object
) -> None:
    queue.put("ready")
    leased = queue.get_message()
    dead = queue.put("dead")
    queue.dead_letter(dead)
    before = (queue.stats(), queue.inspect(leased.id), queue.inspect(dead.id))
    calls = [
        lambda: queue.ack(bad),  # type: ignore[arg-type]
        lambda: queue.release(bad),  # type: ignore[arg-type]
        lambda: queue.dead_letter(bad),  # type: ignore[arg-type]
        lambda: queue.requeue_dead(bad),  # type: ignore[arg-type]
        lambda: queue.extend_lease(bad),  # type: ignore[arg-type]
        lambda: queue.ack_many([leased, bad]),  # type: ignore[list-item]
    ]
    for call in calls:
        with pytest.raises(ValidationError):
            call()
    assert (queue.stats(), queue.inspect(leased.id), queue.inspect(dead.id)) == before


def test_a_store_from_a_url_is_owned_and_closed(tmp_path: Path) -> None:
    with PersistentQueue("q", store="memory://") as queue:
        queue.put(1)
        store = queue.store
    with pytest.raises(Exception, match="closed"):
        store.stats("q")


def test_a_store_instance_is_left_open(queue_store: QueueStore) -> None:
    with PersistentQueue("q", queue_store) as queue:
        queue.put(1)
    assert queue_store.stats("q").ready == 1


def bounded_queue_producer(url: str, name: str, log: str, start: object) -> None:
    """Child body: ten ``put_nowait`` calls into ``maxsize=10``, logging each outcome."""
    lines = []
    with PersistentQueue("bounded", store=url, maxsize=10) as queue:
        start.wait(60)  # type: ignore[attr-defined]
        for i in range(10):
            try:
                queue.put_nowait(f"{name}-{i}")
            except Full:
                lines.append("full\n")
            else:
                lines.append("stored\n")
    Path(log).write_text("".join(lines))


@pytest.mark.parametrize("scheme", ["sqlite", "lmdb"])
def test_maxsize_holds_across_four_producer_processes(tmp_path: Path, scheme: str) -> None:
    import multiprocessing

    url = f"sqlite:///{tmp_path}/q.db" if scheme == "sqlite" else f"lmdb:///{tmp_path}/env"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    logs = [tmp_path / f"p{k}.log" for k in range(4)]
    procs = [
        ctx.Process(target=bounded_queue_producer, args=(url, f"p{k}", str(log), start))
        for k, log in enumerate(logs)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0] * 4
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    outcomes = [line for log in logs for line in log.read_text().splitlines()]
    assert outcomes.count("stored") == 10
    assert outcomes.count("full") == 30
    with PersistentQueue("bounded", store=url) as queue:
        assert queue.qsize() == 10


def test_the_queue_owns_encoding_chosen_by_argument_or_url(
    queue_store: QueueStore, tmp_path: Path
) -> None:
    by_argument = PersistentQueue("q", queue_store, serializer="json")
    assert by_argument.put({"n": 1}).codec == "json"
    assert by_argument.put({"n": 2}).payload == b'{"n":2}'
    assert PersistentQueue("q", queue_store).serializer.name == "msgpack"
    url = f"sqlite:///{tmp_path}/codec.db?serializer=json"
    with PersistentQueue("q", url) as by_url:
        assert by_url.serializer.name == "json"
        assert by_url.put([1]).codec == "json"
        assert not hasattr(by_url.store, "serializer")
    # Every message decodes with its own codec, whatever the reader encodes with.
    with PersistentQueue("q", f"sqlite:///{tmp_path}/codec.db") as reader:
        assert reader.serializer.name == "msgpack"
        assert reader.get_nowait() == [1]


def test_a_serializer_that_disagrees_with_the_url_is_refused_before_opening(
    tmp_path: Path,
) -> None:
    db = tmp_path / "never.db"
    with pytest.raises(ConfigurationError, match="disagrees"):
        PersistentQueue("q", f"sqlite:///{db}?serializer=json", serializer="msgpack")
    with pytest.raises(UnknownSerializerError):
        PersistentQueue("q", "memory://", serializer="pickle")
    with pytest.raises(InvalidOptionError, match="serializer"):
        PersistentQueue("q", f"sqlite:///{db}?serializer=pickle")
    assert not db.exists()
    # The same name both ways is fine.
    with PersistentQueue("q", "memory://?serializer=json", serializer="json") as queue:
        assert queue.serializer.name == "json"


def test_a_queue_level_delivery_cap_dead_letters_at_the_next_lease(
    queue_store: QueueStore,
) -> None:
    queue = PersistentQueue("capped", queue_store, max_deliveries=2)
    queue.put("job")
    for _ in range(2):
        message = queue.get_message(block=False)
        queue.release(message)
    assert queue.get_messages(1) == []
    (dead,) = queue.dead_letters()
    assert dead.attempts == 2
    assert dead.last_error is not None
    assert "max_deliveries=2" in dead.last_error


def test_consume_dead_letters_the_last_allowed_delivery_with_its_own_error(
    queue_store: QueueStore,
) -> None:
    queue = PersistentQueue("capped", queue_store, max_deliveries=1)
    queue.put("job")

    def fail_once() -> None:
        with queue.consume() as message:
            assert message is not None
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_once()
    (dead,) = queue.dead_letters()
    assert dead.last_error == "RuntimeError: boom"


def test_the_delivery_cap_from_a_url_and_its_checks(tmp_path: Path) -> None:
    db = tmp_path / "capped.db"
    with PersistentQueue("q", f"sqlite:///{db}?max_deliveries=3") as queue:
        assert queue.max_deliveries == 3
    with pytest.raises(ConfigurationError, match="disagrees"):
        PersistentQueue("q", f"sqlite:///{db}?max_deliveries=3", max_deliveries=2)
    with pytest.raises(InvalidOptionError, match="max_deliveries"):
        PersistentQueue("q", f"sqlite:///{db}?max_deliveries=0")
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValidationError):
            PersistentQueue("q", "memory://", max_deliveries=bad)  # type: ignore[arg-type]
