"""The embedded stores: memory, SQLite and LMDB.

Each module defines a queue store, an attempt store and the ``backend`` the
URL registry resolves its scheme to. Names are resolved lazily so that
``import localqueue.stores`` works without the LMDB extra.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "LMDBAttemptStore",
    "LMDBQueueStore",
    "MemoryAttemptStore",
    "MemoryQueueStore",
    "SQLiteAttemptStore",
    "SQLiteQueueStore",
]

_MODULES = {
    "MemoryQueueStore": "memory",
    "MemoryAttemptStore": "memory",
    "SQLiteQueueStore": "sqlite",
    "SQLiteAttemptStore": "sqlite",
    "LMDBQueueStore": "lmdb",
    "LMDBAttemptStore": "lmdb",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'localqueue.stores' has no attribute {name!r}")
    if module == "lmdb":
        from localqueue.registry import get_backend

        get_backend("lmdb")  # raises BackendNotInstalledError with the install hint
    return getattr(importlib.import_module(f"localqueue.stores.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
