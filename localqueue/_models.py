"""The records that cross the storage seam: messages, stats, retry records."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

from localqueue.errors import MessageDecodeError, UnknownSerializerError
from localqueue.serializers import get_serializer

__all__ = ["Capability", "MessageState", "QueueMessage", "QueueStats", "RetryRecord"]


class MessageState(enum.StrEnum):
    """Where a message is in its lifecycle.

    A message whose lease has expired is reported as ``READY`` again: it can be
    leased by the next consumer. ``QueueStats.delayed`` counts ready messages
    whose ``available_at`` is still in the future.
    """

    READY = "ready"
    INFLIGHT = "inflight"
    DEAD = "dead"


class Capability(enum.StrEnum):
    """Optional properties a store declares in its ``capabilities`` set.

    The conformance suite skips the tests of a capability a store lacks.
    """

    PERSISTENT = "persistent"
    """Messages survive closing and reopening the store."""
    MULTI_PROCESS = "multi_process"
    """Several OS processes may open the same store through its URL at once."""
    INJECTABLE_CLOCK = "injectable_clock"
    """The store takes a ``clock`` callable and uses it for every timestamp."""


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts of a queue's messages by effective state."""

    ready: int = 0
    """Deliverable now (including messages whose lease expired)."""
    delayed: int = 0
    """Waiting for their ``available_at``."""
    inflight: int = 0
    """Leased, with the lease still running."""
    dead: int = 0
    """In dead-letter storage."""

    @property
    def total(self) -> int:
        """Every stored message of the queue."""
        return self.ready + self.delayed + self.inflight + self.dead

    def as_dict(self) -> dict[str, int]:
        """The counts, ``total`` included, as a plain dict (handy for JSON)."""
        return {
            "ready": self.ready,
            "delayed": self.delayed,
            "inflight": self.inflight,
            "dead": self.dead,
            "total": self.total,
        }


class _CachedValue(cached_property[Any]):
    """``cached_property`` without the per-instance lock Python 3.11 takes on first access.

    A value is immutable and decoding it twice in a race is harmless; the lock
    cost as much as decoding a small payload.
    """

    def __get__(self, instance: Any, owner: type[Any] | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.attrname] = self.func(instance)
        return value


# build_message fills instances' __dict__ directly: keep this class free of
# __post_init__ and __slots__ (the cached value needs the __dict__ anyway).
@dataclass(frozen=True)
class QueueMessage:
    """One stored message, as a store returns it.

    The payload is decoded lazily by :attr:`value` with the codec recorded at
    ``put`` time, so a payload that cannot be decoded never blocks the queue:
    it is leased like any other, and reading its value raises
    :class:`~localqueue.errors.MessageDecodeError` naming its id.
    """

    id: str
    """Unique, time-ordered message id."""
    queue: str
    """Name of the queue it belongs to."""
    state: MessageState
    """Effective lifecycle state (see :class:`MessageState`)."""
    payload: bytes = field(repr=False)
    """The serialised value."""
    codec: str
    """Name of the serializer that wrote ``payload``."""
    attempts: int
    """How many times it has been leased."""
    created_at: float
    """Unix time of the ``put``."""
    available_at: float
    """Unix time it is (or becomes) deliverable; while leased, when the lease ends."""
    priority: int = 0
    """Higher priorities are delivered first."""
    leased_until: float | None = None
    """Unix time the current lease ends; ``None`` unless ``INFLIGHT``."""
    leased_by: str | None = None
    """Worker id given with the most recent lease."""
    lease_token: str | None = field(default=None, repr=False)
    """Proof of the current lease, required to ack, release, extend or dead-letter it."""
    last_error: str | None = None
    """The most recent recorded failure."""
    failed_at: float | None = None
    """Unix time of the most recent recorded failure."""
    dedup_key: str | None = None
    """Deduplication key given at ``put``, if any."""

    @_CachedValue
    def value(self) -> Any:
        """The decoded value.

        Raises:
            MessageDecodeError: The payload is malformed or its codec is not registered.
        """
        try:
            serializer = get_serializer(self.codec)
        except UnknownSerializerError as exc:
            raise MessageDecodeError(self.id, self.codec, str(exc)) from exc
        try:
            return serializer.loads(self.payload)
        except Exception as exc:
            raise MessageDecodeError(self.id, self.codec, f"{type(exc).__name__}: {exc}") from exc

    def as_dict(self, *, include_value: bool = True) -> dict[str, Any]:
        """The message as a JSON-friendly dict; an undecodable value is shown as ``None``
        with a ``decode_error`` entry."""
        data: dict[str, Any] = {
            "id": self.id,
            "queue": self.queue,
            "state": self.state.value,
            "attempts": self.attempts,
            "priority": self.priority,
            "created_at": self.created_at,
            "available_at": self.available_at,
            "leased_until": self.leased_until,
            "leased_by": self.leased_by,
            "last_error": self.last_error,
            "failed_at": self.failed_at,
            "dedup_key": self.dedup_key,
            "codec": self.codec,
        }
        if include_value:
            try:
                data["value"] = self.value
            except MessageDecodeError as exc:
                data["value"] = None
                data["decode_error"] = str(exc)
        return data


_MESSAGE_FIELDS = frozenset(f.name for f in fields(QueueMessage))


def build_message(values: dict[str, Any]) -> QueueMessage:
    """A :class:`QueueMessage` from a dict of every one of its fields, for stores' hot paths.

    The frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``; filling ``__dict__`` directly is about three times
    faster, which is most of the cost of returning a batch. A dict that does not
    hold exactly the fields goes through ``__init__`` (and its checks).
    """
    if values.keys() != _MESSAGE_FIELDS:
        return QueueMessage(**values)
    message: QueueMessage = object.__new__(QueueMessage)
    message.__dict__.update(values)
    return message


def ready_message(
    message_id: str,
    queue: str,
    payload: bytes,
    codec: str,
    created_at: float,
    available_at: float,
    priority: int = 0,
    dedup_key: str | None = None,
) -> QueueMessage:
    """The :class:`QueueMessage` a store's ``put`` returns for a message it just stored."""
    message: QueueMessage = object.__new__(QueueMessage)
    message.__dict__.update(
        id=message_id,
        queue=queue,
        state=MessageState.READY,
        payload=payload,
        codec=codec,
        attempts=0,
        created_at=created_at,
        available_at=available_at,
        priority=priority,
        leased_until=None,
        leased_by=None,
        lease_token=None,
        last_error=None,
        failed_at=None,
        dedup_key=dedup_key,
    )
    return message


@dataclass(frozen=True, slots=True)
class RetryRecord:
    """The persisted retry state of one key."""

    key: str
    """The retry key."""
    attempts: int
    """Attempts started so far."""
    first_attempt_at: float
    """Unix time of the first attempt."""
    last_attempt_at: float
    """Unix time of the most recent attempt."""
    exhausted: bool = False
    """Whether the retry budget is spent."""
    last_error: str | None = None
    """The most recent recorded failure."""
