"""pytest plugin (``-p lq_mutant_plugin``): makes ``lqmutant://`` open the mutant in ``$LQ_MUTANT``.

``LQ_MUTANT`` is a mutant name from :mod:`lq_mutants`, or ``control-memory`` /
``control-sqlite`` for the unmutated stores. The scheme pairs the mutated class
with the real store of the other kind, so the whole suite runs unchanged.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from localqueue.protocols import AttemptStore, Clock, QueueStore
from localqueue.registry import ClassBackend, register
from localqueue.stores.memory import MemoryAttemptStore, MemoryQueueStore
from localqueue.stores.sqlite import SQLiteAttemptStore, SQLiteQueueStore
from localqueue.urls import StoreURL

SCHEME = "lqmutant"
ENV = "LQ_MUTANT"
FOCUS_ENV = "LQ_MUTANT_FOCUS"


class SharedMemoryBackend:
    """Memory stores shared per URL in this process, so two handles see one store.

    ``memory://`` opens a new store each time; the suite opens several handles on
    one URL to stand in for several processes, so they must share an instance. A
    closed instance is replaced by a fresh one, as a new ``memory://`` open would be.
    """

    def __init__(self, queue_cls: type[Any], attempt_cls: type[Any]) -> None:
        self.queue_cls = queue_cls
        self.attempt_cls = attempt_cls
        self.capabilities = queue_cls.capabilities
        self._queues: dict[str, Any] = {}
        self._attempts: dict[str, Any] = {}
        self._lock = threading.Lock()

    def open_queue_store(self, url: StoreURL, *, clock: Clock | None = None) -> QueueStore:
        """The queue store shared by every open of ``url``."""
        url.options({})
        with self._lock:
            store = self._queues.get(str(url))
            if store is None or getattr(store, "_closed", False):
                store = self._queues[str(url)] = self.queue_cls(clock=clock)
            return store  # type: ignore[no-any-return]

    def open_attempt_store(self, url: StoreURL, *, clock: Clock | None = None) -> AttemptStore:
        """The attempt store shared by every open of ``url``."""
        url.options({})
        with self._lock:
            store = self._attempts.get(str(url))
            if store is None or getattr(store, "_closed", False):
                store = self._attempts[str(url)] = self.attempt_cls(clock=clock)
            return store  # type: ignore[no-any-return]


def backend_for(name: str) -> Any:
    """The backend opening mutant ``name`` (or a control) paired with the real other store."""
    if name == "control-memory":
        return SharedMemoryBackend(MemoryQueueStore, MemoryAttemptStore)
    if name == "control-sqlite":
        return ClassBackend(SQLiteQueueStore, SQLiteAttemptStore)
    import lq_mutants

    m = lq_mutants.by_name(name)
    if m.engine == "memory":
        if m.kind == "queue":
            return SharedMemoryBackend(m.cls, MemoryAttemptStore)
        return SharedMemoryBackend(MemoryQueueStore, m.cls)
    if m.kind == "queue":
        return ClassBackend(m.cls, SQLiteAttemptStore)
    return ClassBackend(SQLiteQueueStore, m.cls)


def install() -> None:
    """Register ``lqmutant://`` for ``$LQ_MUTANT`` in this process (no-op when unset)."""
    name = os.environ.get(ENV)
    if name:
        register(SCHEME, backend_for(name), replace=True)
        os.environ["LQ_MUTANT_SPAWNED"] = "1"  # tells _boot/sitecustomize.py in children


def pytest_configure(config: pytest.Config) -> None:
    """Register the scheme before collection."""
    install()


# Tests that take a second or more (processes, real-time waits, lock timeouts,
# Hypothesis): run last, so a mutant that a quick test kills costs little under -x.
_SLOW = (
    "process",
    "producers",
    "short_leases",
    "wait_blocks",
    "waiting_thread",
    "reference_model",
    "threads_",
    "lock_held",
    "contention",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the suite: tests naming a mutated method first, then quick ones, slow ones last.

    Only the order changes, never which tests run: the whole suite is the judge.
    """
    focus = [word for word in os.environ.get(FOCUS_ENV, "").split(",") if word]

    def key(item: pytest.Item) -> tuple[bool, bool]:
        slow = any(word in item.name for word in _SLOW)
        return (not any(word in item.name for word in focus), slow)

    items.sort(key=key)
