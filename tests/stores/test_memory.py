"""The memory store against the conformance suite, with both serializers."""

from collections.abc import Callable

import pytest

from localqueue.protocols import AttemptStore, QueueStore
from localqueue.stores.memory import MemoryAttemptStore, MemoryQueueStore
from localqueue.testing import AttemptStoreSuite, FakeClock, QueueStoreSuite


class TestMemoryQueueStore(QueueStoreSuite):
    @pytest.fixture(params=["msgpack", "json"])
    def store_url(self, request: pytest.FixtureRequest) -> str:
        return f"memory://?serializer={request.param}"

    @pytest.fixture
    def make_queue_store(self, store_url: str, clock: FakeClock | None) -> Callable[[], QueueStore]:
        # memory:// opens a new store each time; handles must share one instance.
        serializer = store_url.rpartition("=")[2]
        store = MemoryQueueStore(serializer=serializer, clock=clock)
        return lambda: store


class TestMemoryAttemptStore(AttemptStoreSuite):
    @pytest.fixture
    def store_url(self) -> str:
        return "memory://"

    @pytest.fixture
    def make_attempt_store(self, clock: FakeClock | None) -> Callable[[], AttemptStore]:
        store = MemoryAttemptStore(clock=clock)
        return lambda: store
