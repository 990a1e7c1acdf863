"""The SQLite stores against the conformance suite, with both serializers."""

from pathlib import Path

import pytest

from localqueue.testing import AttemptStoreSuite, QueueStoreSuite


class TestSQLiteQueueStore(QueueStoreSuite):
    @pytest.fixture(params=["msgpack", "json"])
    def store_url(self, request: pytest.FixtureRequest, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/queue.db?serializer={request.param}"


class TestSQLiteAttemptStore(AttemptStoreSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/attempts.db"
