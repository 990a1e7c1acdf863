"""Conformance tests of the queue-level delivery cap (``lease(..., max_deliveries=N)``)."""

from __future__ import annotations

from typing import Any

import pytest

from localqueue._models import MessageState
from localqueue.errors import ValidationError
from localqueue.protocols import QueueStore
from localqueue.testing._base import Timeline
from localqueue.testing.queue_store import LONG, Q, QueueStoreCase

__all__ = ["MaxDeliveriesSuite"]


class MaxDeliveriesSuite(QueueStoreCase):
    """A message delivered ``max_deliveries`` times without an ack is dead-lettered
    at its next lease, atomically, with a recorded reason; the next one is leased instead."""

    @staticmethod
    def deliver(store: QueueStore, timeline: Timeline, times: int, **options: Any) -> str:
        """Lease the only message ``times`` times, letting each lease expire."""
        message_id = ""
        for _ in range(times):
            message = QueueStoreCase.lease_one(store, lease_timeout=timeline.unit, **options)
            message_id = message.id
            timeline.advance(1.5)
        return message_id

    def test_the_lease_after_the_last_delivery_dead_letters_it(
        self, store: QueueStore, timeline: Timeline
    ) -> None:
        self.put(store, b"job")
        message_id = self.deliver(store, timeline, 2, max_deliveries=2)
        assert store.lease(Q, lease_timeout=LONG, max_deliveries=2) == []
        dead = store.inspect(Q, message_id)
        assert dead is not None
        assert dead.state is MessageState.DEAD
        assert dead.attempts == 2
        assert dead.lease_token is None
        assert dead.failed_at is not None
        assert dead.last_error is not None
        assert "max_deliveries=2" in dead.last_error
        assert store.stats(Q).dead == 1
        assert store.stats(Q).ready == 0

    def test_a_message_under_the_cap_is_leased(self, store: QueueStore, timeline: Timeline) -> None:
        self.put(store, b"job")
        self.deliver(store, timeline, 2, max_deliveries=3)
        third = self.lease_one(store, max_deliveries=3)
        assert third.attempts == 3
        assert third.state is MessageState.INFLIGHT

    def test_releases_count_as_deliveries(self, store: QueueStore) -> None:
        self.put(store, b"job")
        for _ in range(2):
            m = self.lease_one(store, max_deliveries=2)
            assert store.release(Q, m.id, lease_token=m.lease_token)
        assert store.lease(Q, lease_timeout=LONG, max_deliveries=2) == []
        assert store.stats(Q).dead == 1

    def test_the_next_message_is_leased_in_its_place(
        self, store: QueueStore, timeline: Timeline
    ) -> None:
        spent = self.put(store, b"spent", priority=5)
        self.deliver(store, timeline, 1, max_deliveries=1)
        fresh = self.put(store, b"fresh")
        leased = self.lease_one(store, max_deliveries=1)
        assert leased.id == fresh.id
        assert leased.payload == b"fresh"
        seen = store.inspect(Q, spent.id)
        assert seen is not None
        assert seen.state is MessageState.DEAD

    def test_a_batch_lease_passes_over_every_spent_message(
        self, store: QueueStore, timeline: Timeline
    ) -> None:
        spent = [self.put(store, b"%d" % i, priority=9) for i in range(3)]
        leased = store.lease(Q, lease_timeout=timeline.unit, limit=3)
        assert len(leased) == 3
        timeline.advance(1.5)
        fresh = [self.put(store, b"f%d" % i) for i in range(2)]
        again = store.lease(Q, lease_timeout=LONG, limit=2, max_deliveries=1)
        assert [m.id for m in again] == [m.id for m in fresh]
        assert sorted(m.id for m in store.dead_letters(Q)) == sorted(m.id for m in spent)

    def test_without_a_cap_nothing_is_dead_lettered(
        self, store: QueueStore, timeline: Timeline
    ) -> None:
        self.put(store, b"job")
        self.deliver(store, timeline, 4)
        assert self.lease_one(store).attempts == 5
        assert store.stats(Q).dead == 0

    def test_a_requeued_message_gets_a_fresh_budget(
        self, store: QueueStore, timeline: Timeline
    ) -> None:
        self.put(store, b"job")
        message_id = self.deliver(store, timeline, 1, max_deliveries=1)
        assert store.lease(Q, lease_timeout=LONG, max_deliveries=1) == []
        assert store.requeue_dead(Q, [message_id]) == 1
        again = self.lease_one(store, max_deliveries=1)
        assert again.id == message_id
        assert again.attempts == 1

    def test_other_queues_are_untouched(self, store: QueueStore, timeline: Timeline) -> None:
        self.put(store, b"other", queue="other")
        other = self.lease_one(store, queue="other", lease_timeout=timeline.unit)
        timeline.advance(1.5)
        self.put(store, b"job")
        self.lease_one(store, max_deliveries=1)
        seen = store.inspect("other", other.id)
        assert seen is not None
        assert seen.state is MessageState.READY

    @pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
    def test_a_bad_cap_is_refused_and_changes_nothing(
        self, store: QueueStore, timeline: Timeline, bad: object
    ) -> None:
        self.put(store, b"job")
        self.deliver(store, timeline, 1)
        before = self.snapshot(store)
        with pytest.raises(ValidationError):
            store.lease(Q, lease_timeout=LONG, max_deliveries=bad)  # type: ignore[arg-type]
        assert self.snapshot(store) == before
