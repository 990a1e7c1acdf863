"""Every error localqueue raises, in one tree.

```text
LocalQueueError
├── ConfigurationError (ValueError)
│   ├── UnknownBackendError
│   ├── InvalidOptionError
│   └── BackendNotInstalledError (also ImportError)
├── ValidationError (ValueError)
│   ├── InvalidQueueNameError
│   └── PayloadTooLargeError
├── SerializationError (ValueError)
│   ├── UnserializableValueError (also TypeError)
│   ├── UnknownSerializerError
│   └── MessageDecodeError
├── StoreError
│   ├── StoreLockedError
│   │   ├── QueueStoreLockedError
│   │   └── AttemptStoreLockedError
│   ├── StoreClosedError
│   ├── StoreCorruptedError
│   ├── StoreNotFoundError
│   └── SchemaVersionError
├── QueueError
│   ├── Empty (also queue.Empty)
│   ├── Full (also queue.Full)
│   ├── MessageNotFoundError (also LookupError)
│   └── LeaseLostError
└── RetryError
    ├── MissingRetryKeyError (also ValueError)
    └── PersistentRetryExhausted
```

Engine-specific exceptions (``sqlite3.OperationalError``, ``lmdb.Error``,
``psycopg.Error``, ``redis.RedisError``) never reach callers: each store maps
them onto this tree at its boundary and chains the original as ``__cause__``.
"""

from __future__ import annotations

import queue as _stdlib_queue
from collections.abc import Iterable

__all__ = [
    "AttemptStoreLockedError",
    "BackendNotInstalledError",
    "ConfigurationError",
    "Empty",
    "Full",
    "InvalidOptionError",
    "InvalidQueueNameError",
    "LeaseLostError",
    "LegacyStoreError",
    "LocalQueueError",
    "MessageDecodeError",
    "MessageNotFoundError",
    "MissingRetryKeyError",
    "PayloadTooLargeError",
    "PersistentRetryExhausted",
    "QueueError",
    "QueueStoreLockedError",
    "RetryError",
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
]


class LocalQueueError(Exception):
    """Root of every error raised by localqueue."""


# -- configuration -----------------------------------------------------------


class ConfigurationError(LocalQueueError, ValueError):
    """Raised when a store URL, option or setting is not usable."""


class UnknownBackendError(ConfigurationError):
    """Raised when a URL names a scheme that no installed backend provides.

    Attributes:
        scheme: The scheme that was asked for.
        known: The schemes that are available.
        suggestion: The nearest known scheme, if one is close.
    """

    def __init__(self, scheme: str, known: Iterable[str], suggestion: str | None = None) -> None:
        self.scheme = scheme
        self.known = sorted(known)
        self.suggestion = suggestion
        hint = f" Did you mean {suggestion!r}?" if suggestion else ""
        super().__init__(
            f"unknown store scheme {scheme!r}.{hint} Installed schemes: {', '.join(self.known)}. "
            "Third-party backends register through the 'localqueue.backends' entry point."
        )


class InvalidOptionError(ConfigurationError):
    """Raised when a store option is unknown or its value has the wrong type.

    Attributes:
        option: The option's name.
        scheme: The scheme whose options were being parsed.
    """

    def __init__(self, scheme: str, option: str, reason: str) -> None:
        self.scheme = scheme
        self.option = option
        super().__init__(f"{scheme}: option {option!r}: {reason}")


class BackendNotInstalledError(ConfigurationError, ImportError):
    """Raised when a known backend's optional dependency is not installed.

    Attributes:
        scheme: The scheme that was asked for.
        install_hint: The command that installs it.
    """

    def __init__(self, scheme: str, install_hint: str) -> None:
        self.scheme = scheme
        self.install_hint = install_hint
        super().__init__(
            f"the {scheme!r} backend is not installed; install it with: {install_hint}"
        )


# -- validation --------------------------------------------------------------


class ValidationError(LocalQueueError, ValueError):
    """Raised when an argument is out of range or malformed; nothing is stored."""


class InvalidQueueNameError(ValidationError):
    """Raised when a queue name is empty, too long or has characters outside the allowed set.

    Attributes:
        name: The rejected name.
    """

    def __init__(self, name: object, reason: str) -> None:
        self.name = name
        super().__init__(f"invalid queue name {name!r}: {reason}")


class PayloadTooLargeError(ValidationError):
    """Raised when a serialised value is larger than the documented limit.

    Attributes:
        size: The serialised size in bytes.
        limit: The largest accepted size in bytes.
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"serialised value is {size} bytes; the limit is {limit} bytes")


# -- serialisation -----------------------------------------------------------


class SerializationError(LocalQueueError, ValueError):
    """Raised when a value cannot be encoded or a stored payload cannot be decoded."""


class UnserializableValueError(SerializationError, TypeError):
    """Raised by ``put`` when the serializer cannot encode the value; nothing is stored.

    Attributes:
        codec: The serializer that refused the value.
    """

    def __init__(self, codec: str, reason: str) -> None:
        self.codec = codec
        super().__init__(f"value cannot be serialised with {codec!r}: {reason}")


class UnknownSerializerError(SerializationError):
    """Raised when a serializer name is not registered.

    Attributes:
        codec: The unknown name.
        known: The registered names.
    """

    def __init__(self, codec: str, known: Iterable[str]) -> None:
        self.codec = codec
        self.known = sorted(known)
        super().__init__(
            f"unknown serializer {codec!r}; registered: {', '.join(self.known)} "
            "(register others with localqueue.serializers.register_serializer)"
        )


class MessageDecodeError(SerializationError):
    """Raised when a stored message's payload cannot be decoded.

    The message itself stays stored and the rest of the queue keeps flowing;
    workers dead-letter such messages with this error recorded.

    Attributes:
        message_id: The id of the message that could not be decoded.
        codec: The codec recorded with the message.
    """

    def __init__(self, message_id: str, codec: str, reason: str) -> None:
        self.message_id = message_id
        self.codec = codec
        super().__init__(f"message {message_id}: cannot decode {codec!r} payload: {reason}")


# -- stores ------------------------------------------------------------------


class StoreError(LocalQueueError):
    """Raised when the storage engine fails; the original error is chained."""


class StoreLockedError(StoreError):
    """Raised when the store stayed locked by others for longer than the configured timeout."""


class QueueStoreLockedError(StoreLockedError):
    """Raised when a queue store stayed locked for longer than its timeout."""


class AttemptStoreLockedError(StoreLockedError):
    """Raised when an attempt store stayed locked for longer than its timeout."""


class StoreClosedError(StoreError):
    """Raised when a store is used after ``close()``."""


class StoreCorruptedError(StoreError):
    """Raised when the store's files are damaged or are not a localqueue store."""


class StoreNotFoundError(StoreError):
    """Raised when opening a store that must already exist finds nothing at its path.

    Read-only callers pass ``create=False`` to
    :func:`~localqueue.registry.open_queue_store`, so a mistyped path is
    reported instead of being created empty.

    Attributes:
        path: The file or directory that does not exist.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"no store at {path!r}: nothing exists there")


class SchemaVersionError(StoreError):
    """Raised when a store was written by a newer localqueue with an unknown schema.

    Attributes:
        found: The schema version recorded in the store.
        supported: The newest version this release understands.
    """

    def __init__(self, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"store schema version {found} is newer than this release supports "
            f"({supported}); upgrade localqueue"
        )


class LegacyStoreError(SchemaVersionError):
    """Raised when a store holds data written by localqueue 0.2.0, in its old layout.

    The store refuses to open it (it would look empty); ``localqueue migrate
    PATH`` (or :func:`localqueue.migrate_legacy`) converts it in place.

    Attributes:
        path: The store's file or directory.
        layout: What was found, e.g. ``"queue_messages table"``.
    """

    def __init__(
        self, path: str, layout: str, supported: int = 1, *, hint: str | None = None
    ) -> None:
        self.found = 0
        self.supported = supported
        self.path = path
        self.layout = layout
        if hint is None:
            hint = (
                f"run `localqueue migrate {path}` to convert it in place "
                f"(a copy is kept at {path}.bak-0.2.0)"
            )
        StoreError.__init__(
            self, f"{path} holds data written by localqueue 0.2.0 ({layout}); {hint}"
        )


# -- queue -------------------------------------------------------------------


class QueueError(LocalQueueError):
    """Raised by queue operations."""


class Empty(QueueError, _stdlib_queue.Empty):
    """Raised by non-blocking or timed-out ``get`` when no message is available."""


class Full(QueueError, _stdlib_queue.Full):
    """Raised by ``put`` when the queue holds ``maxsize`` messages and no room appears in time."""


class MessageNotFoundError(QueueError, LookupError):
    """Raised when no message with the given id is stored in the queue.

    Attributes:
        queue: The queue's name.
        message_id: The id that was looked up.
    """

    def __init__(self, queue: str, message_id: str) -> None:
        self.queue = queue
        self.message_id = message_id
        super().__init__(f"no message {message_id!r} in queue {queue!r}")


class LeaseLostError(QueueError):
    """Raised when acting on a message whose lease this consumer no longer holds.

    That happens when the lease expired and another consumer leased the
    message, or the message was already acknowledged, released or
    dead-lettered.

    Attributes:
        queue: The queue's name.
        message_id: The message's id.
    """

    def __init__(self, queue: str, message_id: str, action: str) -> None:
        self.queue = queue
        self.message_id = message_id
        super().__init__(
            f"cannot {action} message {message_id!r} in queue {queue!r}: "
            "the lease is no longer held by this consumer"
        )


# -- retry -------------------------------------------------------------------


class RetryError(LocalQueueError):
    """Raised by the persistent retry layer."""


class MissingRetryKeyError(RetryError, ValueError):
    """Raised when a persistent retry has no key, or its key function returned none."""


class PersistentRetryExhausted(RetryError):
    """Raised, before calling the function, when the key's retry budget is already spent.

    Attributes:
        key: The retry key.
        attempts: The attempts recorded for it.
        last_error: The last recorded failure, if any.
    """

    def __init__(self, key: str, attempts: int, last_error: str | None = None) -> None:
        self.key = key
        self.attempts = attempts
        self.last_error = last_error
        detail = f"; last error: {last_error}" if last_error else ""
        super().__init__(f"retry budget for {key!r} exhausted after {attempts} attempts{detail}")
