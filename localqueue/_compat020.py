"""The names localqueue 0.2.0 exported that live elsewhere now, resolved on first use.

0.2.0 programs import the concrete stores from ``localqueue`` and the attempt
stores from ``localqueue.retry``. Those modules sit above the storage seam and
must not import a store, so their module ``__getattr__`` hands the name to
:func:`resolve`, which imports the store module only when a program asks for
it (``import localqueue`` still needs no optional extra).
"""

from __future__ import annotations

import importlib
from typing import Any, Final

from localqueue._install import extra_hint
from localqueue.errors import BackendNotInstalledError

STORES: Final = {
    "MemoryQueueStore": "localqueue.stores.memory",
    "MemoryAttemptStore": "localqueue.stores.memory",
    "SQLiteQueueStore": "localqueue.stores.sqlite",
    "SQLiteAttemptStore": "localqueue.stores.sqlite",
    "LMDBQueueStore": "localqueue.stores.lmdb",
    "LMDBAttemptStore": "localqueue.stores.lmdb",
}
"""0.2.0's store names and the modules holding them."""

ATTEMPT_STORES: Final = ("MemoryAttemptStore", "SQLiteAttemptStore", "LMDBAttemptStore")
"""The store names 0.2.0 also exported from ``localqueue.retry``."""


def resolve(module: str, name: str, names: tuple[str, ...] | dict[str, str]) -> Any:
    """The store class ``name`` when ``names`` holds it; else ``AttributeError``, as usual.

    Raises:
        BackendNotInstalledError: The store needs an extra that is not installed (LMDB).
    """
    if name not in names:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    try:
        store_module = importlib.import_module(STORES[name])
    except ModuleNotFoundError as exc:
        if exc.name != "lmdb":
            raise
        raise BackendNotInstalledError("lmdb", extra_hint("lmdb")) from exc
    return getattr(store_module, name)
