"""localqueue: durable job queues with one API over SQLite, LMDB, PostgreSQL and Redis.

```python
from localqueue import PersistentQueue

queue = PersistentQueue("emails", store="sqlite:///jobs.db")
queue.put({"to": "user@example.com"})
message = queue.get_message()
queue.ack(message)
```
"""

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
    persistent_async_retry,
    persistent_retry,
)
from localqueue.serializers import register_serializer
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
    "open_attempt_store",
    "open_queue_store",
    "persistent_async_retry",
    "persistent_async_worker",
    "persistent_retry",
    "persistent_worker",
    "register",
    "register_serializer",
]
