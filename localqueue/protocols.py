"""The storage contract: :class:`QueueStore` and :class:`AttemptStore`.

Everything above this seam (``PersistentQueue``, the worker, the retry layer,
the CLI) talks to these protocols only. An engine implements both, ships a
``Backend`` pair for the URL registry, and proves itself with the conformance
suite in :mod:`localqueue.testing`.

Shared rules for every method:

* Queue names, delays, timeouts and limits are checked first with
  :mod:`localqueue.validation`; a rejected call raises a
  :class:`~localqueue.errors.ValidationError` and changes nothing.
* Times are Unix seconds from the store's clock (injectable where the store
  declares :attr:`Capability.INJECTABLE_CLOCK`).
* A message is *available* when it is not dead and either ready with
  ``available_at <= now``, or leased with an expired lease.
* Delivery order among available messages: higher ``priority`` first, then
  earlier ``available_at``, then earlier ``put``.
* ``lease_token`` arguments: when given, the call acts only if the message is
  still held under that token (nobody leased it since, and it was not acked,
  released or dead-lettered). ``None`` is the operator's override that acts on
  the message in whatever state it is. Calls that act on one message return
  ``False`` when there was nothing to act on; they never raise for that.
* Engine errors are mapped onto :mod:`localqueue.errors`; lock contention is
  retried until the store's timeout before
  :class:`~localqueue.errors.QueueStoreLockedError` is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from localqueue._models import Capability, QueueMessage, QueueStats, RetryRecord
from localqueue.urls import StoreURL

__all__ = [
    "AttemptStore",
    "Backend",
    "Clock",
    "ConnectionKillable",
    "Damage",
    "DamageInjectable",
    "Fault",
    "FaultInjectable",
    "FaultKind",
    "IntegrityCheckable",
    "NamespacedBackend",
    "PurgeTarget",
    "QueueStore",
    "Repairable",
]

Clock = Callable[[], float]
"""A callable returning the current Unix time in seconds."""

PurgeTarget = Literal["ready", "dead", "all"]
"""What :meth:`QueueStore.purge` removes."""


@runtime_checkable
class QueueStore(Protocol):
    """Durable storage for many named queues of messages.

    A store moves bytes: payloads arrive encoded, with the name of the codec
    that wrote them, and are kept and returned unchanged. Encoding belongs to
    the queue above (:class:`~localqueue.queue.PersistentQueue`).
    """

    capabilities: frozenset[Capability]
    """The optional properties this store has."""

    def put(
        self,
        queue: str,
        payload: bytes,
        *,
        codec: str,
        delay: float = 0.0,
        priority: int = 0,
        dedup_key: str | None = None,
        max_size: int | None = None,
    ) -> QueueMessage:
        """Store one message, durably before returning.

        Args:
            queue: The queue's name.
            payload: The serialised value.
            codec: Name of the serializer that wrote ``payload``.
            delay: Seconds before the message becomes available.
            priority: Higher is delivered first.
            dedup_key: When a message with this key is still stored in the queue
                (in any state), nothing is stored and that message is returned.
            max_size: A capacity bound: store only if the queue then holds at most
                ``max_size`` unfinished messages. Unfinished means every message of
                the queue that is not dead (ready, delayed or leased, expired leases
                included): ``stats.ready + stats.delayed + stats.inflight``. The
                count and the insert are one atomic step, so concurrent callers on
                any number of handles and processes never exceed the bound (a put
                without ``max_size`` is not bounded and may go past it). A
                duplicate ``dedup_key`` still returns the stored message when the
                queue is full. ``None`` (the default) means no bound.

        Returns:
            The stored message (or the existing one, for a duplicate ``dedup_key``).

        Raises:
            Full: ``max_size`` would be exceeded; nothing is stored.
            ValidationError: ``max_size`` is not ``None`` or an int >= 1.
        """
        ...

    def put_many(
        self,
        queue: str,
        payloads: Sequence[bytes],
        *,
        codec: str,
        delay: float = 0.0,
        priority: int = 0,
        max_size: int | None = None,
    ) -> list[QueueMessage]:
        """Store several messages atomically: all of them, or none on error.

        ``max_size`` is the bound of :meth:`put`, checked for the whole batch in
        the same atomic step: the batch is stored only if all of it fits.

        Returns:
            The stored messages, in the order given; ``[]`` for an empty batch.

        Raises:
            Full: The batch would exceed ``max_size``; nothing is stored.
            ValidationError: ``max_size`` is not ``None`` or an int >= 1.
        """
        ...

    def lease(
        self,
        queue: str,
        *,
        lease_timeout: float,
        leased_by: str | None = None,
        limit: int = 1,
        max_deliveries: int | None = None,
    ) -> list[QueueMessage]:
        """Lease up to ``limit`` available messages, in delivery order.

        Each leased message becomes ``INFLIGHT`` with ``attempts`` incremented,
        ``leased_until = now + lease_timeout``, ``leased_by`` recorded and a new
        ``lease_token``. Other consumers cannot lease it until the lease ends.
        Atomic: two concurrent calls never lease the same message.

        With ``max_deliveries``, an available message already delivered that
        many times (``attempts >= max_deliveries``: leases that expired or were
        released without an ack all count) is dead-lettered instead, in the
        same atomic step, with ``last_error`` from
        :func:`localqueue.kit.max_deliveries_error` and ``failed_at`` now; the
        next available message is considered in its place.

        Returns:
            The leased messages; ``[]`` when none is available (never blocks).
        """
        ...

    def wait(self, queue: str, timeout: float) -> None:
        """Block until a message may have become available in ``queue``, at most ``timeout`` s.

        Returns early after a ``put``, ``release`` or ``requeue_dead`` on the
        queue, and by the time a delayed message or an expired lease becomes
        available. Stores that cannot be notified poll; spurious early returns
        are allowed. Callers re-check with :meth:`lease`.
        """
        ...

    def ack(self, queue: str, message_id: str, *, lease_token: str | None = None) -> bool:
        """Delete a message for good.

        Returns:
            Whether a message was deleted (``False``: unknown id or lease not held).
        """
        ...

    def ack_many(self, queue: str, leases: Sequence[tuple[str, str | None]]) -> int:
        """Delete several messages atomically, each given as ``(message_id, lease_token)``.

        Returns:
            How many were deleted; pairs whose lease is not held are skipped.
        """
        ...

    def release(
        self,
        queue: str,
        message_id: str,
        *,
        lease_token: str | None = None,
        delay: float = 0.0,
        error: str | None = None,
    ) -> bool:
        """Make a non-dead message ``READY`` again after ``delay`` seconds, ending its lease.

        ``attempts`` is kept. When ``error`` is given it is recorded as
        ``last_error`` with ``failed_at = now``.

        Returns:
            Whether a message was released.
        """
        ...

    def extend(
        self, queue: str, message_id: str, *, lease_token: str, lease_timeout: float
    ) -> bool:
        """Set the lease of a held message to end ``lease_timeout`` seconds from now.

        Returns:
            Whether the lease is (still) held and was extended.
        """
        ...

    def dead_letter(
        self,
        queue: str,
        message_id: str,
        *,
        lease_token: str | None = None,
        error: str | None = None,
    ) -> bool:
        """Move a non-dead message to dead-letter storage, recording ``error`` and ``failed_at``.

        Returns:
            Whether a message was dead-lettered.
        """
        ...

    def requeue_dead(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        """Return dead letters to ``READY`` with ``attempts`` reset to 0, available now.

        ``last_error`` and ``failed_at`` are kept for the record.

        Args:
            queue: The queue's name.
            message_ids: The dead letters to requeue; ``None`` requeues all of them.

        Returns:
            How many messages were requeued (ids that are not dead letters are skipped).
        """
        ...

    def purge(self, queue: str, target: PurgeTarget = "ready") -> int:
        """Delete messages: ``"ready"`` (ready and delayed, not leased), ``"dead"``, or ``"all"``.

        Returns:
            How many messages were deleted.
        """
        ...

    def peek(self, queue: str) -> QueueMessage | None:
        """The message :meth:`lease` would return next, without leasing it; ``None`` if none."""
        ...

    def inspect(self, queue: str, message_id: str) -> QueueMessage | None:
        """One message by id, in any state; ``None`` if it is not stored."""
        ...

    def dead_letters(self, queue: str, *, limit: int | None = None) -> list[QueueMessage]:
        """Dead letters of a queue, oldest failure first; ``[]`` if none."""
        ...

    def stats(self, queue: str) -> QueueStats:
        """Counts of the queue's messages by effective state (zeros for an unknown queue)."""
        ...

    def queues(self) -> list[str]:
        """Names of the queues holding at least one message, sorted."""
        ...

    def close(self) -> None:
        """Release the store's resources.

        Idempotent; other calls then raise :class:`~localqueue.errors.StoreClosedError`.
        """
        ...


@runtime_checkable
class IntegrityCheckable(Protocol):
    """Optional: a store that can audit its own files (``isinstance`` tells whether it can)."""

    def check_integrity(self) -> list[str]:
        """Check the engine's files and localqueue's own indexes without changing anything.

        Returns:
            One line per problem found; ``[]`` when the store is healthy.
        """
        ...


@runtime_checkable
class Repairable(Protocol):
    """Optional: a store that can mend what :meth:`IntegrityCheckable.check_integrity` finds."""

    def repair(self) -> list[str]:
        """Rebuild localqueue's indexes from the records; move unreadable records aside.

        A record that cannot be read is kept as a dead letter whose ``last_error``
        says it was damaged (its bytes are kept as the value where any survive);
        an index entry whose record is gone is removed. Messages that were intact
        are unchanged. Safe while other handles use the store: it runs in the
        engine's write transactions.

        Returns:
            One line per repair made, naming the message id; ``[]`` when nothing
            needed repair. A second call right after returns ``[]``.
        """
        ...


Damage = Literal["record", "missing"]
"""How :meth:`DamageInjectable.damage_record` damages one stored message.

``"record"``: the message's record (row, hash or value holding its fields) is
overwritten with content the store cannot read, as a damaged page or a bad
manual edit leaves it, while its index entries stay. ``"missing"``: the record
is gone while index entries still point at it (engines whose indexes are their
own keys: LMDB, Redis).
"""


@runtime_checkable
class DamageInjectable(Protocol):
    """Optional test hook: a store that can damage one of its own records on demand.

    The conformance suite (:mod:`localqueue.testing.damage`) uses it to check that
    a damaged record is reported with its id, moved aside as a dead letter (or,
    when nothing of it is left, dropped with a logged warning) and never blocks
    the rest of its queue. Nothing in localqueue calls it in production.
    """

    damages: frozenset[Damage]
    """The kinds of damage this store can plant; the suite skips the others."""

    def damage_record(self, queue: str, message_id: str, how: Damage) -> None:
        """Damage the stored record of one message as ``how`` describes.

        Raises:
            ~localqueue.errors.ConfigurationError: ``how`` is not in :attr:`damages`.
        """
        ...


FaultKind = Literal["locked", "engine_error"]
"""What :class:`Fault` a store can simulate: lock contention or a failing engine."""


@dataclass(frozen=True)
class Fault:
    """An engine failure for :meth:`FaultInjectable.inject_fault` to simulate.

    Attributes:
        kind: ``"locked"``: every write finds the engine locked, as when another
            process holds its write lock; the store retries for ``timeout``
            seconds, then raises ``QueueStoreLockedError`` (``AttemptStoreLockedError``
            for attempt stores) having stored nothing. ``"engine_error"``: in
            every write transaction, the engine raises its own native exception
            at the row write after the first ``after`` ones succeeded; the store
            raises a :class:`~localqueue.errors.StoreError` chained ``from`` it,
            and the whole call is undone.
        after: ``engine_error`` only: row writes (rows, keys or index entries, as
            the engine counts them) of a transaction that succeed before the
            failure, so ``after >= 1`` fails a batch half-way.
        timeout: ``locked`` only: the lock timeout the store uses while the
            fault is active, in place of its configured one, so tests are quick.
    """

    kind: FaultKind
    after: int = 0
    timeout: float = 0.3


@runtime_checkable
class FaultInjectable(Protocol):
    """Optional test hook: a store that can make its own engine fail on demand.

    The conformance suite (:mod:`localqueue.testing.faults`) uses it to check
    error translation, lock timeouts and the atomicity of every write verb.
    A store simulates a fault with the engine's own mechanism wherever it can
    (a second connection holding the write lock, a trigger raising mid-batch),
    so the store's real retry, translation and rollback code is what is tested.
    It is a test helper: nothing in localqueue calls it in production.
    """

    faults: frozenset[FaultKind]
    """The fault kinds this store can simulate; the suite skips the others."""

    def inject_fault(self, fault: Fault) -> AbstractContextManager[None]:
        """Make the engine fail as ``fault`` describes until the context exits.

        The fault affects at least this handle (it may affect other handles on
        the same store); on exit the engine is back to normal and nothing the
        hook itself added remains stored.

        Raises:
            ~localqueue.errors.ConfigurationError: ``fault.kind`` is not in :attr:`faults`.
        """
        ...


@runtime_checkable
class ConnectionKillable(Protocol):
    """Optional test hook: a server store that can have its server drop its connections.

    The connection-kill campaign (:mod:`localqueue.testing.campaigns`) calls it
    many times a second while producers and consumers work, as a flapping
    network or a restarting server would. Nothing in localqueue calls it in
    production.
    """

    def kill_connections(self) -> int:
        """Have the server close every client connection of this store's namespace.

        Every process's connections to the same schema, prefix or database are
        closed, not only this handle's; the hook itself works over a connection
        of its own, which it closes too.

        Returns:
            How many connections the server closed.
        """
        ...


@runtime_checkable
class AttemptStore(Protocol):
    """Durable retry budgets: an attempt counter and failure record per key."""

    capabilities: frozenset[Capability]
    """The optional properties this store has."""

    def get_record(self, key: str) -> RetryRecord | None:
        """The record of ``key``; ``None`` if it has none."""
        ...

    def begin_attempt(self, key: str) -> RetryRecord:
        """Atomically count one more attempt for ``key``, creating its record if needed.

        Called before the attempt runs, so an attempt that crashes the process
        still counts.

        Returns:
            The record after the increment.
        """
        ...

    def record_failure(
        self, key: str, error: str | None, *, exhausted: bool = False
    ) -> RetryRecord | None:
        """Record the latest failure of ``key``; ``exhausted=True`` marks its budget spent.

        A record once exhausted stays exhausted until :meth:`reset`.

        Returns:
            The updated record; ``None`` if ``key`` has no record.
        """
        ...

    def reset(self, key: str) -> bool:
        """Forget ``key``'s record.

        Returns:
            Whether a record was deleted.
        """
        ...

    def close(self) -> None:
        """Release the store's resources. Idempotent."""
        ...


@runtime_checkable
class Backend(Protocol):
    """What a URL scheme resolves to: openers for both store kinds.

    Each backend reads its own options with ``url.options(SPEC)``, which
    raises :class:`~localqueue.errors.InvalidOptionError` for unknown keys.
    ``clock`` is only passed to backends declaring ``INJECTABLE_CLOCK``.
    """

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The capabilities of the stores this backend opens (an attribute or a property)."""
        ...

    def open_queue_store(self, url: StoreURL, *, clock: Clock | None = None) -> QueueStore:
        """Open the queue store the URL names."""
        ...

    def open_attempt_store(self, url: StoreURL, *, clock: Clock | None = None) -> AttemptStore:
        """Open the attempt store the URL names."""
        ...


@runtime_checkable
class NamespacedBackend(Protocol):
    """A backend that can derive private, throw-away stores from a URL (optional).

    The conformance suite's ``--localqueue-url`` route gives every test its own
    namespace of the URL it was given and drops it after the test, so tests
    never see each other's messages. A persistent store without this hook
    cannot be tested through that route (the suite fails and says so).
    """

    def namespace(self, url: StoreURL, name: str) -> StoreURL:
        """The URL of a fresh, empty store derived from ``url``.

        Args:
            url: The URL the user gave.
            name: A short token of ``[a-z0-9]`` unique to the caller; the same
                ``url`` and ``name`` always give the same namespace.

        Returns:
            A URL naming a store no other namespace shares (its own file or
            directory, schema, key prefix...), with ``url``'s other options.
        """
        ...

    def drop_namespace(self, url: StoreURL) -> None:
        """Delete everything stored under a URL :meth:`namespace` returned. Idempotent.

        Raises:
            ConfigurationError: ``url`` is not one :meth:`namespace` returns.
        """
        ...
