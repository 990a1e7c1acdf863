"""The whole conformance suite against ``lqmutant://`` (run only by ``test_mutants.py``).

The fault-injection classes of :mod:`localqueue.testing.faults` and the capacity
class of :mod:`localqueue.testing.capacity` are part of the shipped suite; they
are mixed in here for as long as ``QueueStoreSuite`` and ``AttemptStoreSuite``
do not include them yet.
"""

from pathlib import Path

import pytest

from localqueue.testing import AttemptStoreSuite, QueueStoreSuite
from localqueue.testing.capacity import CapacitySuite
from localqueue.testing.faults import (
    AttemptEngineErrorSuite,
    AttemptLockTimeoutSuite,
    EngineErrorSuite,
    FaultHookSuite,
    LockTimeoutSuite,
)


def _missing(bundle: type, *extras: type) -> tuple[type, ...]:
    return tuple(extra for extra in extras if not issubclass(bundle, extra))


class TestMutantQueueStore(
    QueueStoreSuite,
    *_missing(  # type: ignore[misc]
        QueueStoreSuite, EngineErrorSuite, LockTimeoutSuite, FaultHookSuite, CapacitySuite
    ),
):
    """Every queue-store conformance test."""

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        """A fresh store per test (the memory backend keys instances on it)."""
        return f"lqmutant:///{tmp_path}/store.db"


class TestMutantAttemptStore(
    AttemptStoreSuite,
    *_missing(AttemptStoreSuite, AttemptEngineErrorSuite, AttemptLockTimeoutSuite),  # type: ignore[misc]
):
    """Every attempt-store conformance test."""

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        """A fresh store per test."""
        return f"lqmutant:///{tmp_path}/store.db"
