"""Conformance tests for :class:`~localqueue.protocols.QueueStore`, one class per behaviour."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest

from localqueue._models import Capability, MessageState, QueueMessage, QueueStats
from localqueue.errors import (
    InvalidQueueNameError,
    MessageDecodeError,
    PayloadTooLargeError,
    StoreClosedError,
    UnserializableValueError,
    ValidationError,
)
from localqueue.protocols import IntegrityCheckable, QueueStore
from localqueue.queue import PersistentQueue
from localqueue.serializers import Serializer, get_serializer
from localqueue.testing._base import CODEC, FakeClock, StoreSuiteBase, Timeline
from localqueue.validation import MAX_BATCH, MAX_PAYLOAD_BYTES, MAX_PRIORITY

__all__ = [
    "AckSuite",
    "BadInputSuite",
    "BatchSuite",
    "ClosedStoreSuite",
    "ConcurrentLeaseSuite",
    "DeadLetterSuite",
    "DecodeSuite",
    "DedupSuite",
    "DelaySuite",
    "DistinctNamesSuite",
    "HandlesSuite",
    "IntegritySuite",
    "IsolationSuite",
    "LeaseExpirySuite",
    "LeaseLog",
    "LeaseSuite",
    "MessageStateSuite",
    "OrderingSuite",
    "PeekInspectSuite",
    "PersistenceSuite",
    "PurgeSuite",
    "QueueValueSuite",
    "RecordFieldsSuite",
    "ReleaseExtendSuite",
    "StatsSuite",
    "TimestampSuite",
    "WaitBlocksSuite",
    "WaitSuite",
    "WaitWakesSuite",
]

Q = "jobs"
LONG = 3600.0  # a lease that never expires within a test


def at(expected: float, tol: float) -> Any:
    """An absolute-tolerance comparison (never relative: epoch times are large)."""
    return pytest.approx(expected, rel=0, abs=tol)


def wakes_within(waiter: QueueStore, action: Callable[[], object]) -> float:
    """Real seconds a ``wait(Q, 20)`` loop took to lease after ``action`` ran in 0.2 s."""
    timer = threading.Timer(0.2, action)
    started = time.monotonic()
    timer.start()
    try:
        deadline = started + 20
        while not waiter.lease(Q, lease_timeout=LONG) and time.monotonic() < deadline:
            waiter.wait(Q, 20)
    finally:
        timer.join()
    return time.monotonic() - started


class QueueStoreCase(StoreSuiteBase):
    """Base of the queue-store classes: a ``store`` handle and small helpers."""

    @pytest.fixture
    def store(self, make_queue_store: Callable[[], QueueStore]) -> QueueStore:
        """One handle on the store under test."""
        return make_queue_store()

    @staticmethod
    def put(
        store: QueueStore, payload: bytes = b"x", queue: str = Q, **options: Any
    ) -> QueueMessage:
        """Put raw bytes with the store's codec."""
        return store.put(queue, payload, codec=CODEC, **options)

    @staticmethod
    def lease_one(
        store: QueueStore, queue: str = Q, lease_timeout: float = LONG, **kw: Any
    ) -> QueueMessage:
        """Lease exactly one message, failing the test if none is available."""
        leased = store.lease(queue, lease_timeout=lease_timeout, **kw)
        assert len(leased) == 1, f"expected one message to lease, got {leased}"
        return leased[0]

    @staticmethod
    def snapshot(store: QueueStore, queue: str = Q) -> tuple[QueueStats, list[tuple[Any, ...]]]:
        """Everything observable about a queue, to show a rejected call changed nothing."""
        ids = []
        message = store.peek(queue)
        if message is not None:
            ids.append(message.id)
        dead = [m.id for m in store.dead_letters(queue)]
        rows = []
        for message_id in ids + dead:
            m = store.inspect(queue, message_id)
            assert m is not None
            rows.append((m.id, m.state, m.attempts, m.payload, m.available_at, m.last_error))
        return store.stats(queue), rows


class LeaseSuite(QueueStoreCase):
    """put and lease: fields, visibility, limits."""

    def test_put_returns_the_stored_ready_message(self, store: QueueStore) -> None:
        m = self.put(store, b"hello", priority=3)
        assert m.queue == Q
        assert m.state is MessageState.READY
        assert m.attempts == 0
        assert m.priority == 3
        assert m.payload == b"hello"
        assert m.codec == CODEC
        assert m.available_at == at(m.created_at, 1e-3)
        assert m.leased_until is None
        assert m.lease_token is None
        assert store.inspect(Q, m.id) is not None

    def test_lease_marks_message_inflight_with_a_token(self, store: QueueStore) -> None:
        put = self.put(store, b"job")
        m = self.lease_one(store, lease_timeout=30, leased_by="worker-1")
        assert m.id == put.id
        assert m.payload == b"job"
        assert m.state is MessageState.INFLIGHT
        assert m.attempts == 1
        assert m.leased_by == "worker-1"
        assert m.lease_token
        assert m.leased_until is not None
        assert m.leased_until == at(m.available_at, 1e-3)
        assert m.leased_until - m.created_at == at(30, 5)

    def test_lease_on_empty_queue_returns_nothing(self, store: QueueStore) -> None:
        assert store.lease(Q, lease_timeout=LONG) == []
        assert store.lease("never-used", lease_timeout=LONG, limit=5) == []

    def test_leased_message_is_invisible_to_other_consumers(
        self, make_queue_store: Callable[[], QueueStore]
    ) -> None:
        a, b = make_queue_store(), make_queue_store()
        self.put(a)
        assert len(a.lease(Q, lease_timeout=LONG)) == 1
        assert b.lease(Q, lease_timeout=LONG) == []
        assert a.lease(Q, lease_timeout=LONG) == []

    def test_lease_limit_takes_up_to_n(self, store: QueueStore) -> None:
        for i in range(5):
            self.put(store, bytes([i]))
        first = store.lease(Q, lease_timeout=LONG, limit=3)
        rest = store.lease(Q, lease_timeout=LONG, limit=3)
        assert [m.payload for m in first] == [b"\x00", b"\x01", b"\x02"]
        assert [m.payload for m in rest] == [b"\x03", b"\x04"]
        assert len({m.lease_token for m in first + rest}) == 5

    def test_payloads_round_trip_exactly(self, store: QueueStore) -> None:
        payloads = [b"", b"\x00\xff" * 100, bytes(range(256)), b"x" * (1 << 20)]
        for p in payloads:
            self.put(store, p)
        got = store.lease(Q, lease_timeout=LONG, limit=10)
        assert [m.payload for m in got] == payloads

    def test_ids_are_unique(self, store: QueueStore) -> None:
        ids = {self.put(store).id for _ in range(200)}
        assert len(ids) == 200


class OrderingSuite(QueueStoreCase):
    """Delivery order: FIFO within a priority, higher priorities first."""

    def test_fifo_for_messages_put_at_different_times(
        self, store: QueueStore, timeline: Timeline
    ) -> None:
        for i in range(4):
            self.put(store, bytes([i]))
            timeline.advance(0.01)
        got = [m.payload for m in store.lease(Q, lease_timeout=LONG, limit=4)]
        assert got == [b"\x00", b"\x01", b"\x02", b"\x03"]

    def test_fifo_for_messages_put_in_one_instant(self, store: QueueStore) -> None:
        for i in range(20):
            self.put(store, bytes([i]))
        got = [m.payload for m in store.lease(Q, lease_timeout=LONG, limit=20)]
        assert got == [bytes([i]) for i in range(20)]

    def test_higher_priority_first(self, store: QueueStore) -> None:
        self.put(store, b"low", priority=-5)
        self.put(store, b"mid")
        self.put(store, b"high", priority=10)
        self.put(store, b"mid2")
        got = [m.payload for m in store.lease(Q, lease_timeout=LONG, limit=4)]
        assert got == [b"high", b"mid", b"mid2", b"low"]

    def test_delayed_high_priority_does_not_block_ready_low_priority(
        self, store: QueueStore, timeline: Timeline
    ) -> None:
        timeline.mark()
        self.put(store, b"later", priority=100, delay=4 * timeline.unit)
        self.put(store, b"now", priority=0)
        first = self.lease_one(store)
        assert first.payload == b"now"
        rest = store.lease(Q, lease_timeout=LONG)
        if timeline.still_before(4):
            assert rest == []

    def test_released_message_goes_behind_older_ones(
        self, store: QueueStore, timeline: Timeline
    ) -> None:
        self.put(store, b"a")
        timeline.advance(0.01)
        self.put(store, b"b")
        a = self.lease_one(store)
        timeline.advance(0.01)
        assert store.release(Q, a.id, lease_token=a.lease_token)
        got = [m.payload for m in store.lease(Q, lease_timeout=LONG, limit=2)]
        assert got == [b"b", b"a"]


class DelaySuite(QueueStoreCase):
    """Delayed delivery."""

    def test_delayed_message_waits_until_due(self, store: QueueStore, timeline: Timeline) -> None:
        timeline.mark()
        m = self.put(store, b"later", delay=2 * timeline.unit)
        assert m.available_at == at(m.created_at + 2 * timeline.unit, 1e-3)
        if timeline.still_before(2):
            assert store.lease(Q, lease_timeout=LONG) == []
            assert store.stats(Q).delayed == 1
            assert store.peek(Q) is None
        timeline.advance(2.5)
        assert self.lease_one(store).id == m.id

    def test_zero_delay_is_immediate(self, store: QueueStore) -> None:
        self.put(store, delay=0)
        assert store.stats(Q).ready == 1


class LeaseExpirySuite(QueueStoreCase):
    """Expired leases come back with attempts counted; stale tokens lose their power."""

    def test_expired_lease_is_delivered_again(self, store: QueueStore, timeline: Timeline) -> None:
        self.put(store, b"job")
        first = self.lease_one(store, lease_timeout=timeline.unit)
        timeline.advance(1.5)
        assert store.stats(Q).ready == 1
        assert store.stats(Q).inflight == 0
        second = self.lease_one(store, lease_timeout=LONG)
        assert second.id == first.id
        assert second.attempts == 2
        assert second.lease_token != first.lease_token

    def test_expired_message_reports_ready(self, store: QueueStore, timeline: Timeline) -> None:
        self.put(store)
        m = self.lease_one(store, lease_timeout=timeline.unit)
        timeline.advance(1.5)
        seen = store.inspect(Q, m.id)
        assert seen is not None
        assert seen.state is MessageState.READY
        assert seen.leased_until is None

    def test_stale_token_cannot_settle_after_redelivery(
        self, store: QueueStore, timeline: Timeline
    ) -> None:
        self.put(store)
        first = self.lease_one(store, lease_timeout=timeline.unit)
        timeline.advance(1.5)
        second = self.lease_one(store)
        assert not store.ack(Q, first.id, lease_token=first.lease_token)
        assert not store.release(Q, first.id, lease_token=first.lease_token)
        assert not store.dead_letter(Q, first.id, lease_token=first.lease_token)
        assert first.lease_token is not None
        assert not store.extend(Q, first.id, lease_token=first.lease_token, lease_timeout=5)
        seen = store.inspect(Q, first.id)
        assert seen is not None
        assert seen.state is MessageState.INFLIGHT
        assert store.ack(Q, second.id, lease_token=second.lease_token)

    def test_holder_may_still_ack_an_expired_lease_nobody_took(
        self, store: QueueStore, timeline: Timeline
    ) -> None:
        self.put(store)
        m = self.lease_one(store, lease_timeout=timeline.unit)
        timeline.advance(1.5)
        assert store.ack(Q, m.id, lease_token=m.lease_token)
        assert store.stats(Q).total == 0


class AckSuite(QueueStoreCase):
    """ack and ack_many."""

    def test_ack_deletes_once(self, store: QueueStore) -> None:
        self.put(store)
        m = self.lease_one(store)
        assert store.ack(Q, m.id, lease_token=m.lease_token)
        assert store.inspect(Q, m.id) is None
        assert not store.ack(Q, m.id, lease_token=m.lease_token)
        assert store.stats(Q).total == 0

    def test_ack_with_wrong_token_changes_nothing(self, store: QueueStore) -> None:
        self.put(store)
        m = self.lease_one(store)
        assert not store.ack(Q, m.id, lease_token="not-the-token")
        seen = store.inspect(Q, m.id)
        assert seen is not None
        assert seen.state is MessageState.INFLIGHT

    def test_ack_unknown_id_is_false(self, store: QueueStore) -> None:
        assert not store.ack(Q, "no-such-id")
        assert not store.ack(Q, "no-such-id", lease_token="t")

    def test_operator_ack_without_token(self, store: QueueStore) -> None:
        ready = self.put(store, b"ready")
        assert store.ack(Q, ready.id)
        assert store.inspect(Q, ready.id) is None

    def test_ack_many_acks_only_held_leases(self, store: QueueStore) -> None:
        for _ in range(4):
            self.put(store)
        leased = store.lease(Q, lease_timeout=LONG, limit=4)
        pairs = [(m.id, m.lease_token) for m in leased[:3]] + [(leased[3].id, "stale")]
        assert store.ack_many(Q, pairs) == 3
        assert store.stats(Q).inflight == 1
        assert store.ack_many(Q, pairs) == 0
        assert store.ack_many(Q, []) == 0


class ReleaseExtendSuite(QueueStoreCase):
    """release (with delay and error) and lease extension."""

    def test_release_makes_ready_and_keeps_attempts(self, store: QueueStore) -> None:
        self.put(store)
        m = self.lease_one(store)
        assert store.release(Q, m.id, lease_token=m.lease_token)
        seen = store.inspect(Q, m.id)
        assert seen is not None
        assert seen.state is MessageState.READY
        assert seen.attempts == 1
        assert seen.last_error is None
        assert self.lease_one(store).attempts == 2

    def test_release_records_error_and_delay(self, store: QueueStore, timeline: Timeline) -> None:
        self.put(store)
        m = self.lease_one(store)
        timeline.mark()
        assert store.release(
            Q, m.id, lease_token=m.lease_token, delay=2 * timeline.unit, error="boom"
        )
        seen = store.inspect(Q, m.id)
        assert seen is not None
        assert seen.last_error == "boom"
        assert seen.failed_at is not None
        if timeline.still_before(2):
            assert store.lease(Q, lease_timeout=LONG) == []
            assert store.stats(Q).delayed == 1
        timeline.advance(2.5)
        assert self.lease_one(store).id == m.id

    def test_release_twice_with_one_token_is_false(self, store: QueueStore) -> None:
        self.put(store)
        m = self.lease_one(store)
        assert store.release(Q, m.id, lease_token=m.lease_token)
        assert not store.release(Q, m.id, lease_token=m.lease_token)

    def test_extend_keeps_the_lease(self, store: QueueStore, timeline: Timeline) -> None:
        self.put(store)
        m = self.lease_one(store, lease_timeout=2 * timeline.unit)
        assert m.lease_token is not None
        assert store.extend(Q, m.id, lease_token=m.lease_token, lease_timeout=LONG)
        timeline.advance(3)
        assert store.lease(Q, lease_timeout=LONG) == []
        seen = store.inspect(Q, m.id)
        assert seen is not None
        assert seen.state is MessageState.INFLIGHT
        assert seen.leased_until is not None
        assert seen.leased_until > m.leased_until  # type: ignore[operator]

    def test_extend_needs_the_current_token(self, store: QueueStore) -> None:
        self.put(store)
        m = self.lease_one(store)
        assert not store.extend(Q, m.id, lease_token="wrong", lease_timeout=10)
        assert not store.extend(Q, "missing", lease_token="wrong", lease_timeout=10)


class DeadLetterSuite(QueueStoreCase):
    """dead_letter, dead_letters and requeue_dead."""

    def test_dead_letter_records_error_and_leaves_delivery(self, store: QueueStore) -> None:
        self.put(store)
        m = self.lease_one(store)
        assert store.dead_letter(Q, m.id, lease_token=m.lease_token, error="poison")
        seen = store.inspect(Q, m.id)
        assert seen is not None
        assert seen.state is MessageState.DEAD
        assert seen.last_error == "poison"
        assert seen.failed_at is not None
        assert store.lease(Q, lease_timeout=LONG) == []
        assert store.stats(Q) == QueueStats(dead=1)
        assert not store.dead_letter(Q, m.id)
        assert not store.release(Q, m.id)

    def test_dead_letters_lists_oldest_failure_first(
        self, store: QueueStore, timeline: Timeline
    ) -> None:
        ids = [self.put(store, bytes([i])).id for i in range(3)]
        for message_id in reversed(ids):
            assert store.dead_letter(Q, message_id, error=f"e{message_id}")
            timeline.advance(0.01)
        assert [m.id for m in store.dead_letters(Q)] == list(reversed(ids))
        assert [m.id for m in store.dead_letters(Q, limit=2)] == list(reversed(ids))[:2]
        assert store.dead_letters("other") == []

    def test_requeue_one_resets_attempts_and_keeps_error(self, store: QueueStore) -> None:
        self.put(store)
        m = self.lease_one(store)
        store.dead_letter(Q, m.id, lease_token=m.lease_token, error="poison")
        assert store.requeue_dead(Q, [m.id]) == 1
        seen = store.inspect(Q, m.id)
        assert seen is not None
        assert seen.state is MessageState.READY
        assert seen.attempts == 0
        assert seen.last_error == "poison"
        again = self.lease_one(store)
        assert again.id == m.id
        assert again.attempts == 1

    def test_requeue_all_and_skips_non_dead(self, store: QueueStore) -> None:
        alive = self.put(store)
        for _ in range(3):
            store.dead_letter(Q, self.put(store).id)
        assert store.requeue_dead(Q, [alive.id, "unknown"]) == 0
        assert store.requeue_dead(Q) == 3
        assert store.stats(Q) == QueueStats(ready=4)
        assert store.requeue_dead(Q) == 0


class PurgeSuite(QueueStoreCase):
    """purge of ready, dead and all."""

    def fill(self, store: QueueStore) -> None:
        self.put(store, b"ready")
        self.put(store, b"delayed", delay=LONG)
        self.put(store, b"inflight")
        self.put(store, b"dead")
        leased = store.lease(Q, lease_timeout=LONG, limit=2)
        store.dead_letter(Q, leased[1].id, lease_token=leased[1].lease_token)
        assert store.stats(Q) == QueueStats(delayed=1, inflight=1, dead=1, ready=1)

    def test_purge_ready_keeps_inflight_and_dead(self, store: QueueStore) -> None:
        self.fill(store)
        assert store.purge(Q, "ready") == 2
        assert store.stats(Q) == QueueStats(inflight=1, dead=1)

    def test_purge_dead(self, store: QueueStore) -> None:
        self.fill(store)
        assert store.purge(Q, "dead") == 1
        assert store.stats(Q) == QueueStats(ready=1, delayed=1, inflight=1)

    def test_purge_all(self, store: QueueStore) -> None:
        self.fill(store)
        self.put(store, queue="other")
        assert store.purge(Q, "all") == 4
        assert store.stats(Q).total == 0
        assert store.stats("other").total == 1

    def test_purge_ready_includes_expired_leases(
        self, store: QueueStore, timeline: Timeline
    ) -> None:
        self.put(store)
        self.lease_one(store, lease_timeout=timeline.unit)
        timeline.advance(1.5)
        assert store.purge(Q, "ready") == 1


class PeekInspectSuite(QueueStoreCase):
    """peek and inspect never lease."""

    def test_peek_shows_next_without_leasing(self, store: QueueStore) -> None:
        assert store.peek(Q) is None
        self.put(store, b"a", priority=1)
        self.put(store, b"b")
        peeked = store.peek(Q)
        assert peeked is not None
        assert peeked.payload == b"a"
        assert peeked.state is MessageState.READY
        assert peeked.attempts == 0
        leased = self.lease_one(store)
        assert leased.id == peeked.id
        nxt = store.peek(Q)
        assert nxt is not None
        assert nxt.payload == b"b"

    def test_inspect_reports_each_state_without_tokens(self, store: QueueStore) -> None:
        ready = self.put(store, b"r")
        leased = self.put(store, b"l")
        dead = self.put(store, b"d")
        self.lease_one(store)  # "r" is first
        store.dead_letter(Q, dead.id, error="x")
        states = {}
        for m in (ready, leased, dead):
            seen = store.inspect(Q, m.id)
            assert seen is not None
            assert seen.lease_token is None
            states[seen.payload] = seen.state
        assert states == {
            b"r": MessageState.INFLIGHT,
            b"l": MessageState.READY,
            b"d": MessageState.DEAD,
        }
        assert store.inspect(Q, "missing") is None
        assert store.inspect("other", ready.id) is None


class StatsSuite(QueueStoreCase):
    """stats and the list of queues."""

    def test_stats_count_each_state(self, store: QueueStore) -> None:
        assert store.stats(Q) == QueueStats()
        for _ in range(3):
            self.put(store)
        self.put(store, delay=LONG)
        m = self.lease_one(store)
        store.dead_letter(Q, self.lease_one(store).id)
        stats = store.stats(Q)
        assert stats == QueueStats(ready=1, delayed=1, inflight=1, dead=1)
        assert stats.total == 4
        assert m.id

    def test_queues_lists_names_holding_messages(self, store: QueueStore) -> None:
        assert store.queues() == []
        self.put(store, queue="b-queue")
        self.put(store, queue="a.queue")
        m = self.put(store, queue="c:queue")
        assert store.queues() == ["a.queue", "b-queue", "c:queue"]
        store.ack("c:queue", m.id)
        assert store.queues() == ["a.queue", "b-queue"]

    def test_queues_are_isolated(self, store: QueueStore) -> None:
        self.put(store, b"a", queue="alpha")
        self.put(store, b"b", queue="beta")
        m = self.lease_one(store, queue="alpha")
        assert m.payload == b"a"
        assert store.lease("alpha", lease_timeout=LONG) == []
        assert store.stats("beta") == QueueStats(ready=1)
        assert not store.ack("beta", m.id, lease_token=m.lease_token)


class DedupSuite(QueueStoreCase):
    """Deduplication keys on put."""

    def test_second_put_with_stored_key_returns_the_stored_message(self, store: QueueStore) -> None:
        first = self.put(store, b"one", dedup_key="order-1")
        second = self.put(store, b"two", dedup_key="order-1")
        assert second.id == first.id
        assert second.payload == b"one"
        assert second.dedup_key == "order-1"
        assert store.stats(Q).total == 1

    def test_key_is_free_again_after_ack(self, store: QueueStore) -> None:
        self.put(store, dedup_key="k")
        m = self.lease_one(store)
        store.ack(Q, m.id, lease_token=m.lease_token)
        again = self.put(store, b"new", dedup_key="k")
        assert again.id != m.id

    def test_dead_letter_still_holds_its_key(self, store: QueueStore) -> None:
        m = self.put(store, dedup_key="k")
        store.dead_letter(Q, m.id)
        assert self.put(store, dedup_key="k").id == m.id

    def test_keys_are_per_queue(self, store: QueueStore) -> None:
        a = self.put(store, queue="a", dedup_key="k")
        b = self.put(store, queue="b", dedup_key="k")
        assert a.id != b.id


class BatchSuite(QueueStoreCase):
    """put_many, batch lease and ack_many."""

    def test_put_many_stores_all_in_order(self, store: QueueStore) -> None:
        payloads = [str(i).encode() for i in range(150)]
        stored = store.put_many(Q, payloads, codec=CODEC)
        assert [m.payload for m in stored] == payloads
        assert len({m.id for m in stored}) == 150
        assert all(m.state is MessageState.READY for m in stored)
        leased = store.lease(Q, lease_timeout=LONG, limit=100)
        assert [m.payload for m in leased] == payloads[:100]
        assert store.ack_many(Q, [(m.id, m.lease_token) for m in leased]) == 100
        assert store.stats(Q) == QueueStats(ready=50)

    def test_put_many_with_delay_and_priority(self, store: QueueStore) -> None:
        self.put(store, b"plain")
        stored = store.put_many(Q, [b"a", b"b"], codec=CODEC, priority=5)
        store.put_many(Q, [b"c"], codec=CODEC, delay=LONG)
        assert all(m.priority == 5 for m in stored)
        got = [m.payload for m in store.lease(Q, lease_timeout=LONG, limit=5)]
        assert got == [b"a", b"b", b"plain"]
        assert store.stats(Q).delayed == 1

    def test_empty_batch_stores_nothing(self, store: QueueStore) -> None:
        assert store.put_many(Q, [], codec=CODEC) == []
        assert store.queues() == []

    def test_bad_batch_stores_nothing(self, store: QueueStore) -> None:
        self.put(store, b"keep")
        before = self.snapshot(store)
        too_big = b"x" * (MAX_PAYLOAD_BYTES + 1)
        with pytest.raises(PayloadTooLargeError):
            store.put_many(Q, [b"ok", too_big], codec=CODEC)
        with pytest.raises(ValidationError):
            store.put_many(Q, [b"ok", "not bytes"], codec=CODEC)  # type: ignore[list-item]
        with pytest.raises(ValidationError):
            store.put_many(Q, [b"x"] * (MAX_BATCH + 1), codec=CODEC)
        assert self.snapshot(store) == before


class BadInputSuite(QueueStoreCase):
    """Every entry point rejects bad input with a typed error and changes nothing."""

    BAD_NAMES: tuple[Any, ...] = (
        "",
        " ",
        "has space",
        "x" * 129,
        "../etc",
        "a;DROP TABLE messages",
        "-leading-dash",
        "ünïcode",
        "new\nline",
        None,
        42,
        b"bytes",
    )

    @pytest.mark.parametrize("name", BAD_NAMES)
    def test_invalid_queue_names_are_rejected_everywhere(
        self, store: QueueStore, name: Any
    ) -> None:
        self.put(store, b"keep")
        before = self.snapshot(store)
        calls: list[Callable[[], object]] = [
            lambda: store.put(name, b"x", codec="msgpack"),
            lambda: store.put_many(name, [b"x"], codec="msgpack"),
            lambda: store.lease(name, lease_timeout=1),
            lambda: store.ack(name, "id"),
            lambda: store.ack_many(name, [("id", None)]),
            lambda: store.release(name, "id"),
            lambda: store.extend(name, "id", lease_token="t", lease_timeout=1),
            lambda: store.dead_letter(name, "id"),
            lambda: store.requeue_dead(name),
            lambda: store.purge(name, "all"),
            lambda: store.peek(name),
            lambda: store.inspect(name, "id"),
            lambda: store.dead_letters(name),
            lambda: store.stats(name),
            lambda: store.wait(name, 0),
        ]
        for call in calls:
            with pytest.raises(InvalidQueueNameError):
                call()
        assert self.snapshot(store) == before

    @pytest.mark.parametrize("message_id", [None, 42, b"id", ["id"]])
    def test_non_string_message_ids_are_rejected(self, store: QueueStore, message_id: Any) -> None:
        self.put(store, b"keep")
        m = self.lease_one(store)
        before = self.snapshot(store)
        calls: list[Callable[[], object]] = [
            lambda: store.ack(Q, message_id),
            lambda: store.ack_many(Q, [(message_id, None)]),
            lambda: store.release(Q, message_id),
            lambda: store.extend(Q, message_id, lease_token="t", lease_timeout=1),
            lambda: store.dead_letter(Q, message_id),
            lambda: store.requeue_dead(Q, [message_id]),
            lambda: store.inspect(Q, message_id),
        ]
        for call in calls:
            with pytest.raises(ValidationError):
                call()
        assert self.snapshot(store) == before
        assert store.ack(Q, m.id, lease_token=m.lease_token)

    @pytest.mark.parametrize(
        "leases",
        ["id", "", None, [("id",)], [("id", None, None)], [["id", None]], [("id", 7)], [None]],
        ids=[
            "string",
            "empty-string",
            "no-sequence",
            "one-item",
            "three-items",
            "list-pair",
            "int-token",
            "none",
        ],
    )
    def test_malformed_ack_many_leases_ack_nothing(self, store: QueueStore, leases: Any) -> None:
        m = self.put(store, b"keep")
        before = self.snapshot(store)
        with pytest.raises(ValidationError):
            # The valid pair first: a rejected batch must not half-apply.
            store.ack_many(Q, [(m.id, None), *leases] if isinstance(leases, list) else leases)
        assert self.snapshot(store) == before

    @pytest.mark.parametrize(
        "message_id", ["", "0" * 32, "f" * 32, "x" * 32, " " + "0" * 31, "0x" + "0" * 30]
    )
    def test_unknown_ids_name_no_message(self, store: QueueStore, message_id: str) -> None:
        self.put(store, b"keep")
        m = self.lease_one(store)
        before = self.snapshot(store)
        assert store.ack(Q, message_id) is False
        assert store.ack_many(Q, [(message_id, None)]) == 0
        assert store.release(Q, message_id) is False
        assert store.extend(Q, message_id, lease_token="t", lease_timeout=1) is False
        assert store.dead_letter(Q, message_id) is False
        assert store.requeue_dead(Q, [message_id]) == 0
        assert store.inspect(Q, message_id) is None
        assert self.snapshot(store) == before
        assert store.ack(Q, m.id, lease_token=m.lease_token)

    @pytest.mark.parametrize("delay", [-1, -0.001, math.nan, math.inf, "5", None, True])
    def test_bad_delays(self, store: QueueStore, delay: Any) -> None:
        m = self.put(store, b"keep")
        before = self.snapshot(store)
        with pytest.raises(ValidationError):
            self.put(store, delay=delay)
        with pytest.raises(ValidationError):
            store.put_many(Q, [b"x"], codec="msgpack", delay=delay)
        with pytest.raises(ValidationError):
            store.release(Q, m.id, delay=delay)
        assert self.snapshot(store) == before

    @pytest.mark.parametrize("timeout", [0, -1, math.nan, math.inf, "1", None])
    def test_bad_lease_timeouts(self, store: QueueStore, timeout: Any) -> None:
        self.put(store, b"keep")
        before = self.snapshot(store)
        with pytest.raises(ValidationError):
            store.lease(Q, lease_timeout=timeout)
        assert self.snapshot(store) == before

    def test_bad_extend_timeout_keeps_lease(self, store: QueueStore) -> None:
        self.put(store)
        m = self.lease_one(store)
        assert m.lease_token is not None
        for timeout in (0, -5, math.nan):
            with pytest.raises(ValidationError):
                store.extend(Q, m.id, lease_token=m.lease_token, lease_timeout=timeout)
        assert store.extend(Q, m.id, lease_token=m.lease_token, lease_timeout=LONG)

    @pytest.mark.parametrize("limit", [0, -1, MAX_BATCH + 1, 1.5, "2", True])
    def test_bad_limits(self, store: QueueStore, limit: Any) -> None:
        self.put(store, b"keep")
        before = self.snapshot(store)
        with pytest.raises(ValidationError):
            store.lease(Q, lease_timeout=1, limit=limit)
        assert self.snapshot(store) == before

    @pytest.mark.parametrize("priority", [MAX_PRIORITY + 1, -(2**31) - 1, 1.5, "1", True, None])
    def test_bad_priorities(self, store: QueueStore, priority: Any) -> None:
        self.put(store, b"keep")
        before = self.snapshot(store)
        with pytest.raises(ValidationError):
            self.put(store, priority=priority)
        assert self.snapshot(store) == before

    @pytest.mark.parametrize("payload", ["text", None, 12, bytearray(b"x")])
    def test_payload_must_be_bytes(self, store: QueueStore, payload: Any) -> None:
        self.put(store, b"keep")
        before = self.snapshot(store)
        with pytest.raises(ValidationError):
            store.put(Q, payload, codec="msgpack")
        assert self.snapshot(store) == before

    def test_oversized_payload(self, store: QueueStore) -> None:
        self.put(store, b"keep")
        before = self.snapshot(store)
        with pytest.raises(PayloadTooLargeError):
            self.put(store, b"x" * (MAX_PAYLOAD_BYTES + 1))
        assert self.snapshot(store) == before

    @pytest.mark.parametrize("key", ["", "k" * 513, 5])
    def test_bad_dedup_keys(self, store: QueueStore, key: Any) -> None:
        self.put(store, b"keep")
        before = self.snapshot(store)
        with pytest.raises(ValidationError):
            self.put(store, dedup_key=key)
        assert self.snapshot(store) == before

    def test_bad_purge_target_and_worker_id(self, store: QueueStore) -> None:
        self.put(store, b"keep")
        before = self.snapshot(store)
        with pytest.raises(ValidationError):
            store.purge(Q, "everything")  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            store.lease(Q, lease_timeout=1, leased_by="")
        with pytest.raises(ValidationError):
            store.dead_letters(Q, limit=0)
        with pytest.raises(ValidationError):
            store.wait(Q, -1)
        assert self.snapshot(store) == before

    def test_long_errors_are_truncated_not_rejected(self, store: QueueStore) -> None:
        m = self.put(store)
        assert store.dead_letter(Q, m.id, error="e" * 100_000)
        seen = store.inspect(Q, m.id)
        assert seen is not None
        assert seen.last_error is not None
        assert len(seen.last_error) < 100_000


class HandlesSuite(QueueStoreCase):
    """Several handles on one store, and closing."""

    def test_handles_see_each_others_writes(
        self, make_queue_store: Callable[[], QueueStore]
    ) -> None:
        a, b = make_queue_store(), make_queue_store()
        m = self.put(a, b"shared")
        seen = b.inspect(Q, m.id)
        assert seen is not None
        assert seen.payload == b"shared"
        leased = self.lease_one(b)
        assert a.ack(Q, leased.id, lease_token=leased.lease_token)
        assert b.stats(Q).total == 0

    def test_close_is_idempotent_and_final(
        self, make_queue_store: Callable[[], QueueStore]
    ) -> None:
        store = make_queue_store()
        store.close()
        store.close()
        with pytest.raises(StoreClosedError):
            self.put(store)
        with pytest.raises(StoreClosedError):
            store.stats(Q)
        # Calls with nothing to do still report the closed store.
        with pytest.raises(StoreClosedError):
            store.put_many(Q, [], codec="msgpack")
        with pytest.raises(StoreClosedError):
            store.ack_many(Q, [])
        with pytest.raises(StoreClosedError):
            store.requeue_dead(Q, [])

    def test_threads_share_a_handle_without_loss_or_double_ack(self, store: QueueStore) -> None:
        total, producers, consumers = 400, 4, 4
        acked: list[str] = []
        acked_lock = threading.Lock()
        produced = threading.Event()

        def produce(n: int) -> None:
            for i in range(total // producers):
                self.put(store, f"{n}-{i}".encode())

        def consume() -> None:
            while True:
                leased = store.lease(Q, lease_timeout=LONG, limit=7)
                if not leased:
                    if produced.is_set() and store.stats(Q).ready == 0:
                        return
                    time.sleep(0.001)
                    continue
                for m in leased:
                    if store.ack(Q, m.id, lease_token=m.lease_token):
                        with acked_lock:
                            acked.append(m.id)

        workers = [threading.Thread(target=consume) for _ in range(consumers)]
        makers = [threading.Thread(target=produce, args=(n,)) for n in range(producers)]
        for t in workers + makers:
            t.start()
        for t in makers:
            t.join()
        produced.set()
        for t in workers:
            t.join(timeout=120)
        assert len(acked) == total
        assert len(set(acked)) == total
        assert store.stats(Q).total == 0


class PersistenceSuite(QueueStoreCase):
    """Messages survive closing and reopening a persistent store."""

    def test_reopen_keeps_every_message_and_its_state(
        self,
        make_queue_store: Callable[[], QueueStore],
        capabilities: frozenset[Capability],
    ) -> None:
        self.require(capabilities, Capability.PERSISTENT)
        first = make_queue_store()
        ready = self.put(first, b"ready", priority=2, dedup_key="d")
        dead = self.put(first, b"dead")
        first.dead_letter(Q, dead.id, error="bad")
        first.close()
        second = make_queue_store()
        seen = second.inspect(Q, ready.id)
        assert seen is not None
        assert (seen.payload, seen.priority, seen.dedup_key, seen.state) == (
            b"ready",
            2,
            "d",
            MessageState.READY,
        )
        dead_seen = second.inspect(Q, dead.id)
        assert dead_seen is not None
        assert (dead_seen.state, dead_seen.last_error) == (MessageState.DEAD, "bad")


class WaitSuite(QueueStoreCase):
    """Blocking support: wait wakes on puts and due times, and honours its timeout."""

    def test_wait_wakes_on_a_put_from_another_handle(
        self, make_queue_store: Callable[[], QueueStore]
    ) -> None:
        waiter, producer = make_queue_store(), make_queue_store()
        took = wakes_within(waiter, lambda: self.put(producer))
        assert took < 15, "wait() did not wake after a put"

    def test_wait_returns_when_timeout_passes(self, store: QueueStore) -> None:
        started = time.monotonic()
        store.wait(Q, 0.05)
        assert time.monotonic() - started < 10

    def test_wait_returns_at_once_when_a_message_is_ready(self, store: QueueStore) -> None:
        self.put(store)
        started = time.monotonic()
        store.wait(Q, 30)
        assert time.monotonic() - started < 10

    def test_wait_returns_when_a_delayed_message_becomes_due(self, store: QueueStore) -> None:
        self.put(store, delay=0.3)
        started = time.monotonic()
        store.wait(Q, 30)
        assert time.monotonic() - started < 15


class DecodeSuite(QueueStoreCase):
    """A payload that cannot be decoded is reported with its id and blocks nothing."""

    def test_undecodable_payload_is_leased_and_reported(self, store: QueueStore) -> None:
        bad = store.put(Q, b"\xc1 not msgpack", codec="no-such-codec")
        good = self.put(store, get_serializer(CODEC).dumps({"ok": True}))
        leased = store.lease(Q, lease_timeout=LONG, limit=2)
        assert [m.id for m in leased] == [bad.id, good.id]
        with pytest.raises(MessageDecodeError) as info:
            _ = leased[0].value
        assert info.value.message_id == bad.id
        assert leased[1].value == {"ok": True}

    def test_queue_get_dead_letters_undecodable_and_goes_on(self, store: QueueStore) -> None:
        bad = store.put(Q, b"\xc1\xc1", codec="msgpack")
        queue = PersistentQueue(Q, store)
        queue.put({"n": 1})
        assert queue.get_nowait() == {"n": 1}
        dead = store.inspect(Q, bad.id)
        assert dead is not None
        assert dead.state is MessageState.DEAD
        assert dead.last_error is not None
        assert bad.id in dead.last_error


class QueueValueSuite(QueueStoreCase):
    """Values through PersistentQueue, with each built-in serializer, on the store."""

    @pytest.fixture(params=["msgpack", "json"])
    def serializer(self, request: pytest.FixtureRequest) -> Serializer:
        """The codec the queue encodes with."""
        return get_serializer(request.param)

    VALUES: tuple[Any, ...] = (
        None,
        True,
        0,
        -(2**63),
        2**64 - 1,
        1.5,
        "",
        "ünïcødé ✓",
        [],
        [1, "two", None],
        {"to": "user@example.com", "n": [1, 2, {"deep": True}]},
    )

    def test_values_round_trip(self, store: QueueStore, serializer: Serializer) -> None:
        queue = PersistentQueue(Q, store, serializer=serializer)
        for value in self.VALUES:
            queue.put(value)
        got = [queue.get_nowait() for _ in self.VALUES]
        assert got == list(self.VALUES)

    def test_bytes_round_trip_with_msgpack_and_fail_cleanly_with_json(
        self, store: QueueStore, serializer: Serializer
    ) -> None:
        queue = PersistentQueue(Q, store, serializer=serializer)
        if serializer.name == "json":
            with pytest.raises(UnserializableValueError):
                queue.put(b"raw")
            assert store.stats(Q).total == 0
        else:
            queue.put(b"raw")
            assert queue.get_nowait() == b"raw"

    def test_unserialisable_value_stores_nothing(
        self, store: QueueStore, serializer: Serializer
    ) -> None:
        queue = PersistentQueue(Q, store, serializer=serializer)
        queue.put("keep")
        with pytest.raises(UnserializableValueError):
            queue.put(object())
        with pytest.raises(UnserializableValueError):
            queue.put_many(["fine", object()])
        with pytest.raises(UnserializableValueError):
            queue.put({"nan": math.nan} if serializer.name == "json" else {1: object()})
        assert store.stats(Q) == QueueStats(ready=1)

    def test_reader_decodes_with_the_recorded_codec(
        self,
        store: QueueStore,
        make_queue_store: Callable[[], QueueStore],
        serializer: Serializer,
    ) -> None:
        other = "json" if serializer.name == "msgpack" else "msgpack"
        codec = get_serializer(other)
        store.put(Q, codec.dumps({"written": other}), codec=other)
        queue = PersistentQueue(Q, make_queue_store(), serializer=serializer)
        assert queue.get_nowait() == {"written": other}


class IntegritySuite(QueueStoreCase):
    """Stores offering ``check_integrity`` find nothing wrong after a busy workload."""

    def test_healthy_store_reports_no_problem(self, store: QueueStore) -> None:
        if not isinstance(store, IntegrityCheckable):
            pytest.skip("store does not offer check_integrity")
        for i in range(30):
            self.put(store, bytes([i]), priority=i % 3, dedup_key=f"k{i % 7}", delay=i % 2 * LONG)
        store.put_many("other", [b"a", b"b"], codec=CODEC)
        leased = store.lease(Q, lease_timeout=LONG, limit=6)
        store.ack(Q, leased[0].id, lease_token=leased[0].lease_token)
        store.release(Q, leased[1].id, lease_token=leased[1].lease_token, delay=5)
        store.dead_letter(Q, leased[2].id, lease_token=leased[2].lease_token, error="x")
        store.dead_letter(Q, leased[3].id, lease_token=leased[3].lease_token, error="y")
        store.requeue_dead(Q, [leased[3].id])
        assert store.check_integrity() == []


class LeaseLog:
    """Every lease threads took, checked as it happens: no id is held by two leases at once.

    Consumers call :meth:`leased` right after ``lease`` returns and :meth:`ending`
    right before they ack or release, so a correct store never leases an id
    again between the two. A lease also ends when its ``leased_until`` passes;
    ``margin`` seconds of that are forgiven for clocks read in different places.
    """

    def __init__(self, now: Callable[[], float], margin: float) -> None:
        self._now = now
        self._margin = margin
        self._lock = threading.Lock()
        self._open: dict[str, dict[str, tuple[float, str]]] = {}
        self._tokens: set[str] = set()
        self.count = 0
        """How many leases were logged."""
        self.problems: list[str] = []
        """One line per double lease or reused token."""

    def leased(self, consumer: str, messages: list[QueueMessage]) -> None:
        """Log the leases ``consumer`` was just given."""
        now = self._now()
        with self._lock:
            for m in messages:
                assert m.lease_token is not None
                assert m.leased_until is not None
                self.count += 1
                if m.lease_token in self._tokens:
                    self.problems.append(f"token {m.lease_token!r} handed out twice")
                self._tokens.add(m.lease_token)
                held = self._open.setdefault(m.id, {})
                for token, (until, holder) in held.items():
                    if token != m.lease_token and until - self._margin > now:
                        self.problems.append(
                            f"{m.id} leased by {consumer} at {now:.3f} while {holder}'s "
                            f"lease was valid until {until:.3f}"
                        )
                held[m.lease_token] = (m.leased_until, consumer)

    def ending(self, m: QueueMessage) -> None:
        """Log that the holder of ``m``'s lease is about to settle it."""
        with self._lock:
            assert m.lease_token is not None
            self._open.get(m.id, {}).pop(m.lease_token, None)


class _Ticker:
    """Moves a fake clock along with real time while threads race, so leases can expire."""

    def __init__(self, clock: FakeClock | None) -> None:
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        assert self._clock is not None
        last = time.monotonic()
        while not self._stop.wait(0.002):
            now = time.monotonic()
            self._clock.advance(now - last)
            last = now

    def __enter__(self) -> _Ticker:
        if self._clock is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._clock is not None:
            self._thread.join()


class TimedCase(QueueStoreCase):
    """Base of classes comparing timestamps with the store's clock."""

    @pytest.fixture
    def now(self, clock: FakeClock | None) -> Callable[[], float]:
        """The store's clock: the injected one, else the wall clock."""
        return clock if clock is not None else time.time

    @pytest.fixture
    def tol(self, clock: FakeClock | None) -> float:
        """Absolute tolerance of a timestamp: tiny with a fake clock, seconds with a real one."""
        return 1e-3 if clock is not None else 3.0


class ConcurrentLeaseSuite(TimedCase):
    """Threads racing on one handle and on several: no id is ever held by two leases at once."""

    def race(
        self,
        handles: list[QueueStore],
        log: LeaseLog,
        total: int,
        *,
        lease_timeout: float,
        limit: int,
        abandon_every: int = 0,
    ) -> list[str]:
        """Consume ``total`` messages with one thread per handle; return the acked ids."""
        acked: list[str] = []
        acked_lock = threading.Lock()
        deadline = time.monotonic() + 120

        def consume(n: int, store: QueueStore) -> None:
            seen = 0
            name = f"consumer-{n}"
            while time.monotonic() < deadline:
                with acked_lock:
                    if len(acked) >= total:
                        return
                leased = store.lease(Q, lease_timeout=lease_timeout, leased_by=name, limit=limit)
                log.leased(name, leased)
                if not leased:
                    store.wait(Q, 0.02)
                    continue
                time.sleep(0.001)  # "work", widening the window a double lease needs
                for m in leased:
                    seen += 1
                    if abandon_every and m.attempts == 1 and seen % abandon_every == 0:
                        continue  # left to expire and be delivered again
                    log.ending(m)
                    if store.ack(Q, m.id, lease_token=m.lease_token):
                        with acked_lock:
                            acked.append(m.id)

        threads = [threading.Thread(target=consume, args=(n, h)) for n, h in enumerate(handles)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=150)
        return acked

    @pytest.mark.parametrize("limit", [1, 5])
    @pytest.mark.parametrize("shared", [True, False], ids=["one-handle", "four-handles"])
    def test_long_leases_never_overlap(
        self,
        make_queue_store: Callable[[], QueueStore],
        now: Callable[[], float],
        limit: int,
        shared: bool,
    ) -> None:
        first = make_queue_store()
        handles = [first] * 4 if shared else [first] + [make_queue_store() for _ in range(3)]
        first.put_many(Q, [str(i).encode() for i in range(120)], codec=CODEC)
        log = LeaseLog(now, margin=0.0)
        acked = self.race(handles, log, 120, lease_timeout=LONG, limit=limit)
        assert log.problems == []
        assert sorted(acked) == sorted(set(acked))
        assert len(acked) == 120
        assert log.count == 120
        assert first.stats(Q).total == 0

    @pytest.mark.parametrize("limit", [1, 3])
    def test_short_leases_expire_to_one_holder_at_a_time(
        self,
        make_queue_store: Callable[[], QueueStore],
        clock: FakeClock | None,
        now: Callable[[], float],
        limit: int,
    ) -> None:
        """Half-second leases, some abandoned: each is delivered again only once it expired."""
        handles = [make_queue_store() for _ in range(3)]
        store = handles[0]
        store.put_many(Q, [str(i).encode() for i in range(40)], codec=CODEC)
        log = LeaseLog(now, margin=0.0 if clock is not None else 0.1)
        with _Ticker(clock):
            acked = self.race(handles, log, 40, lease_timeout=0.5, limit=limit, abandon_every=4)
        assert log.problems == []
        assert len(acked) == 40
        assert len(set(acked)) == 40
        assert log.count > 40, "no abandoned lease was delivered again"


class WaitBlocksSuite(QueueStoreCase):
    """wait() blocks while nothing can be leased: consumers must not busy-spin."""

    def count_wakeups(self, store: QueueStore, seconds: float = 1.0) -> int:
        """Lease-then-wait for ``seconds`` of real time; return how many waits returned."""
        wakeups = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            assert store.lease(Q, lease_timeout=LONG) == []
            store.wait(Q, 0.2)
            wakeups += 1
        return wakeups

    def test_wait_blocks_on_an_empty_queue(self, store: QueueStore) -> None:
        # About 5 with 0.2 s waits; spurious early returns are allowed, a spin is not.
        assert self.count_wakeups(store) <= 40

    def test_wait_blocks_while_only_delayed_and_leased_messages_exist(
        self, store: QueueStore
    ) -> None:
        self.put(store, b"later", delay=LONG)
        self.put(store, b"taken")
        self.lease_one(store)
        assert self.count_wakeups(store) <= 40

    def test_waiting_thread_uses_little_cpu(self, store: QueueStore) -> None:
        cpu: list[float] = []

        def waiter() -> None:
            started = time.thread_time()
            store.wait(Q, 0.5)
            store.wait(Q, 0.5)
            cpu.append(time.thread_time() - started)

        t = threading.Thread(target=waiter)
        t.start()
        t.join(timeout=30)
        # A spinning wait burns close to the full second; blocking burns almost none.
        assert cpu
        assert cpu[0] < 0.5


class WaitWakesSuite(QueueStoreCase):
    """wait() returns early after a release or requeue_dead, and when a lease expires."""

    def test_wait_wakes_on_a_release(self, make_queue_store: Callable[[], QueueStore]) -> None:
        waiter, other = make_queue_store(), make_queue_store()
        self.put(other)
        m = self.lease_one(other)
        took = wakes_within(waiter, lambda: other.release(Q, m.id, lease_token=m.lease_token))
        assert took < 15, "wait() did not wake after a release"

    def test_wait_wakes_on_requeue_dead(self, make_queue_store: Callable[[], QueueStore]) -> None:
        waiter, other = make_queue_store(), make_queue_store()
        m = self.put(other)
        assert other.dead_letter(Q, m.id)
        took = wakes_within(waiter, lambda: other.requeue_dead(Q))
        assert took < 15, "wait() did not wake after requeue_dead"

    def test_wait_wakes_when_a_lease_expires(
        self, store: QueueStore, timeline: Timeline, clock: FakeClock | None
    ) -> None:
        self.put(store)
        self.lease_one(store, lease_timeout=0.3)
        if clock is not None:
            clock.advance(0.3)  # wait() then sees the lease expired
        took = wakes_within(store, lambda: None)
        assert took < 15, "wait() did not wake when the lease expired"


class TimestampSuite(TimedCase):
    """Every timestamp equals the store's clock at the call (absolute tolerance)."""

    def test_put_times(self, store: QueueStore, now: Callable[[], float], tol: float) -> None:
        m = self.put(store)
        assert m.created_at == at(now(), tol)
        assert m.available_at == at(now(), tol)
        assert (m.leased_until, m.failed_at) == (None, None)
        later = self.put(store, delay=LONG)
        assert later.created_at == at(now(), tol)
        assert later.available_at == at(now() + LONG, tol)
        seen = store.inspect(Q, later.id)
        assert seen is not None
        assert (seen.created_at, seen.available_at) == (
            at(later.created_at, 1e-3),
            at(later.available_at, 1e-3),
        )

    def test_put_many_times(self, store: QueueStore, now: Callable[[], float], tol: float) -> None:
        codec = CODEC
        for m in store.put_many(Q, [b"a", b"b"], codec=codec, delay=LONG):
            assert m.created_at == at(now(), tol)
            assert m.available_at == at(now() + LONG, tol)
        for m in store.put_many(Q, [b"c"], codec=codec):
            assert m.available_at == at(now(), tol)

    def test_lease_and_extend_times(
        self, store: QueueStore, timeline: Timeline, now: Callable[[], float], tol: float
    ) -> None:
        put = self.put(store)
        timeline.advance(1)
        m = self.lease_one(store, lease_timeout=600)
        assert m.leased_until == at(now() + 600, tol)
        assert m.created_at == at(put.created_at, 1e-3)
        assert m.lease_token is not None
        timeline.advance(1)
        assert store.extend(Q, m.id, lease_token=m.lease_token, lease_timeout=1200)
        seen = store.inspect(Q, m.id)
        assert seen is not None
        assert seen.leased_until == at(now() + 1200, tol)

    def test_release_times(
        self, store: QueueStore, timeline: Timeline, now: Callable[[], float], tol: float
    ) -> None:
        self.put(store)
        m = self.lease_one(store)
        timeline.advance(1)
        assert store.release(Q, m.id, lease_token=m.lease_token, delay=LONG, error="boom")
        seen = store.inspect(Q, m.id)
        assert seen is not None
        assert seen.failed_at == at(now(), tol)
        assert seen.available_at == at(now() + LONG, tol)
        assert seen.leased_until is None

    def test_dead_letter_and_requeue_times(
        self, store: QueueStore, timeline: Timeline, now: Callable[[], float], tol: float
    ) -> None:
        m = self.put(store)
        timeline.advance(1)
        assert store.dead_letter(Q, m.id, error="poison")
        seen = store.inspect(Q, m.id)
        assert seen is not None
        assert seen.failed_at == at(now(), tol)
        failed_at = seen.failed_at
        assert failed_at is not None
        timeline.advance(1)
        assert store.requeue_dead(Q, [m.id]) == 1
        back = store.inspect(Q, m.id)
        assert back is not None
        assert back.available_at == at(now(), tol)
        assert back.failed_at == at(failed_at, 1e-3)
        assert back.created_at == at(m.created_at, 1e-3)


def _state(store: QueueStore, queue: str, message_id: str) -> tuple[Any, ...] | None:
    m = store.inspect(queue, message_id)
    if m is None:
        return None
    return (
        m.state,
        m.attempts,
        m.payload,
        m.available_at,
        m.leased_until,
        m.leased_by,
        m.last_error,
        m.failed_at,
    )


class IsolationSuite(QueueStoreCase):
    """A verb given an id acts only within its own queue; purge empties only its queue."""

    def test_every_id_verb_ignores_another_queues_messages(self, store: QueueStore) -> None:
        self.put(store, b"ready", queue="alpha")
        self.put(store, b"leased", queue="alpha")
        dead = self.put(store, b"dead", queue="alpha")
        self.put(store, b"other-ready", queue="beta")
        ready = self.put(store, b"ready2", queue="alpha")
        leased = self.lease_one(store, queue="alpha", leased_by="w")
        leased2 = self.lease_one(store, queue="alpha", leased_by="w")
        assert store.dead_letter("alpha", dead.id, error="poison")
        ids = [ready.id, leased.id, leased2.id, dead.id]
        tokens = {leased.id: leased.lease_token, leased2.id: leased2.lease_token}
        before = {i: _state(store, "alpha", i) for i in ids}
        beta_before = store.stats("beta")
        for i in ids:
            token = tokens.get(i)
            assert store.inspect("beta", i) is None
            assert not store.extend("beta", i, lease_token=token or "t", lease_timeout=LONG)
            assert not store.release("beta", i, lease_token=token, error="x")
            assert not store.release("beta", i, error="x")
            assert not store.dead_letter("beta", i, lease_token=token, error="x")
            assert not store.dead_letter("beta", i, error="x")
            assert store.requeue_dead("beta", [i]) == 0
            assert store.ack_many("beta", [(i, token)]) == 0
            assert store.ack_many("beta", [(i, None)]) == 0
            assert not store.ack("beta", i, lease_token=token)
            assert not store.ack("beta", i)
        assert store.requeue_dead("beta") == 0
        assert {i: _state(store, "alpha", i) for i in ids} == before
        assert store.stats("beta") == beta_before
        assert store.stats("alpha") == QueueStats(ready=1, inflight=2, dead=1)

    @pytest.mark.parametrize("target", ["ready", "dead", "all"])
    def test_purge_leaves_other_queues_alone(self, store: QueueStore, target: Any) -> None:
        for queue in ("alpha", "beta"):
            self.put(store, queue=queue)
            self.put(store, queue=queue, delay=LONG)
            self.put(store, queue=queue)
            m = self.put(store, queue=queue)
            store.dead_letter(queue, m.id)
            self.lease_one(store, queue=queue)
        before = store.stats("beta")
        store.purge("alpha", target)
        assert store.stats("beta") == before
        assert store.purge("alpha", "all") > 0 or target == "all"
        assert store.stats("beta") == before
        assert store.queues() == ["beta"]


class MessageStateSuite(QueueStoreCase):
    """Verbs on a message in the wrong state return False (or 0) and change nothing."""

    def test_extend_only_renews_a_held_lease(self, store: QueueStore, timeline: Timeline) -> None:
        released = self.put(store, b"released")
        m = self.lease_one(store)
        assert m.lease_token is not None
        assert store.release(Q, m.id, lease_token=m.lease_token, delay=LONG)
        token = m.lease_token
        cases: list[tuple[str, str]] = [(released.id, token)]
        dead = self.put(store, b"dead")
        d = self.lease_one(store)
        assert d.id == dead.id
        assert d.lease_token is not None
        assert store.dead_letter(Q, d.id, lease_token=d.lease_token)
        cases.append((d.id, d.lease_token))
        ready = self.put(store, b"ready")
        cases.append((ready.id, token))
        cases.append((ready.id, d.lease_token))
        for message_id, tok in cases:
            before = _state(store, Q, message_id)
            assert not store.extend(Q, message_id, lease_token=tok, lease_timeout=LONG)
            assert _state(store, Q, message_id) == before
        acked = self.lease_one(store)
        assert acked.lease_token is not None
        assert store.ack(Q, acked.id, lease_token=acked.lease_token)
        assert not store.extend(Q, acked.id, lease_token=acked.lease_token, lease_timeout=LONG)
        assert store.inspect(Q, acked.id) is None

    def test_extend_fails_once_someone_else_took_the_expired_lease(
        self, store: QueueStore, timeline: Timeline
    ) -> None:
        self.put(store)
        first = self.lease_one(store, lease_timeout=timeline.unit)
        timeline.advance(1.5)
        second = self.lease_one(store)
        assert first.lease_token is not None
        before = _state(store, Q, first.id)
        assert not store.extend(Q, first.id, lease_token=first.lease_token, lease_timeout=LONG)
        assert _state(store, Q, first.id) == before
        assert second.lease_token is not None
        assert store.extend(Q, second.id, lease_token=second.lease_token, lease_timeout=LONG)

    def test_dead_messages_refuse_release_dead_letter_and_extend(self, store: QueueStore) -> None:
        self.put(store)
        m = self.lease_one(store)
        assert m.lease_token is not None
        assert store.dead_letter(Q, m.id, lease_token=m.lease_token, error="first")
        before = _state(store, Q, m.id)
        assert not store.release(Q, m.id)
        assert not store.release(Q, m.id, lease_token=m.lease_token)
        assert not store.dead_letter(Q, m.id, error="second")
        assert not store.dead_letter(Q, m.id, lease_token=m.lease_token, error="second")
        assert not store.extend(Q, m.id, lease_token=m.lease_token, lease_timeout=LONG)
        assert not store.ack(Q, m.id, lease_token=m.lease_token)
        assert store.ack_many(Q, [(m.id, m.lease_token)]) == 0
        assert _state(store, Q, m.id) == before
        assert store.stats(Q) == QueueStats(dead=1)

    def test_dead_letters_are_never_leased_again(
        self, store: QueueStore, timeline: Timeline
    ) -> None:
        """Not when their old lease or delay runs out either."""
        self.put(store, b"leased")
        ready = self.put(store, b"ready")
        delayed = self.put(store, b"delayed", delay=timeline.unit)
        m = self.lease_one(store, lease_timeout=timeline.unit)
        assert store.dead_letter(Q, m.id, lease_token=m.lease_token)
        assert store.dead_letter(Q, ready.id)
        assert store.dead_letter(Q, delayed.id)
        assert store.lease(Q, lease_timeout=LONG, limit=5) == []
        timeline.advance(1.5)
        assert store.lease(Q, lease_timeout=LONG, limit=5) == []
        assert store.peek(Q) is None
        assert store.stats(Q) == QueueStats(dead=3)
        for message_id in (m.id, ready.id, delayed.id):
            seen = store.inspect(Q, message_id)
            assert seen is not None
            assert seen.state is MessageState.DEAD

    @pytest.mark.parametrize("by_id", [True, False], ids=["by-id", "all"])
    def test_requeue_dead_resets_attempts(self, store: QueueStore, by_id: bool) -> None:
        self.put(store)
        for _ in range(3):
            m = self.lease_one(store)
            assert store.release(Q, m.id, lease_token=m.lease_token)
        m = self.lease_one(store)
        assert m.attempts == 4
        assert store.dead_letter(Q, m.id, lease_token=m.lease_token, error="poison")
        assert store.requeue_dead(Q, [m.id] if by_id else None) == 1
        seen = store.inspect(Q, m.id)
        assert seen is not None
        assert (seen.state, seen.attempts, seen.last_error) == (MessageState.READY, 0, "poison")
        assert self.lease_one(store).attempts == 1

    def test_requeue_dead_skips_ready_delayed_and_leased(self, store: QueueStore) -> None:
        ready = self.put(store, b"ready")
        delayed = self.put(store, b"delayed", delay=LONG)
        self.put(store, b"leased")
        leased = store.lease(Q, lease_timeout=LONG, limit=2)
        assert [m.payload for m in leased] == [b"ready", b"leased"]
        store.release(Q, ready.id, lease_token=leased[0].lease_token)
        ids = [ready.id, delayed.id, leased[1].id]
        before = {i: _state(store, Q, i) for i in ids}
        assert store.requeue_dead(Q, ids) == 0
        assert store.requeue_dead(Q) == 0
        assert {i: _state(store, Q, i) for i in ids} == before

    def test_stale_token_settles_nothing_on_a_released_message(self, store: QueueStore) -> None:
        self.put(store)
        m = self.lease_one(store)
        assert store.release(Q, m.id, lease_token=m.lease_token)
        before = _state(store, Q, m.id)
        assert not store.ack(Q, m.id, lease_token=m.lease_token)
        assert store.ack_many(Q, [(m.id, m.lease_token)]) == 0
        assert not store.release(Q, m.id, lease_token=m.lease_token, error="x")
        assert not store.dead_letter(Q, m.id, lease_token=m.lease_token, error="x")
        assert _state(store, Q, m.id) == before


class DistinctNamesSuite(QueueStoreCase):
    """Queue names and dedup keys differing only in case or spaces are different."""

    NAMES = ("jobs", "Jobs", "JOBS", "jobs.", "jobs_")
    KEYS = ("k", "K", "k ", " k", "k\t", "k\u00a0")

    def test_queue_names_differing_in_case_are_distinct(self, store: QueueStore) -> None:
        ids = {name: self.put(store, name.encode(), queue=name).id for name in self.NAMES}
        assert store.queues() == sorted(self.NAMES)
        for name in self.NAMES:
            assert store.stats(name) == QueueStats(ready=1)
            assert store.inspect(name, ids[name]) is not None
            other = next(n for n in self.NAMES if n != name)
            assert store.inspect(other, ids[name]) is None
        m = self.lease_one(store, queue="Jobs")
        assert m.payload == b"Jobs"
        assert store.ack("Jobs", m.id, lease_token=m.lease_token)
        assert store.stats("jobs") == QueueStats(ready=1)
        assert store.purge("JOBS", "all") == 1
        assert store.queues() == sorted(set(self.NAMES) - {"Jobs", "JOBS"})

    def test_dedup_keys_differing_in_case_or_spaces_are_distinct(self, store: QueueStore) -> None:
        stored = [self.put(store, key.encode(), dedup_key=key) for key in self.KEYS]
        assert len({m.id for m in stored}) == len(self.KEYS)
        assert [m.dedup_key for m in stored] == list(self.KEYS)
        again = [self.put(store, b"dup", dedup_key=key) for key in self.KEYS]
        assert [m.id for m in again] == [m.id for m in stored]
        assert store.stats(Q).total == len(self.KEYS)


class ClosedStoreSuite(QueueStoreCase):
    """After close(), every method raises StoreClosedError; close() is idempotent."""

    def test_a_store_is_a_context_manager_that_closes_on_exit(
        self, make_queue_store: Callable[[], QueueStore]
    ) -> None:
        store = make_queue_store()
        assert isinstance(store, AbstractContextManager), "a store must work in `with`"
        with store as entered:
            assert entered is store
            self.put(store)
        with pytest.raises(StoreClosedError):
            store.stats(Q)
        again = make_queue_store()
        assert isinstance(again, AbstractContextManager)
        with pytest.raises(KeyError), again:
            raise KeyError("the block failed")
        with pytest.raises(StoreClosedError):
            again.stats(Q)

    def test_every_method_raises_after_close(
        self, make_queue_store: Callable[[], QueueStore]
    ) -> None:
        store = make_queue_store()
        m = self.put(store)
        leased = self.lease_one(store)
        token = leased.lease_token or "t"
        codec = CODEC
        store.close()
        store.close()
        calls: dict[str, Callable[[], object]] = {
            "put": lambda: store.put(Q, b"x", codec=codec),
            "put_many": lambda: store.put_many(Q, [b"x"], codec=codec),
            "lease": lambda: store.lease(Q, lease_timeout=1),
            "wait": lambda: store.wait(Q, 0),
            "ack": lambda: store.ack(Q, m.id, lease_token=token),
            "ack_many": lambda: store.ack_many(Q, [(m.id, token)]),
            "release": lambda: store.release(Q, m.id, lease_token=token),
            "extend": lambda: store.extend(Q, m.id, lease_token=token, lease_timeout=1),
            "dead_letter": lambda: store.dead_letter(Q, m.id),
            "requeue_dead": lambda: store.requeue_dead(Q),
            "purge": lambda: store.purge(Q, "all"),
            "peek": lambda: store.peek(Q),
            "inspect": lambda: store.inspect(Q, m.id),
            "dead_letters": lambda: store.dead_letters(Q),
            "stats": lambda: store.stats(Q),
            "queues": store.queues,
        }
        if isinstance(store, IntegrityCheckable):
            calls["check_integrity"] = store.check_integrity
        missed = []
        for name, call in calls.items():
            try:
                call()
            except StoreClosedError:
                continue
            missed.append(name)
        assert missed == [], f"no StoreClosedError from {missed}"
        store.close()


class RecordFieldsSuite(QueueStoreCase):
    """Every verb returns whole records: the right queue, codec and counts, never a default."""

    @staticmethod
    def assert_whole(m: QueueMessage | None, codec: str, queue: str = Q) -> QueueMessage:
        """``m`` is a message of ``queue`` written with ``codec``."""
        assert m is not None
        assert (m.queue, m.codec) == (queue, codec)
        assert isinstance(m.id, str)
        assert m.id
        return m

    def test_every_verb_returns_the_queue_and_codec(self, store: QueueStore) -> None:
        codec = CODEC
        keyed = self.assert_whole(self.put(store, b"k", dedup_key="key"), codec)
        self.assert_whole(self.put(store, b"again", dedup_key="key"), codec)
        for m in store.put_many(Q, [b"a", b"b"], codec="other-codec"):
            self.assert_whole(m, "other-codec")
        self.assert_whole(store.peek(Q), codec)
        leased = store.lease(Q, lease_timeout=LONG, limit=3)
        assert [m.codec for m in leased] == [codec, "other-codec", "other-codec"]
        for m in leased:
            self.assert_whole(store.inspect(Q, m.id), m.codec)
        assert store.dead_letter(Q, keyed.id, error="x")
        [dead] = store.dead_letters(Q)
        self.assert_whole(dead, codec)

    def test_stats_count_several_of_each_state(self, store: QueueStore) -> None:
        for _ in range(3):
            self.put(store)
        for _ in range(2):
            self.put(store, delay=LONG)
        leased = store.lease(Q, lease_timeout=LONG, limit=3)
        for m in leased[:2]:
            assert store.dead_letter(Q, m.id, lease_token=m.lease_token)
        self.put(store)
        self.put(store)
        assert store.stats(Q) == QueueStats(ready=2, delayed=2, inflight=1, dead=2)

    def test_a_message_is_due_exactly_at_its_available_at(
        self, store: QueueStore, clock: FakeClock | None
    ) -> None:
        if clock is None:
            pytest.skip("needs the store's clock to stop exactly at a due time")
        m = self.put(store, delay=10)
        clock.advance(10)
        assert clock() == m.available_at
        assert store.stats(Q).ready == 1
        assert self.lease_one(store).id == m.id
