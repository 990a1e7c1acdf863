"""Fixtures shared by the core's tests: one parametrised store fixture for the layers above
the protocols, so every behaviour runs over every embedded engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localqueue.protocols import QueueStore
from localqueue.registry import open_queue_store

# The engines the layers above the protocols are tested over.
ENGINES = ["memory", "sqlite", "lmdb"]


def engine_url(engine: str, tmp_path: Path) -> str:
    """A fresh store URL of ``engine`` inside ``tmp_path``."""
    if engine == "memory":
        return "memory://"
    if engine == "sqlite":
        return f"sqlite:///{tmp_path}/queue.sqlite3"
    if engine == "lmdb":
        return f"lmdb:///{tmp_path}/queue-lmdb"
    raise ValueError(engine)


@pytest.fixture(params=ENGINES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh URL for each embedded engine in turn."""
    return engine_url(request.param, tmp_path)


@pytest.fixture
def queue_store(store_url: str) -> Iterator[QueueStore]:
    """An open queue store for each embedded engine in turn."""
    store = open_queue_store(store_url)
    yield store
    store.close()
