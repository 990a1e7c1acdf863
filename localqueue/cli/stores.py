"""Opening the stores a command works on, from its flags and the settings file.

Stores are opened through :mod:`localqueue.registry` only, so every installed
backend works and the CLI never depends on a concrete engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from localqueue.cli.config import resolve_store
from localqueue.protocols import QueueStore
from localqueue.queue import PersistentQueue
from localqueue.registry import open_queue_store

__all__ = ["opened_queue", "opened_store"]


@contextmanager
def opened_store(store: str | None, store_path: str | None) -> Iterator[QueueStore]:
    """The queue store named by ``--store`` / ``--store-path`` / settings, closed afterwards."""
    handle = open_queue_store(resolve_store(store, store_path))
    try:
        yield handle
    finally:
        handle.close()


@contextmanager
def opened_queue(
    name: str, store: str | None, store_path: str | None, *, lease_timeout: float = 30.0
) -> Iterator[PersistentQueue]:
    """A :class:`PersistentQueue` over the chosen store, which is closed afterwards."""
    with opened_store(store, store_path) as handle:
        yield PersistentQueue(name, handle, lease_timeout=lease_timeout)
