"""The backend kit: the public pieces a store is built from, besides the protocols.

Every store in this repository, and every third-party one, uses these rather
than writing its own: the stored state codes and the rule that turns them into
the state a message is reported in, the fast message builders, the id and
lease-token formats, the check of constructor arguments against URL options,
retry-record arithmetic and the pattern for translating engine exceptions.
Nothing here touches an engine, and nothing here encodes values: a store moves
bytes and the codec's name, and the queue above it does the encoding.

Message ids are 32 lower-case hex digits: 12 of the creation time in Unix
milliseconds, then 20 random ones (:func:`new_message_id`), so ids sort by
creation millisecond and never repeat across processes. A store may use
another format (SQLite packs its row id into the first 16 digits) as long as
ids are strings that :func:`localqueue.validation.check_message_id` accepts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Self

from localqueue._models import (
    Capability,
    MessageState,
    QueueMessage,
    QueueStats,
    RetryRecord,
    build_message,
    ready_message,
)
from localqueue.errors import (
    ConfigurationError,
    LocalQueueError,
    StoreError,
)
from localqueue.urls import Option

__all__ = [
    "Capability",
    "ClosingContext",
    "ErrorRule",
    "MessageState",
    "QueueMessage",
    "QueueStats",
    "RetryRecord",
    "StoredState",
    "build_message",
    "check_argument",
    "effective_state",
    "max_deliveries_error",
    "new_lease_token",
    "new_message_id",
    "new_message_ids",
    "next_attempt",
    "ready_message",
    "translate_error",
    "translating",
    "with_failure",
]


class ClosingContext:
    """Mixin: the store is a context manager that calls ``close()`` on exit.

    ``with open_queue_store(url) as store:`` then works on every store alike.
    """

    close: Callable[[], None]
    """The store's own ``close``; the mixin only declares it."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StoredState(enum.IntEnum):
    """What a store records about a message; :func:`effective_state` derives the rest.

    A store keeps these codes (or its own spelling of them) and never stores
    "expired" or "delayed": those follow from the times.
    """

    READY = 0
    """Waiting for delivery (possibly delayed until ``available_at``)."""
    INFLIGHT = 1
    """Leased until ``available_at``; after that it is available again."""
    DEAD = 2
    """Dead-lettered: out of delivery until requeued."""


def effective_state(
    stored: int, available_at: float, now: float
) -> tuple[MessageState, float | None]:
    """The state a message is reported in, and its ``leased_until``.

    A lease that has run out is reported ``READY`` (the message can be leased
    again) with no ``leased_until``. A code that is not a :class:`StoredState`
    (a damaged record) is reported ``DEAD``: it is never delivered, and it is
    never shown as an ordinary ready message.
    """
    if stored == StoredState.INFLIGHT:
        if available_at > now:
            return MessageState.INFLIGHT, available_at
        return MessageState.READY, None
    if stored == StoredState.READY:
        return MessageState.READY, None
    return MessageState.DEAD, None


def new_message_id() -> str:
    """A 32-hex-digit id that sorts by creation millisecond (UUIDv7-like).

    The random part comes from ``os.urandom`` so forked processes never repeat
    each other's ids.
    """
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def new_message_ids(count: int) -> list[str]:
    """``count`` ids in the format of :func:`new_message_id`, with one clock read and one
    ``urandom`` call for the whole batch."""
    head = f"{time.time_ns() // 1_000_000:012x}"
    tail = os.urandom(10 * count).hex()
    return [head + tail[i : i + 20] for i in range(0, 20 * count, 20)]


def new_lease_token() -> str:
    """A fresh random proof of one lease (16 hex digits)."""
    return os.urandom(8).hex()


def check_argument(option: Option[Any], value: object, message: str) -> None:
    """Refuse a constructor argument that ``option`` would not give from URL text.

    A store's constructor checks each argument with the :class:`Option` its
    URL declares, so a value is accepted as an argument exactly when it would
    be as ``?name=value``: of the default's type (an ``int`` where a ``float``
    is expected; never a ``bool`` where a number is) and parsing back to itself
    from its text (in range, one of the choices).

    Raises:
        ConfigurationError: ``message``, formatted with ``value=value``.
    """
    # An int is a fine number of seconds; a bool is never a number.
    kinds = (int, float) if type(option.default) is float else type(option.default)
    try:
        ok = (
            isinstance(value, kinds)
            and (isinstance(option.default, bool) or not isinstance(value, bool))
            and option.parse(str(value)) == value
        )
    except ValueError:
        ok = False
    if not ok:
        raise ConfigurationError(message.format(value=value))


def max_deliveries_error(max_deliveries: int) -> str:
    """The ``last_error`` of a message ``lease`` dead-letters for reaching ``max_deliveries``."""
    return (
        f"MaxDeliveriesExceeded: delivered {max_deliveries} times without an ack "
        f"(max_deliveries={max_deliveries})"
    )


def next_attempt(old: RetryRecord | None, key: str, now: float) -> RetryRecord:
    """The record ``begin_attempt`` stores: the first attempt, or one more than ``old``."""
    if old is None:
        return RetryRecord(key=key, attempts=1, first_attempt_at=now, last_attempt_at=now)
    return dataclasses.replace(old, attempts=old.attempts + 1, last_attempt_at=now)


def with_failure(old: RetryRecord, error: str | None, *, exhausted: bool) -> RetryRecord:
    """The record ``record_failure`` stores: ``old`` with the failure; exhaustion sticks.

    ``error`` must already have passed :func:`localqueue.validation.check_error`.
    """
    return dataclasses.replace(old, exhausted=old.exhausted or exhausted, last_error=error)


ErrorRule = tuple[
    type[BaseException] | tuple[type[BaseException], ...],
    Callable[[BaseException], StoreError | None],
]
"""One translation rule: engine exception type(s), and a function giving the
localqueue error for an instance (or ``None`` to try the next rule)."""


def translate_error(rules: Sequence[ErrorRule], exc: BaseException) -> StoreError | None:
    """The error the first matching rule gives for ``exc``, or ``None`` if none claims it.

    For stores that must look at the translated error before raising it (to
    retry lock contention, say); :func:`translating` is the usual way in.
    """
    for types, make in rules:
        if isinstance(exc, types):
            error = make(exc)
            if error is not None:
                return error
    return None


@contextlib.contextmanager
def translating(rules: Sequence[ErrorRule]) -> Iterator[None]:
    """Translate the engine exceptions raised inside the block onto localqueue's errors.

    localqueue's own errors pass through unchanged. For any other exception,
    the first rule whose type matches and whose function returns an error
    wins; that error is raised ``from`` the engine's exception, so callers can
    still reach it as ``__cause__``. An exception no rule claims propagates
    as it is (a bug, not an engine failure). Name the store in the messages
    by a redacted URL or a path, never with a password::

        rules = [
            (sqlite3.OperationalError, lambda e: QueueStoreLockedError(f"{where}: locked")
                if "locked" in str(e) else None),
            (sqlite3.DatabaseError, lambda e: StoreError(f"{where}: {e}")),
        ]
        with translating(rules):
            conn.execute(...)
    """
    try:
        yield
    except LocalQueueError:
        raise
    except BaseException as exc:
        error = translate_error(rules, exc)
        if error is not None:
            raise error from exc
        raise
