"""liteq's ``LiteQueue`` API, kept by localqueue's SQLite store.

A program written for liteq switches by changing one line:

```python
from localqueue.compat.liteq import LiteQueue   # was: from liteq import LiteQueue
```

The class, its methods, their argument names and the :class:`Message` fields
are liteq's. Underneath, every call goes through the public
:class:`~localqueue.protocols.QueueStore` protocol of the store
:func:`~localqueue.registry.open_queue_store` opens for the file, so one file
holds many named queues (``qname``), shared by threads and processes.

Choices and differences worth knowing:

* Defaults liteq's README leaves unstated: ``max_retries=5`` and
  ``timeout_seconds=30.0`` (the SQLite store's own lock timeout).
* Payloads are ``bytes`` in, the same ``bytes`` out. They are stored msgpack
  encoded, so ``PersistentQueue(qname, store="sqlite:///<file>")`` reads the
  same messages with ``message.value`` being those bytes. A message of the
  file whose value is not ``bytes`` (written by other code) is moved to the
  dead letters by :meth:`LiteQueue.pop` with the reason recorded.
* Ids are localqueue's time-ordered ids, which never collide:
  ``retries_on_conflict`` and ``pause_on_conflict`` are checked and accepted
  for compatibility, and change nothing.
* ``max_retries`` bounds deliveries: a message is delivered at most
  ``max_retries`` times without an ack. :meth:`LiteQueue.fail` dead-letters it
  when its failed delivery is the ``max_retries``-th; a delivery whose lease
  simply ran out (a crashed worker) counts too, and the next
  :meth:`LiteQueue.pop` dead-letters such a message instead of returning it.
  The facade enforces this itself; a queue-level retry limit in the core is
  planned (issue 13 item 5).
* :meth:`LiteQueue.consume` settles a failed message like :meth:`LiteQueue.fail`:
  it is visible again at once (or dead-lettered), not after the visibility
  timeout.
* liteq has no lease tokens. A ``LiteQueue`` remembers the lease of each
  message it popped, so :meth:`~LiteQueue.delete` and :meth:`~LiteQueue.fail`
  act only while that lease is held: once the lease ran out and another
  consumer took the message, they return ``False`` and change nothing. For an
  id this object did not pop, they act on the message by id in whatever state
  it is, as the store protocol allows with ``lease_token=None``.
* A file liteq wrote is not read: give the facade a new file.
* :meth:`LiteQueue.clear` leaves messages that are leased right now to their
  consumers.
* Bad arguments raise :class:`~localqueue.errors.ValidationError` (a
  ``ValueError``; an :class:`~localqueue.errors.InvalidQueueNameError` for a
  bad ``qname``) before anything is stored.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Self
from urllib.parse import quote

from localqueue.errors import MessageDecodeError, ValidationError
from localqueue.protocols import QueueStore
from localqueue.queue import format_error
from localqueue.registry import open_queue_store
from localqueue.serializers import get_serializer
from localqueue.validation import check_message_id, check_queue_name

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_QUEUE",
    "DEFAULT_TIMEOUT_SECONDS",
    "MAX_BATCH",
    "LiteQueue",
    "Message",
]

DEFAULT_QUEUE = "default"
"""The ``qname`` used when none is given."""
DEFAULT_MAX_RETRIES = 5
"""Most deliveries of a message without an ack (liteq's README states no default)."""
DEFAULT_TIMEOUT_SECONDS = 30.0
"""Seconds SQLite lock contention is retried (liteq's README states no default)."""
MAX_BATCH = 50
"""Most messages one :meth:`LiteQueue.put_batch` call takes, as in liteq."""

_CODEC = get_serializer("msgpack")
_JOIN_PAUSE = 0.1


@dataclass(frozen=True)
class Message:
    """A message as :meth:`LiteQueue.pop`, :meth:`~LiteQueue.consume` and
    :meth:`~LiteQueue.peek` return it."""

    id: str
    """The message id: pass it to :meth:`LiteQueue.delete` or :meth:`LiteQueue.fail`."""
    data: bytes
    """The payload, exactly the bytes that were put."""
    queue_name: str
    """The ``qname`` it was put to."""
    retry_count: int
    """Earlier deliveries that ended without an ack (failed or timed out)."""
    created_at: float
    """Unix time of the put."""


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{name} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValidationError(f"{name} must be a finite number >= 0, got {value!r}")
    return seconds


def _positive_seconds(name: str, value: object) -> float:
    seconds = _seconds(name, value)
    if seconds == 0:
        raise ValidationError(f"{name} must be > 0, got {value!r}")
    return seconds


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _encode(data: object) -> bytes:
    if not isinstance(data, bytes):
        raise ValidationError(f"liteq messages are bytes, not {type(data).__name__}")
    return _CODEC.dumps(bytes(data))


def _check_conflict_policy(retries_on_conflict: object, pause_on_conflict: object) -> None:
    _count("retries_on_conflict", retries_on_conflict, 0)
    _seconds("pause_on_conflict", pause_on_conflict)


class LiteQueue:
    """Named queues of ``bytes`` in one SQLite file, with liteq's API.

    Args:
        filename: The SQLite file; created if missing.
        max_retries: Most deliveries of a message without an ack before it moves
            to the dead-letter queue (an int >= 1).
        timeout_seconds: Seconds a read or write waits for SQLite's lock held by
            another connection before :class:`~localqueue.errors.QueueStoreLockedError`.

    Raises:
        ValidationError: An argument is out of range.
    """

    def __init__(
        self,
        filename: str | os.PathLike[str],
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        if not isinstance(filename, str | os.PathLike) or not os.fspath(filename):
            raise ValidationError(f"filename must be a non-empty path, got {filename!r}")
        self.filename = os.fspath(filename)
        self.max_retries = _count("max_retries", max_retries, 1)
        self.timeout_seconds = _seconds("timeout_seconds", timeout_seconds)
        url = f"sqlite:///{quote(self.filename)}?timeout={self.timeout_seconds!r}"
        self.store: QueueStore = open_queue_store(url)
        """The store holding the file's queues."""
        # id -> (queue, lease token) of the messages this object popped and has not settled.
        self._held: dict[str, tuple[str, str | None]] = {}
        self._held_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LiteQueue({self.filename!r}, max_retries={self.max_retries})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (an addition to liteq's API). Idempotent."""
        self.store.close()

    # -- producing -----------------------------------------------------------------

    def put(
        self,
        data: bytes,
        qname: str = DEFAULT_QUEUE,
        visible_after_seconds: float = 0,
        retries_on_conflict: int = 5,
        pause_on_conflict: float = 0.05,
    ) -> str:
        """Store one message, durably, and return its id.

        Args:
            data: The payload.
            qname: The queue.
            visible_after_seconds: Seconds before it can be popped.
            retries_on_conflict: Accepted for liteq compatibility (ids never collide).
            pause_on_conflict: Accepted for liteq compatibility.

        Raises:
            ValidationError: ``data`` is not ``bytes`` or an argument is out of range.
        """
        queue = check_queue_name(qname)
        payload = _encode(data)
        delay = _seconds("visible_after_seconds", visible_after_seconds)
        _check_conflict_policy(retries_on_conflict, pause_on_conflict)
        return self.store.put(queue, payload, codec=_CODEC.name, delay=delay).id

    def put_batch(
        self,
        messages: Iterable[bytes],
        qname: str = DEFAULT_QUEUE,
        visible_after_seconds: float = 0,
        retries_on_conflict: int = 5,
        pause_on_conflict: float = 0.05,
    ) -> list[str]:
        """Store up to :data:`MAX_BATCH` messages at once (all or none); their ids, in order.

        Raises:
            ValidationError: More than :data:`MAX_BATCH` messages, one is not ``bytes``,
                or an argument is out of range; nothing is stored.
        """
        queue = check_queue_name(qname)
        given: object = messages
        if isinstance(given, bytes | bytearray | str) or not isinstance(given, Iterable):
            raise ValidationError("messages must be a list of bytes payloads")
        batch: list[object] = list(given)
        if len(batch) > MAX_BATCH:
            raise ValidationError(f"put_batch takes at most {MAX_BATCH} messages, got {len(batch)}")
        payloads = [_encode(data) for data in batch]
        delay = _seconds("visible_after_seconds", visible_after_seconds)
        _check_conflict_policy(retries_on_conflict, pause_on_conflict)
        stored = self.store.put_many(queue, payloads, codec=_CODEC.name, delay=delay)
        return [message.id for message in stored]

    # -- consuming -----------------------------------------------------------------

    def _lease_one(self, queue: str, invisible_seconds: float) -> Message | None:
        """Lease the next deliverable message, dead-lettering those over the limit."""
        while True:
            leased = self.store.lease(queue, lease_timeout=invisible_seconds)
            if not leased:
                return None
            message = leased[0]
            token = message.lease_token
            if message.attempts > self.max_retries:
                reason = (
                    f"delivered {message.attempts - 1} times without an ack "
                    f"(max_retries={self.max_retries})"
                )
                self.store.dead_letter(queue, message.id, lease_token=token, error=reason)
                continue
            value = None
            try:
                value = message.value
            except MessageDecodeError as exc:
                reason = str(exc)
            else:
                reason = f"its value is a {type(value).__name__}, not bytes"
            if not isinstance(value, bytes):
                self.store.dead_letter(queue, message.id, lease_token=token, error=reason)
                continue
            with self._held_lock:
                self._held[message.id] = (queue, token)
            return Message(message.id, value, queue, message.attempts - 1, message.created_at)

    def pop(
        self,
        qname: str = DEFAULT_QUEUE,
        invisible_seconds: float = 60,
        wait_seconds: float = 0,
        pause_on_empty_fetch: float = 0.05,
    ) -> Message | None:
        """Lease the next message; settle it with :meth:`delete` (or :meth:`fail`).

        Args:
            qname: The queue.
            invisible_seconds: Seconds no other consumer receives it; after that
                it is delivered again (and the delivery counts toward ``max_retries``).
            wait_seconds: When the queue is empty, keep trying this many seconds.
            pause_on_empty_fetch: Most seconds between two tries while waiting.

        Returns:
            The message, or ``None`` when none came.
        """
        queue = check_queue_name(qname)
        invisible = _positive_seconds("invisible_seconds", invisible_seconds)
        wait = _seconds("wait_seconds", wait_seconds)
        pause = _seconds("pause_on_empty_fetch", pause_on_empty_fetch)
        deadline = time.monotonic() + wait
        while True:
            message = self._lease_one(queue, invisible)
            if message is not None:
                return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.store.wait(queue, min(pause, remaining))

    @contextlib.contextmanager
    def consume(
        self, qname: str = DEFAULT_QUEUE, invisible_seconds: float = 60
    ) -> Iterator[Message | None]:
        """Pop a message for a ``with`` block, which receives ``None`` if there is none.

        When the block ends normally the message is deleted; when it raises, the
        failure is recorded as by :meth:`fail` and the exception propagates.
        """
        message = self.pop(qname, invisible_seconds)
        if message is None:
            yield None
            return
        try:
            yield message
        except BaseException as exc:
            self.fail(message.id, exc)
            raise
        self.delete(message.id)

    # -- settling ------------------------------------------------------------------

    def _claim(self, message_id: str) -> tuple[str, str | None] | None:
        """The queue and lease token to act on ``message_id`` with; ``None`` if unknown.

        A message this object popped is acted on under its lease token only, even
        after that lease was lost, so a late call never settles another
        consumer's delivery.
        """
        with self._held_lock:
            held = self._held.get(message_id)
        if held is not None:
            return held
        for queue in self.store.queues():
            if self.store.inspect(queue, message_id) is not None:
                return queue, None
        return None

    def _settled(self, message_id: str, claim: tuple[str, str | None], done: bool) -> bool:
        """Forget the lease of a message settled under ``claim``; return ``done``."""
        if done:
            with self._held_lock:
                if self._held.get(message_id) == claim:
                    del self._held[message_id]
        return done

    def delete(self, message_id: str) -> bool:
        """Delete a message for good: the ack after :meth:`pop`.

        Returns:
            Whether it was deleted (``False``: unknown id, or a message this object
            popped whose lease another consumer has taken over since).
        """
        claim = self._claim(check_message_id(message_id))
        if claim is None:
            return False
        queue, token = claim
        done = self.store.ack(queue, message_id, lease_token=token)
        return self._settled(message_id, claim, done)

    def fail(self, message_id: str, reason: BaseException | str | None = None) -> bool:
        """Record a failed delivery: visible again at once, or dead once it was the last.

        A message whose deliveries reach ``max_retries`` moves to the dead-letter
        queue with ``reason`` recorded; otherwise it is made visible again now with
        ``reason`` recorded as its last error. Failing a message that is not leased
        (an id this object did not pop) ends no delivery, so it adds none.

        Returns:
            Whether the message was settled (``False``: unknown id, already dead, or
            its lease was taken over).
        """
        claim = self._claim(check_message_id(message_id))
        if claim is None:
            return False
        queue, token = claim
        message = self.store.inspect(queue, message_id)
        if message is None:
            self._settled(message_id, claim, True)  # deleted meanwhile: nothing to hold
            return False
        error = format_error(reason) or "failed"
        if message.attempts >= self.max_retries:
            done = self.store.dead_letter(queue, message_id, lease_token=token, error=error)
        else:
            done = self.store.release(queue, message_id, lease_token=token, error=error)
        return self._settled(message_id, claim, done)

    # -- managing ------------------------------------------------------------------

    def clear(self, qname: str = DEFAULT_QUEUE, dlq: bool = False) -> int:
        """Delete the queue's messages that are not leased; with ``dlq``, its dead letters too.

        Returns:
            How many messages were deleted.
        """
        queue = check_queue_name(qname)
        deleted = self.store.purge(queue, "ready")
        if dlq:
            deleted += self.store.purge(queue, "dead")
        return deleted

    def redrive(self, qname: str = DEFAULT_QUEUE) -> int:
        """Move every dead letter of the queue back, visible now with a fresh retry count.

        Returns:
            How many messages were moved.
        """
        return self.store.requeue_dead(check_queue_name(qname), None)

    # -- looking -------------------------------------------------------------------

    def peek(self, qname: str = DEFAULT_QUEUE) -> Message | None:
        """The message :meth:`pop` would return next, without leasing it; ``None`` if none.

        Raises:
            MessageDecodeError: That message does not hold ``bytes`` (the next
                :meth:`pop` dead-letters it).
        """
        queue = check_queue_name(qname)
        message = self.store.peek(queue)
        if message is None:
            return None
        value = message.value
        if not isinstance(value, bytes):
            raise MessageDecodeError(message.id, message.codec, "its value is not bytes")
        return Message(message.id, value, queue, message.attempts, message.created_at)

    def qsize(self, qname: str = DEFAULT_QUEUE) -> int:
        """Messages of the queue not yet deleted or dead: visible, delayed or leased."""
        stats = self.store.stats(check_queue_name(qname))
        return stats.ready + stats.delayed + stats.inflight

    def empty(self, qname: str = DEFAULT_QUEUE) -> bool:
        """Whether no message of the queue is visible now."""
        return self.store.stats(check_queue_name(qname)).ready == 0

    def join(self, qname: str = DEFAULT_QUEUE, timeout: float | None = None) -> None:
        """Block until :meth:`qsize` is 0: every message deleted or dead.

        Args:
            qname: The queue.
            timeout: Most seconds to wait (an addition to liteq's API); ``None`` waits on.

        Raises:
            TimeoutError: ``timeout`` passed first.
        """
        queue = check_queue_name(qname)
        deadline = None if timeout is None else time.monotonic() + _seconds("timeout", timeout)
        pause = 0.005
        while self.qsize(queue):
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"queue {queue!r} still has messages")
            time.sleep(pause)
            pause = min(pause * 2, _JOIN_PAUSE)
