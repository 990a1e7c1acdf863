"""The whole conformance suite against ``lqmutant://`` (run only by ``test_mutants.py``)."""

from pathlib import Path

import pytest

from localqueue.testing import AttemptStoreSuite, QueueStoreSuite


class TestMutantQueueStore(QueueStoreSuite):
    """Every queue-store conformance test."""

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        """A fresh store per test (the memory backend keys instances on it)."""
        return f"lqmutant:///{tmp_path}/store.db"


class TestMutantAttemptStore(AttemptStoreSuite):
    """Every attempt-store conformance test."""

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        """A fresh store per test."""
        return f"lqmutant:///{tmp_path}/store.db"
