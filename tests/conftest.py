"""Fixtures shared by the core's tests: one parametrised store fixture for the layers above
the protocols, so every behaviour runs over every embedded engine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localqueue import PersistentQueue
from localqueue.protocols import AttemptStore, QueueStore
from localqueue.registry import open_attempt_store, open_queue_store

# The engines the layers above the protocols are tested over.
ENGINES = ["memory", "sqlite", "lmdb"]


def engine_url(engine: str, tmp_path: Path, name: str = "queue") -> str:
    """A fresh store URL of ``engine`` inside ``tmp_path`` (``name`` tells stores apart)."""
    if engine == "memory":
        return "memory://"
    if engine == "sqlite":
        return f"sqlite:///{tmp_path}/{name}.sqlite3"
    if engine == "lmdb":
        return f"lmdb:///{tmp_path}/{name}-lmdb"
    raise ValueError(engine)


@dataclass(frozen=True)
class Engine:
    """One embedded engine: its name and the URLs of a queue store and an attempt store."""

    name: str
    queue_url: str
    attempts_url: str


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    """Each embedded engine in turn, with fresh store URLs."""
    return Engine(
        request.param,
        engine_url(request.param, tmp_path),
        engine_url(request.param, tmp_path, "retries"),
    )


@pytest.fixture
def store_url(engine: Engine) -> str:
    """A fresh queue store URL for each embedded engine in turn."""
    return engine.queue_url


@pytest.fixture
def queue_store(store_url: str) -> Iterator[QueueStore]:
    """An open queue store for each embedded engine in turn."""
    store = open_queue_store(store_url)
    yield store
    store.close()


@pytest.fixture
def attempt_store(engine: Engine) -> Iterator[AttemptStore]:
    """An open attempt store for each embedded engine in turn."""
    store = open_attempt_store(engine.attempts_url)
    yield store
    store.close()


@pytest.fixture
def jobs(queue_store: QueueStore) -> PersistentQueue:
    """A queue named ``jobs`` over each embedded engine in turn."""
    return PersistentQueue("jobs", queue_store, lease_timeout=30.0)
