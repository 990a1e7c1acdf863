"""The LMDB store against the conformance suite."""

from pathlib import Path

import pytest

from localqueue.testing import AttemptStoreSuite, QueueStoreSuite


class TestLMDBQueueStore(QueueStoreSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"lmdb:///{tmp_path}/env"


class TestLMDBAttemptStore(AttemptStoreSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"lmdb:///{tmp_path}/env"
