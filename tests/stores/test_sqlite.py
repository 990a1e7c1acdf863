"""The SQLite stores against the conformance suite."""

from pathlib import Path

import pytest

from localqueue.testing import AttemptStoreSuite, QueueStoreSuite


class TestSQLiteQueueStore(QueueStoreSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/queue.db"


class TestSQLiteAttemptStore(AttemptStoreSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/attempts.db"
