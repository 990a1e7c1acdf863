"""The memory store against the conformance suite."""

from collections.abc import Callable

import pytest

from localqueue.protocols import AttemptStore, QueueStore
from localqueue.stores.memory import MemoryAttemptStore, MemoryQueueStore
from localqueue.testing import AttemptStoreSuite, FakeClock, QueueStoreSuite


class TestMemoryQueueStore(QueueStoreSuite):
    @pytest.fixture
    def store_url(self) -> str:
        return "memory://"

    @pytest.fixture
    def make_queue_store(self, clock: FakeClock | None) -> Callable[[], QueueStore]:
        # memory:// opens a new store each time; handles must share one instance.
        store = MemoryQueueStore(clock=clock)
        return lambda: store


class TestMemoryAttemptStore(AttemptStoreSuite):
    @pytest.fixture
    def store_url(self) -> str:
        return "memory://"

    @pytest.fixture
    def make_attempt_store(self, clock: FakeClock | None) -> Callable[[], AttemptStore]:
        store = MemoryAttemptStore(clock=clock)
        return lambda: store


def test_heaps_stay_bounded_when_messages_leave_without_being_leased() -> None:
    # Acks by id and heartbeats leave stale heap entries behind; the engine must
    # compact them, or a put/ack loop with no consumer grows without bound.
    # (Heap sizes are internal; this engine-specific test reads them on purpose.)
    store = MemoryQueueStore()
    for _ in range(10_000):
        message = store.put("q", b"x", codec="msgpack")
        assert store.ack("q", message.id)
    queue_state = store._queues["q"]
    assert len(queue_state.ready) <= 1024
    store.put("q", b"held", codec="msgpack")
    held = store.lease("q", lease_timeout=60)[0]
    assert held.lease_token is not None
    for _ in range(10_000):
        assert store.extend("q", held.id, lease_token=held.lease_token, lease_timeout=60)
    assert len(queue_state.timers) <= 2 * len(queue_state.records) + 1025
    assert store.stats("q").inflight == 1
