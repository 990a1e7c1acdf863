"""localqueue: durable job queues with one API over SQLite, LMDB, PostgreSQL and Redis.

```python
from localqueue import PersistentQueue

queue = PersistentQueue("emails", store="sqlite:///jobs.db")
queue.put({"to": "user@example.com"})
message = queue.get_message()
queue.ack(message)
```
"""

from typing import TYPE_CHECKING, Any

from localqueue import _compat020
from localqueue._models import Capability, MessageState, QueueMessage, QueueStats, RetryRecord
from localqueue._version import __version__
from localqueue.errors import (
    AttemptStoreLockedError,
    BackendNotInstalledError,
    ConfigurationError,
    Empty,
    Full,
    InvalidOptionError,
    InvalidQueueNameError,
    LeaseLostError,
    LegacyStoreError,
    LocalQueueError,
    MessageDecodeError,
    MessageNotFoundError,
    MissingRetryKeyError,
    PayloadTooLargeError,
    PersistentRetryExhausted,
    QueueError,
    QueueStoreLockedError,
    RetryError,
    SchemaVersionError,
    SerializationError,
    StoreClosedError,
    StoreCorruptedError,
    StoreError,
    StoreLockedError,
    StoreNotFoundError,
    UnknownBackendError,
    UnknownSerializerError,
    UnserializableValueError,
    ValidationError,
)
from localqueue.protocols import AttemptStore, Backend, QueueStore
from localqueue.queue import PersistentQueue
from localqueue.registry import open_attempt_store, open_queue_store, register
from localqueue.retry import (
    PersistentAsyncRetrying,
    PersistentRetrying,
    configure_default_store,
    configure_default_store_factory,
    idempotency_key_from_id,
    key_from_argument,
    key_from_attr,
    persistent_async_retry,
    persistent_retry,
)
from localqueue.serializers import register_serializer

if TYPE_CHECKING:
    from localqueue.stores._legacy_0_2_0 import LegacyMigration, migrate_legacy

from localqueue.worker import (
    PersistentWorkerConfig,
    Worker,
    persistent_async_worker,
    persistent_worker,
)

__all__ = [
    "AttemptStore",
    "AttemptStoreLockedError",
    "Backend",
    "BackendNotInstalledError",
    "Capability",
    "ConfigurationError",
    "Empty",
    "Full",
    "InvalidOptionError",
    "InvalidQueueNameError",
    "LeaseLostError",
    "LegacyMigration",
    "LegacyStoreError",
    "LocalQueueError",
    "MessageDecodeError",
    "MessageNotFoundError",
    "MessageState",
    "MissingRetryKeyError",
    "PayloadTooLargeError",
    "PersistentAsyncRetrying",
    "PersistentQueue",
    "PersistentRetryExhausted",
    "PersistentRetrying",
    "PersistentWorkerConfig",
    "QueueError",
    "QueueMessage",
    "QueueStats",
    "QueueStore",
    "QueueStoreLockedError",
    "RetryError",
    "RetryRecord",
    "SchemaVersionError",
    "SerializationError",
    "StoreClosedError",
    "StoreCorruptedError",
    "StoreError",
    "StoreLockedError",
    "StoreNotFoundError",
    "UnknownBackendError",
    "UnknownSerializerError",
    "UnserializableValueError",
    "ValidationError",
    "Worker",
    "__version__",
    "configure_default_store",
    "configure_default_store_factory",
    "idempotency_key_from_id",
    "key_from_argument",
    "key_from_attr",
    "migrate_legacy",
    "open_attempt_store",
    "open_queue_store",
    "persistent_async_retry",
    "persistent_async_worker",
    "persistent_retry",
    "persistent_worker",
    "register",
    "register_serializer",
]


# Loaded on first use: the 0.2.0 file migration needs the SQLite store's plumbing.
_LAZY = {"LegacyMigration", "migrate_legacy"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from localqueue.stores import _legacy_0_2_0

        return getattr(_legacy_0_2_0, name)
    # 0.2.0 exported the concrete stores here; they load on first use, so
    # ``import localqueue`` needs no extra (and they stay out of ``__all__``).
    return _compat020.resolve(__name__, name, _compat020.STORES)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, *_compat020.STORES])
