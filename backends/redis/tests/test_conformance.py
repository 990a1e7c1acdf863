"""The Redis stores against localqueue's conformance suite, with both serializers."""

import pytest

from localqueue.testing import AttemptStoreSuite, QueueStoreSuite

pytestmark = pytest.mark.services


class TestRedisQueueStore(QueueStoreSuite):
    @pytest.fixture(params=["msgpack", "json"])
    def store_url(self, request: pytest.FixtureRequest, redis_url: str) -> str:
        return f"{redis_url}&serializer={request.param}"


class TestRedisAttemptStore(AttemptStoreSuite):
    @pytest.fixture
    def store_url(self, redis_url: str) -> str:
        return redis_url
