"""The LMDB store against the conformance suite, with both serializers."""

import pytest

from localqueue.testing import AttemptStoreSuite, QueueStoreSuite


class TestLMDBQueueStore(QueueStoreSuite):
    @pytest.fixture(params=["msgpack", "json"])
    def store_url(self, request: pytest.FixtureRequest, tmp_path: object) -> str:
        return f"lmdb:///{tmp_path}/env?serializer={request.param}"


class TestLMDBAttemptStore(AttemptStoreSuite):
    @pytest.fixture
    def store_url(self, tmp_path: object) -> str:
        return f"lmdb:///{tmp_path}/env"
