"""Fixtures shared by the tests of the layers above the stores (retry, worker)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localqueue import AttemptStore, PersistentQueue, open_attempt_store


@dataclass(frozen=True)
class Engine:
    """URLs of one engine: a queue store and an attempt store."""

    name: str
    queue_url: str
    attempts_url: str


def _engine(name: str, tmp_path: Path) -> Engine:
    if name == "memory":
        return Engine(name, "memory://", "memory://")
    if name == "sqlite":
        return Engine(name, f"sqlite:///{tmp_path}/q.db", f"sqlite:///{tmp_path}/retries.db")
    return Engine(name, f"lmdb:///{tmp_path}/lmdb", f"lmdb:///{tmp_path}/lmdb-retries")


@pytest.fixture(params=["memory", "sqlite", "lmdb"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    """Every embedded engine in turn; upper-layer tests run once per engine."""
    return _engine(request.param, tmp_path)


@pytest.fixture
def attempt_store(engine: Engine) -> Iterator[AttemptStore]:
    """An attempt store of the current engine, closed after the test."""
    store = open_attempt_store(engine.attempts_url)
    yield store
    store.close()


@pytest.fixture
def queue(engine: Engine) -> Iterator[PersistentQueue]:
    """A queue named ``jobs`` on the current engine, closed after the test."""
    q = PersistentQueue("jobs", store=engine.queue_url, lease_timeout=30.0)
    yield q
    q.close()
