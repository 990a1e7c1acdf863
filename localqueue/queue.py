"""``PersistentQueue``: the user-facing queue over any :class:`QueueStore`."""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Self, TypeVar

from localqueue._models import QueueMessage, QueueStats
from localqueue.errors import (
    ConfigurationError,
    Empty,
    Full,
    LeaseLostError,
    MessageDecodeError,
    MessageNotFoundError,
    ValidationError,
)
from localqueue.protocols import PurgeTarget, QueueStore
from localqueue.registry import open_queue_store, url_max_deliveries, url_serializer
from localqueue.serializers import DEFAULT_SERIALIZER, Serializer, get_serializer
from localqueue.urls import StoreURL
from localqueue.validation import (
    check_lease_timeout,
    check_max_deliveries,
    check_queue_name,
    check_timeout,
)

__all__ = ["DEFAULT_QUEUE_STORE_PATH", "PersistentQueue", "format_error"]

logger = logging.getLogger("localqueue.queue")

_T = TypeVar("_T")

DEFAULT_QUEUE_STORE_PATH = "localqueue_queue.sqlite3"
"""The SQLite file used when no store is given."""

# Upper bound on one blocking wait slice, so a waiter re-checks its own deadline.
_WAIT_SLICE = 1.0


def format_error(error: BaseException | str | None) -> str | None:
    """The text recorded as ``last_error`` for an exception (``Type: message``) or string."""
    if error is None or isinstance(error, str):
        return error
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class PersistentQueue:
    """A named, durable queue with at-least-once delivery, over any store.

    Args:
        name: The queue's name within the store.
        store: A :class:`~localqueue.protocols.QueueStore`, or a store URL such as
            ``"sqlite:///jobs.db"``, ``"lmdb:///jobs"`` or ``"memory://"``.
            Defaults to the SQLite file :data:`DEFAULT_QUEUE_STORE_PATH`.
        store_path: A SQLite file path; shorthand for ``store="sqlite:///..."``.
        maxsize: When positive, ``put`` blocks (or raises :class:`~localqueue.errors.Full`)
            while the queue holds this many unfinished (ready, delayed or leased) messages.
        lease_timeout: Seconds a leased message stays invisible to other consumers.
        serializer: The codec (or its registered name) new values are encoded with:
            msgpack by default, or what a store URL's ``?serializer=`` names. Any
            message is decoded with the codec recorded with it, so changing this
            only affects new messages.
        max_deliveries: A message delivered this many times without an ack (lease
            expiries and releases included) is dead-lettered by the store at its
            next lease, atomically, with the reason recorded (SQS's maxReceiveCount).
            ``None`` (default): no cap. A store URL's ``?max_deliveries=`` sets it too.

    Raises:
        ConfigurationError: ``serializer`` and the URL's ``?serializer=`` disagree,
            or either names no registered serializer.

    A store opened from a URL belongs to the queue and is closed by :meth:`close`;
    a store instance passed in is left open for its owner.
    """

    def __init__(
        self,
        name: str,
        store: QueueStore | str | os.PathLike[str] | None = None,
        *,
        store_path: str | os.PathLike[str] | None = None,
        maxsize: int = 0,
        lease_timeout: float = 30.0,
        serializer: Serializer | str | None = None,
        max_deliveries: int | None = None,
    ) -> None:
        self.name = check_queue_name(name)
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ValidationError(f"maxsize must be an int >= 0, got {maxsize!r}")
        self.maxsize = maxsize
        self.lease_timeout = check_lease_timeout(lease_timeout)
        if store is not None and store_path is not None:
            raise ValidationError("pass either store or store_path, not both")
        if store is None:
            store = os.fspath(store_path) if store_path is not None else DEFAULT_QUEUE_STORE_PATH
        chosen = None if serializer is None else get_serializer(serializer)
        cap = check_max_deliveries(max_deliveries)
        if isinstance(store, str | os.PathLike):
            url = StoreURL.parse(store)  # once: the queue's options, then the store
            url_cap = url_max_deliveries(url)
            if cap is not None and url_cap is not None and cap != url_cap:
                raise ConfigurationError(
                    f"max_deliveries={cap} disagrees with the store URL's "
                    f"?max_deliveries={url_cap}: give one of them"
                )
            cap = url_cap if cap is None else cap
            from_url = url_serializer(url)
            if chosen is not None and from_url is not None and chosen.name != from_url.name:
                raise ConfigurationError(
                    f"serializer={chosen.name!r} disagrees with the store URL's "
                    f"?serializer={from_url.name}: give one of them"
                )
            chosen = chosen or from_url
            self.store: QueueStore = open_queue_store(url)
            self._owns_store = True
        else:
            self.store = store
            self._owns_store = False
        self.serializer: Serializer = chosen or get_serializer(DEFAULT_SERIALIZER)
        """The codec new values are encoded with."""
        self.max_deliveries: int | None = cap
        """Deliveries without an ack after which the store dead-letters a message."""
        self._gotten: collections.deque[QueueMessage] = collections.deque()
        self._gotten_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PersistentQueue({self.name!r}, store={self.store!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store if this queue opened it from a URL."""
        if self._owns_store:
            self.store.close()

    # -- producing -------------------------------------------------------------

    def _encode(self, value: Any) -> bytes:
        return self.serializer.dumps(value)

    def _unfinished(self) -> int:
        s = self.store.stats(self.name)
        return s.ready + s.delayed + s.inflight

    def _with_room(self, store_call: Callable[[int], _T], block: bool, timeout: float | None) -> _T:
        """Run a store put bounded by ``maxsize``, retrying while the store reports ``Full``.

        The store checks for room and stores in one atomic step, so concurrent
        producers in any number of processes never exceed ``maxsize``.
        """
        deadline = None if timeout is None else time.monotonic() + check_timeout(timeout)
        pause = 0.005
        while True:
            try:
                return store_call(self.maxsize)
            except Full:
                if not block:
                    raise Full(
                        f"queue {self.name!r} holds {self.maxsize} unfinished messages"
                    ) from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise Full(f"queue {self.name!r} stayed full for {timeout} s") from None
            # Acks do not notify waiters, so room is polled for with a short back-off.
            time.sleep(
                pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic()))
            )
            pause = min(pause * 2, 0.1)

    def put(
        self,
        value: Any,
        block: bool = True,
        timeout: float | None = None,
        *,
        delay: float = 0.0,
        priority: int = 0,
        dedup_key: str | None = None,
    ) -> QueueMessage:
        """Add a value; it is durable when this returns.

        Args:
            value: Anything the queue's serializer encodes (``bytes`` need msgpack).
            block: With ``maxsize``, wait for room instead of raising ``Full``.
            timeout: Most seconds to wait for room.
            delay: Seconds before the message can be delivered.
            priority: Higher is delivered first.
            dedup_key: If a message with this key is still stored, return it instead.

        Returns:
            The stored message.

        Raises:
            UnserializableValueError: The value cannot be encoded; nothing is stored.
            Full: The queue stayed full.
        """
        store = self.store
        serializer = self.serializer
        payload = serializer.dumps(value)
        if self.maxsize <= 0:
            return store.put(
                self.name,
                payload,
                codec=serializer.name,
                delay=delay,
                priority=priority,
                dedup_key=dedup_key,
            )
        if timeout is not None:
            check_timeout(timeout)
        return self._with_room(
            lambda max_size: store.put(
                self.name,
                payload,
                codec=serializer.name,
                delay=delay,
                priority=priority,
                dedup_key=dedup_key,
                max_size=max_size,
            ),
            block,
            timeout,
        )

    def put_nowait(self, value: Any, **options: Any) -> QueueMessage:
        """``put`` without waiting for room: raises ``Full`` at once."""
        return self.put(value, False, **options)

    def put_many(
        self, values: Iterable[Any], *, delay: float = 0.0, priority: int = 0
    ) -> list[QueueMessage]:
        """Add several values atomically (all or none), much faster than a loop of ``put``.

        Raises:
            UnserializableValueError: A value cannot be encoded; nothing is stored.
            Full: The batch does not fit under ``maxsize``.
        """
        payloads = [self._encode(v) for v in values]
        store = self.store
        codec = self.serializer.name
        if self.maxsize <= 0:
            return store.put_many(self.name, payloads, codec=codec, delay=delay, priority=priority)
        return self._with_room(
            lambda max_size: store.put_many(
                self.name, payloads, codec=codec, delay=delay, priority=priority, max_size=max_size
            ),
            False,
            None,
        )

    # -- consuming -------------------------------------------------------------

    def get_messages(
        self,
        n: int = 1,
        *,
        block: bool = False,
        timeout: float | None = None,
        leased_by: str | None = None,
        lease_timeout: float | None = None,
    ) -> list[QueueMessage]:
        """Lease up to ``n`` messages.

        Args:
            n: Most messages to lease.
            block: Wait until at least one is available.
            timeout: With ``block``, most seconds to wait; then ``[]`` is returned.
            leased_by: Worker id recorded on the messages.
            lease_timeout: Overrides the queue's lease timeout.

        Returns:
            The leased messages, possibly ``[]``.
        """
        lease_for = self.lease_timeout if lease_timeout is None else lease_timeout
        deadline = None
        if block and timeout is not None:
            deadline = time.monotonic() + check_timeout(timeout)
        while True:
            leased = self.store.lease(
                self.name,
                lease_timeout=lease_for,
                leased_by=leased_by,
                limit=n,
                max_deliveries=self.max_deliveries,
            )
            if leased or not block:
                return leased
            remaining = _WAIT_SLICE
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
            self.store.wait(self.name, min(remaining, _WAIT_SLICE))

    def get_message(
        self,
        block: bool = True,
        timeout: float | None = None,
        *,
        leased_by: str | None = None,
        lease_timeout: float | None = None,
    ) -> QueueMessage:
        """Lease one message; ack, release or dead-letter it when done.

        Raises:
            Empty: Nothing became available (at once, or within ``timeout``).
        """
        leased = self.get_messages(
            1, block=block, timeout=timeout, leased_by=leased_by, lease_timeout=lease_timeout
        )
        if not leased:
            raise Empty(f"queue {self.name!r} is empty")
        return leased[0]

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Lease one message and return its value, like ``queue.Queue.get``.

        Call :meth:`task_done` when the value is processed, which acks it; a
        value not marked done is delivered again once its lease expires.
        A message whose payload cannot be decoded is dead-lettered with the
        error recorded, and the next one is returned.

        Raises:
            Empty: Nothing became available.
        """
        deadline = None if timeout is None else time.monotonic() + check_timeout(timeout)
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            message = self.get_message(block, remaining)
            try:
                value = message.value
            except MessageDecodeError as exc:
                logger.warning("dead-lettering undecodable message %s: %s", message.id, exc)
                self.store.dead_letter(
                    self.name, message.id, lease_token=message.lease_token, error=str(exc)
                )
                continue
            with self._gotten_lock:
                self._gotten.append(message)
            return value

    def get_nowait(self) -> Any:
        """``get`` without waiting: raises ``Empty`` at once."""
        return self.get(False)

    def task_done(self) -> None:
        """Ack the oldest value returned by :meth:`get` and not yet marked done.

        Raises:
            ValueError: More calls than values gotten from this object.
            LeaseLostError: Its lease expired and another consumer took it.
        """
        with self._gotten_lock:
            if not self._gotten:
                raise ValueError("task_done() called more times than get()")
            message = self._gotten.popleft()
        self.ack(message)

    @contextlib.contextmanager
    def consume(
        self,
        *,
        block: bool = False,
        timeout: float | None = None,
        leased_by: str | None = None,
        lease_timeout: float | None = None,
        max_attempts: int | None = None,
        release_delay: float = 0.0,
    ) -> Iterator[QueueMessage | None]:
        """Lease one message for a ``with`` block; yields ``None`` when there is none.

        On a clean exit the message is acked. If the block raises, the error is
        recorded and the message released after ``release_delay`` seconds, or
        dead-lettered once it has been delivered ``max_attempts`` times (the
        queue's ``max_deliveries`` when not given); the exception propagates.
        """
        if max_attempts is not None and (
            isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1
        ):
            raise ValidationError(f"max_attempts must be an int >= 1, got {max_attempts!r}")
        leased = self.get_messages(
            1, block=block, timeout=timeout, leased_by=leased_by, lease_timeout=lease_timeout
        )
        if not leased:
            yield None
            return
        message = leased[0]
        if max_attempts is None:
            max_attempts = self.max_deliveries
        try:
            yield message
        except BaseException as exc:
            if max_attempts is not None and message.attempts >= max_attempts:
                self.dead_letter(message, error=exc, missing_ok=True)
            else:
                self.release(message, delay=release_delay, error=exc, missing_ok=True)
            raise
        else:
            self.ack(message)

    # -- settling --------------------------------------------------------------

    def _settled(
        self, message: QueueMessage | str, done: bool, action: str, missing_ok: bool
    ) -> None:
        if done or missing_ok:
            return
        if isinstance(message, str):
            raise MessageNotFoundError(self.name, message)
        raise LeaseLostError(self.name, message.id, action)

    @staticmethod
    def _lease(message: QueueMessage | str) -> tuple[str, str | None]:
        if isinstance(message, str):
            return message, None
        if isinstance(message, QueueMessage):
            return message.id, message.lease_token
        raise ValidationError(f"expected a QueueMessage or a message id, got {message!r}")

    def ack(self, message: QueueMessage | str, *, missing_ok: bool = False) -> None:
        """Delete a processed message for good.

        Args:
            message: A leased message, or a message id (operator use: acts in any state).
            missing_ok: Do not raise when there was nothing to ack.

        Raises:
            LeaseLostError: The lease is no longer held (it expired and was re-leased,
                or the message was already settled).
            MessageNotFoundError: No message has that id.
        """
        message_id, token = self._lease(message)
        done = self.store.ack(self.name, message_id, lease_token=token)
        self._settled(message, done, "ack", missing_ok)

    def ack_many(self, messages: Sequence[QueueMessage]) -> int:
        """Ack several leased messages atomically.

        Returns:
            How many were acked; messages whose lease is lost are skipped.
        """
        if not messages:
            return 0
        return self.store.ack_many(self.name, [self._lease(m) for m in messages])

    def release(
        self,
        message: QueueMessage | str,
        *,
        delay: float = 0.0,
        error: BaseException | str | None = None,
        missing_ok: bool = False,
    ) -> None:
        """Give a message back for another delivery after ``delay`` seconds.

        ``error`` (an exception or text) is recorded as ``last_error``.

        Raises:
            LeaseLostError: The lease is no longer held.
            MessageNotFoundError: No message has that id (or it is a dead letter).
        """
        message_id, token = self._lease(message)
        done = self.store.release(
            self.name, message_id, lease_token=token, delay=delay, error=format_error(error)
        )
        self._settled(message, done, "release", missing_ok)

    def dead_letter(
        self,
        message: QueueMessage | str,
        *,
        error: BaseException | str | None = None,
        missing_ok: bool = False,
    ) -> None:
        """Move a message out of delivery into dead-letter storage, recording ``error``.

        Raises:
            LeaseLostError: The lease is no longer held.
            MessageNotFoundError: No message has that id (or it is already dead).
        """
        message_id, token = self._lease(message)
        done = self.store.dead_letter(
            self.name, message_id, lease_token=token, error=format_error(error)
        )
        self._settled(message, done, "dead-letter", missing_ok)

    def extend_lease(self, message: QueueMessage, lease_timeout: float | None = None) -> None:
        """Heartbeat: keep holding a leased message for ``lease_timeout`` more seconds.

        Raises:
            LeaseLostError: The lease is no longer held.
        """
        message_id, token = self._lease(message)
        if token is None:
            raise LeaseLostError(self.name, message_id, "extend the lease of")
        timeout = self.lease_timeout if lease_timeout is None else lease_timeout
        done = self.store.extend(self.name, message_id, lease_token=token, lease_timeout=timeout)
        self._settled(message, done, "extend the lease of", False)

    def requeue_dead(self, message: QueueMessage | str) -> None:
        """Return one dead letter to delivery, attempts reset.

        Raises:
            MessageNotFoundError: It is not a dead letter of this queue.
        """
        message_id = self._lease(message)[0]
        if self.store.requeue_dead(self.name, [message_id]) == 0:
            raise MessageNotFoundError(self.name, message_id)

    def requeue_all_dead(self) -> int:
        """Return every dead letter to delivery. Returns how many."""
        return self.store.requeue_dead(self.name, None)

    def purge(self, target: PurgeTarget = "ready") -> int:
        """Delete ``"ready"`` (and delayed), ``"dead"`` or ``"all"`` messages. Returns how many."""
        return self.store.purge(self.name, target)

    # -- looking ---------------------------------------------------------------

    def peek(self) -> QueueMessage | None:
        """The next message to be delivered, without leasing it; ``None`` if none."""
        return self.store.peek(self.name)

    def inspect(self, message_id: str) -> QueueMessage:
        """One message by id, in any state.

        Raises:
            MessageNotFoundError: No such message.
        """
        message = self.store.inspect(self.name, message_id)
        if message is None:
            raise MessageNotFoundError(self.name, message_id)
        return message

    def dead_letters(self, limit: int | None = None) -> list[QueueMessage]:
        """Dead letters, oldest failure first."""
        return self.store.dead_letters(self.name, limit=limit)

    def stats(self) -> QueueStats:
        """Ready, delayed, inflight and dead counts (and their total)."""
        return self.store.stats(self.name)

    def qsize(self) -> int:
        """Messages deliverable now (not delayed, leased or dead)."""
        return self.store.stats(self.name).ready

    def empty(self) -> bool:
        """Whether no message is deliverable now."""
        return self.qsize() == 0

    def full(self) -> bool:
        """Whether ``maxsize`` is set and reached by unfinished messages."""
        return self.maxsize > 0 and self._unfinished() >= self.maxsize

    def join(self, timeout: float | None = None) -> None:
        """Block until no ready, delayed or leased message remains (every one acked or dead).

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
        """
        deadline = None if timeout is None else time.monotonic() + check_timeout(timeout)
        pause = 0.005
        while self._unfinished():
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"queue {self.name!r} still has unfinished messages")
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
