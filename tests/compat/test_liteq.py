"""The liteq facade: liteq's API and behaviour over a real SQLite file."""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localqueue import PersistentQueue
from localqueue.compat.liteq import MAX_BATCH, LiteQueue, Message
from localqueue.errors import InvalidQueueNameError, MessageDecodeError, ValidationError


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "queue.db"


@pytest.fixture
def q(db: Path) -> Iterator[LiteQueue]:
    with LiteQueue(str(db), max_retries=3) as queue:
        yield queue


def stored(queue: LiteQueue, qname: str = "default") -> tuple[int, int]:
    """(unfinished, dead) messages of ``qname``."""
    stats = queue.store.stats(qname)
    return stats.ready + stats.delayed + stats.inflight, stats.dead


# -- the README's usage, with only the import changed -----------------------------------


def test_the_quick_start_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    seen: list[str] = []
    q = LiteQueue("queue.db")
    q.put(b"Hello Liteq!")
    with q.consume() as msg:
        if msg:
            seen.append(msg.data.decode())
        else:
            seen.append("empty")
    with q.consume() as msg:
        seen.append("empty" if msg is None else "unexpected")
    q.close()
    assert seen == ["Hello Liteq!", "empty"]
    assert (tmp_path / "queue.db").exists()


def test_the_producing_and_consuming_patterns_run(q: LiteQueue) -> None:
    processed: list[bytes] = []
    q.put(b"Task 1")
    q.put(b"Task 2", qname="emails", visible_after_seconds=60)
    q.put_batch([b"Task 3", b"Task 4"], qname="emails")
    with q.consume(qname="emails") as msg:
        if msg:
            processed.append(msg.data)
    assert processed == [b"Task 3"]
    assert q.qsize("emails") == 2  # Task 2 (delayed) and Task 4
    assert q.qsize() == 1

    msg = q.pop(invisible_seconds=30)
    assert msg is not None
    try:
        processed.append(msg.data)
        q.delete(msg.id)
    except Exception:  # pragma: no cover - the README's shape
        pass
    assert processed == [b"Task 3", b"Task 1"]
    assert q.qsize() == 0


def test_defaults_and_message_fields(db: Path) -> None:
    with LiteQueue(db) as queue:
        assert queue.max_retries == 5
        assert queue.timeout_seconds == 30.0
        before = time.time()
        message_id = queue.put(b"x")
        message = queue.pop()
    assert isinstance(message_id, str)
    assert isinstance(message, Message)
    assert [f.name for f in dataclasses.fields(Message)] == [
        "id",
        "data",
        "queue_name",
        "retry_count",
        "created_at",
    ]
    assert (message.id, message.data, message.queue_name, message.retry_count) == (
        message_id,
        b"x",
        "default",
        0,
    )
    assert before - 1 <= message.created_at <= time.time() + 1


@pytest.mark.parametrize("data", [b"", b"\x00\xff\x80binary", bytes(range(256)) * 64])
def test_data_comes_back_as_the_same_bytes(q: LiteQueue, db: Path, data: bytes) -> None:
    q.put(data)
    peeked = q.peek()
    assert peeked is not None
    assert peeked.data == data
    popped = q.pop()
    assert popped is not None
    assert popped.data == data
    assert type(popped.data) is bytes
    q.fail(popped.id, "again")
    # The same messages read through PersistentQueue hold the same bytes.
    with PersistentQueue("default", store=f"sqlite:///{db}") as queue:
        assert queue.get_message().value == data


# -- queues in one file ------------------------------------------------------------------


def test_many_named_queues_share_one_file(q: LiteQueue, db: Path) -> None:
    q.put(b"a1", qname="a")
    q.put(b"b1", qname="b")
    q.put(b"a2", qname="a")
    assert (q.qsize("a"), q.qsize("b"), q.qsize()) == (2, 1, 0)
    with LiteQueue(db) as other:
        b = other.pop("b")
        assert b is not None
        assert (b.data, b.queue_name) == (b"b1", "b")
        assert other.pop("b") is None
        assert other.delete(b.id)
    first, second = q.pop("a"), q.pop("a")
    assert first is not None
    assert second is not None
    assert [first.data, second.data] == [b"a1", b"a2"]
    assert q.pop() is None


def test_put_batch_keeps_order_and_the_delay(q: LiteQueue) -> None:
    ids = q.put_batch([b"1", b"2", b"3"], qname="batch")
    assert len(ids) == 3
    assert len(set(ids)) == 3
    popped = [q.pop("batch") for _ in range(3)]
    assert [(m.id, m.data) for m in popped if m] == list(zip(ids, [b"1", b"2", b"3"], strict=True))
    assert q.put_batch([]) == []
    q.put_batch((b"later",), qname="batch", visible_after_seconds=60)
    assert q.pop("batch") is None
    assert q.qsize("batch") == 4  # three leased, one delayed


def test_put_batch_takes_fifty_and_refuses_more(q: LiteQueue) -> None:
    assert len(q.put_batch([b"m"] * MAX_BATCH)) == 50
    with pytest.raises(ValidationError, match="at most 50"):
        q.put_batch([b"m"] * (MAX_BATCH + 1))
    assert q.qsize() == 50


def test_visible_after_seconds_delays_delivery(q: LiteQueue) -> None:
    q.put(b"soon", visible_after_seconds=0.5)
    assert q.pop() is None
    assert q.empty()
    assert q.qsize() == 1
    assert q.peek() is None
    message = q.pop(wait_seconds=10, pause_on_empty_fetch=0.05)
    assert message is not None
    assert message.data == b"soon"


def test_pop_waits_then_gives_none(q: LiteQueue) -> None:
    start = time.monotonic()
    assert q.pop(wait_seconds=0.3, pause_on_empty_fetch=0.05) is None
    assert 0.25 <= time.monotonic() - start < 5


def test_pop_waiting_receives_a_put_from_another_thread(q: LiteQueue, db: Path) -> None:
    def produce() -> None:
        with LiteQueue(db) as producer:
            producer.put(b"late")

    timer = threading.Timer(0.2, produce)
    timer.start()
    try:
        message = q.pop(wait_seconds=20)
    finally:
        timer.join()
    assert message is not None
    assert message.data == b"late"


# -- consume, fail and the dead-letter queue --------------------------------------------


def test_consume_deletes_on_success(q: LiteQueue) -> None:
    q.put(b"ok")
    with q.consume(invisible_seconds=5) as msg:
        assert msg is not None
        assert q.qsize() == 1  # leased, not yet deleted
    assert stored(q) == (0, 0)


def test_consume_failures_retry_then_dead_letter(q: LiteQueue) -> None:
    message_id = q.put(b"poison")
    seen: list[tuple[str, int]] = []

    def work(attempt: int) -> None:
        with q.consume() as msg:
            assert msg is not None
            seen.append((msg.id, msg.retry_count))
            raise RuntimeError(f"boom {attempt}")

    for attempt in range(3):
        with pytest.raises(RuntimeError, match="boom"):
            work(attempt)
        assert seen[-1] == (message_id, attempt)
        if attempt < 2:
            # Visible again at once, with the failure recorded.
            peeked = q.peek()
            assert peeked is not None
            assert peeked.retry_count == attempt + 1
            record = q.store.inspect("default", message_id)
            assert record is not None
            assert record.last_error == f"RuntimeError: boom {attempt}"
    assert q.pop() is None
    assert stored(q) == (0, 1)
    [dead] = q.store.dead_letters("default")
    assert dead.id == message_id
    assert dead.last_error == "RuntimeError: boom 2"


def test_fail_counts_retries_and_dead_letters_at_max_retries(q: LiteQueue) -> None:
    message_id = q.put(b"job")
    for retry in range(3):
        message = q.pop(invisible_seconds=60)
        assert message is not None
        assert message.retry_count == retry
        assert q.fail(message.id, f"reason {retry}")
    assert q.pop() is None
    [dead] = q.store.dead_letters("default")
    assert (dead.id, dead.last_error) == (message_id, "reason 2")
    assert not q.fail(message_id, "already dead")


def test_an_expired_lease_counts_as_a_delivery(q: LiteQueue) -> None:
    message_id = q.put(b"slow")
    for retry in range(3):
        message = q.pop(invisible_seconds=0.1)
        assert message is not None
        assert message.retry_count == retry
        time.sleep(0.15)  # the worker "crashed": no delete, no fail
    assert q.pop() is None  # a fourth delivery is over max_retries=3
    [dead] = q.store.dead_letters("default")
    assert dead.id == message_id
    assert dead.last_error is not None
    assert "max_retries=3" in dead.last_error


def test_a_dead_lettered_message_does_not_hide_the_next(q: LiteQueue) -> None:
    q.put(b"stuck")
    for _ in range(3):
        assert q.pop(invisible_seconds=0.1) is not None
        time.sleep(0.15)
    q.put(b"fresh")
    message = q.pop()
    assert message is not None
    assert message.data == b"fresh"
    assert stored(q) == (1, 1)


def test_redrive_moves_every_dead_letter_back(q: LiteQueue) -> None:
    for name in (b"x", b"y"):
        q.put(name, qname="jobs")
        for _ in range(3):
            message = q.pop("jobs")
            assert message is not None
            q.fail(message.id, "no")
    assert stored(q, "jobs") == (0, 2)
    assert q.redrive("jobs") == 2
    assert stored(q, "jobs") == (2, 0)
    message = q.pop("jobs")
    assert message is not None
    assert message.retry_count == 0
    assert q.redrive("jobs") == 0
    assert q.redrive() == 0


def test_a_value_that_is_not_bytes_is_dead_lettered_at_pop(q: LiteQueue, db: Path) -> None:
    with PersistentQueue("default", store=f"sqlite:///{db}") as queue:
        queue.put({"not": "bytes"})
    with pytest.raises(MessageDecodeError):
        q.peek()
    q.put(b"fine")
    message = q.pop()
    assert message is not None
    assert message.data == b"fine"
    [dead] = q.store.dead_letters("default")
    assert dead.last_error is not None
    assert "not bytes" in dead.last_error


# -- pop, delete and fail by id ---------------------------------------------------------


def test_pop_then_delete(q: LiteQueue) -> None:
    q.put(b"manual")
    message = q.pop(invisible_seconds=30)
    assert message is not None
    assert q.pop() is None  # invisible to others while leased
    assert q.delete(message.id)
    assert not q.delete(message.id)
    assert not q.delete("no-such-id")
    assert stored(q) == (0, 0)


def test_delete_after_the_lease_was_taken_over_changes_nothing(q: LiteQueue, db: Path) -> None:
    q.put(b"contested")
    mine = q.pop(invisible_seconds=0.1)
    assert mine is not None
    time.sleep(0.15)
    with LiteQueue(db, max_retries=3) as other:
        theirs = other.pop()
        assert theirs is not None
        assert theirs.id == mine.id
        assert not q.delete(mine.id)
        assert not q.fail(mine.id, "late")
        assert stored(q) == (1, 0)
        assert other.delete(theirs.id)
    assert stored(q) == (0, 0)


def test_ids_this_object_did_not_pop_are_settled_by_id(q: LiteQueue, db: Path) -> None:
    first = q.put(b"one", qname="other")
    second = q.put(b"two", qname="other")
    with LiteQueue(db, max_retries=3) as stranger:
        assert stranger.fail(first, "operator")
        record = q.store.inspect("other", first)
        assert record is not None
        assert record.last_error == "operator"
        assert stranger.delete(second)
    assert q.qsize("other") == 1


def test_fail_without_a_reason(q: LiteQueue) -> None:
    q.put(b"x")
    message = q.pop()
    assert message is not None
    assert q.fail(message.id)
    record = q.store.inspect("default", message.id)
    assert record is not None
    assert record.last_error == "failed"


# -- peek, clear, sizes ------------------------------------------------------------------


def test_peek_does_not_lock(q: LiteQueue) -> None:
    assert q.peek() is None
    message_id = q.put(b"look")
    first = q.peek()
    second = q.peek()
    assert first == second
    assert first is not None
    assert (first.id, first.data, first.retry_count) == (message_id, b"look", 0)
    popped = q.pop()
    assert popped is not None
    assert popped.id == message_id
    assert q.peek() is None


def _dead_letter_one(q: LiteQueue, data: bytes) -> None:
    q.put(data)
    for _ in range(3):
        message = q.pop()
        assert message is not None
        assert message.data == data
        q.fail(message.id, "no")


def test_clear_keeps_dead_letters_and_leased_messages(q: LiteQueue) -> None:
    _dead_letter_one(q, b"dead")
    q.put_batch([b"a", b"b"])
    q.put(b"later", visible_after_seconds=60)
    q.put(b"other queue", qname="keep")
    leased = q.pop()
    assert leased is not None
    assert leased.data == b"a"
    assert q.clear() == 2  # b and the delayed one
    assert stored(q) == (1, 1)
    assert q.delete(leased.id)  # its consumer still settles it
    assert stored(q) == (0, 1)
    assert q.qsize("keep") == 1


def test_clear_with_dlq_removes_the_dead_letters_too(q: LiteQueue) -> None:
    _dead_letter_one(q, b"dead")
    q.put_batch([b"a", b"b"])
    assert q.clear(dlq=True) == 3
    assert stored(q) == (0, 0)
    _dead_letter_one(q, b"again")
    assert q.clear("default", True) == 1
    assert stored(q) == (0, 0)


def test_qsize_empty_and_join(q: LiteQueue, db: Path) -> None:
    assert q.empty()
    assert q.qsize() == 0
    q.join()  # returns at once when there is nothing
    q.put_batch([b"1", b"2", b"3"])
    assert not q.empty()
    assert q.qsize() == 3
    leased = q.pop()
    assert leased is not None
    assert q.qsize() == 3  # leased messages still count
    with pytest.raises(TimeoutError):
        q.join(timeout=0.1)

    def drain() -> None:
        with LiteQueue(db) as worker:
            while (message := worker.pop(wait_seconds=0.2)) is not None:
                worker.delete(message.id)

    thread = threading.Thread(target=drain)
    thread.start()
    try:
        q.delete(leased.id)
        q.join(timeout=30)
    finally:
        thread.join()
    assert q.empty()
    assert q.qsize() == 0


def test_threads_sharing_one_object_get_each_message_once(q: LiteQueue) -> None:
    q.put_batch([str(i).encode() for i in range(40)], qname="work")
    received: list[bytes] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with q.consume(qname="work") as msg:
                if msg is None:
                    return
                with lock:
                    received.append(msg.data)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(received) == sorted(str(i).encode() for i in range(40))
    assert stored(q, "work") == (0, 0)


# -- another process -----------------------------------------------------------------------


def _child(path: str, count: int) -> None:
    with LiteQueue(path, max_retries=3) as queue:
        queue.put_batch([f"child {i}".encode() for i in range(count)], qname="shared")
        taken = 0
        while taken < count // 2:
            message = queue.pop("parent", wait_seconds=30)
            assert message is not None
            assert queue.delete(message.id)
            taken += 1


def test_a_second_process_shares_the_file(q: LiteQueue, db: Path) -> None:
    q.put_batch([f"parent {i}".encode() for i in range(10)], qname="parent")
    child = multiprocessing.get_context("spawn").Process(target=_child, args=(str(db), 10))
    child.start()
    child.join(120)
    assert child.exitcode == 0
    assert q.qsize("parent") == 5
    received = []
    while (message := q.pop("shared")) is not None:
        received.append(message.data)
        q.delete(message.id)
    assert received == [f"child {i}".encode() for i in range(10)]


# -- bad input changes nothing ------------------------------------------------------------


@pytest.mark.parametrize("data", ["text", bytearray(b"x"), None, 1, [b"x"]])
def test_put_refuses_what_is_not_bytes(q: LiteQueue, data: object) -> None:
    with pytest.raises(ValidationError, match="bytes"):
        q.put(data)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="bytes"):
        q.put_batch([b"fine", data])  # type: ignore[list-item]
    assert stored(q) == (0, 0)


@pytest.mark.parametrize(
    "call",
    [
        lambda q: q.put(b"x", visible_after_seconds=-1),
        lambda q: q.put(b"x", visible_after_seconds=float("nan")),
        lambda q: q.put(b"x", visible_after_seconds="1"),
        lambda q: q.put(b"x", retries_on_conflict=-1),
        lambda q: q.put(b"x", pause_on_conflict=-0.1),
        lambda q: q.put_batch([b"x"], visible_after_seconds=-1),
        lambda q: q.put_batch([b"x"] * 51),
        lambda q: q.put_batch(b"xy"),
        lambda q: q.put_batch(None),
        lambda q: q.pop(invisible_seconds=0),
        lambda q: q.pop(invisible_seconds=-5),
        lambda q: q.pop(wait_seconds=-1),
        lambda q: q.pop(pause_on_empty_fetch=-1),
        lambda q: q.delete(123),
        lambda q: q.fail(None, "x"),
        lambda q: q.join(timeout=-1),
    ],
)
def test_bad_arguments_raise_validation_errors(q: LiteQueue, call: object) -> None:
    q.put(b"kept")
    with pytest.raises(ValidationError):
        call(q)  # type: ignore[operator]
    assert stored(q) == (1, 0)
    assert q.store.stats("default").inflight == 0


@pytest.mark.parametrize("qname", ["", "has space", "-leading", "x" * 129, None])
def test_bad_queue_names_are_refused(q: LiteQueue, qname: object) -> None:
    for call in (
        lambda: q.put(b"x", qname=qname),  # type: ignore[arg-type]
        lambda: q.put_batch([b"x"], qname=qname),  # type: ignore[arg-type]
        lambda: q.pop(qname),  # type: ignore[arg-type]
        lambda: q.peek(qname),  # type: ignore[arg-type]
        lambda: q.qsize(qname),  # type: ignore[arg-type]
        lambda: q.clear(qname),  # type: ignore[arg-type]
        lambda: q.redrive(qname),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidQueueNameError):
            call()
    with pytest.raises(InvalidQueueNameError), q.consume(qname):  # type: ignore[arg-type]
        pass  # pragma: no cover
    assert q.store.queues() == []


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": 0}, {"max_retries": True}, {"max_retries": 1.5}, {"timeout_seconds": -1}],
)
def test_bad_constructor_arguments(db: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        LiteQueue(db, **kwargs)  # type: ignore[arg-type]
    assert not db.exists()


def test_bad_filename(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        LiteQueue("")
    with pytest.raises(ValidationError):
        LiteQueue(None)  # type: ignore[arg-type]


def test_odd_file_names_work(tmp_path: Path) -> None:
    path = tmp_path / "odd name #1%20?.db"
    with LiteQueue(path) as queue:
        queue.put(b"x")
    assert path.exists()
    with LiteQueue(str(path)) as queue:
        assert queue.qsize() == 1
