"""The Redis stores against localqueue's conformance suite."""

import pytest

from localqueue.testing import AttemptStoreSuite, QueueStoreSuite

pytestmark = pytest.mark.services


class TestRedisQueueStore(QueueStoreSuite):
    @pytest.fixture
    def store_url(self, redis_url: str) -> str:
        return redis_url


class TestRedisAttemptStore(AttemptStoreSuite):
    @pytest.fixture
    def store_url(self, redis_url: str) -> str:
        return redis_url
