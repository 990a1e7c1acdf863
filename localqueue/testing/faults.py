"""Conformance tests for engine failures, through the ``FaultInjectable`` test hook.

Every write verb is called while the store's engine fails on purpose:

* ``engine_error``: the engine raises its own exception part-way through the
  call (after one row of a batch was written). The store must raise a
  :class:`~localqueue.errors.StoreError` chained ``from`` the engine's
  exception, and the call must leave nothing changed: batches are all or
  nothing.
* ``locked``: another connection holds the engine's write lock. The store must
  keep retrying for its lock timeout, then raise ``QueueStoreLockedError`` (or
  ``AttemptStoreLockedError``) having stored nothing; contention shorter than
  the timeout never reaches the caller.

After each fault the same call succeeds. Stores that do not implement the hook,
or do not declare a fault kind in ``faults``, skip the matching tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args

import pytest

from localqueue._models import QueueMessage
from localqueue.errors import (
    AttemptStoreLockedError,
    ConfigurationError,
    LocalQueueError,
    QueueStoreLockedError,
    StoreError,
    StoreLockedError,
)
from localqueue.protocols import (
    AttemptStore,
    Fault,
    FaultInjectable,
    FaultKind,
    IntegrityCheckable,
    QueueStore,
)
from localqueue.testing._base import CODEC
from localqueue.testing.attempt_store import AttemptStoreCase
from localqueue.testing.queue_store import QueueStoreCase

__all__ = [
    "AttemptEngineErrorSuite",
    "AttemptLockTimeoutSuite",
    "EngineErrorSuite",
    "FaultHookSuite",
    "LockTimeoutSuite",
]

Q = "jobs"
OTHER = "other"
LONG = 3600.0
LOCK_TIMEOUT = 0.3
"""The lock timeout the suite asks stores to use while a ``locked`` fault is active."""
LOCK_SLACK = 10.0
"""How long past its lock timeout a store may take to give up (slow, shared CI machines)."""


def _require(store: object, kind: FaultKind) -> FaultInjectable:
    if not isinstance(store, FaultInjectable):
        pytest.skip("store does not implement FaultInjectable")
    if kind not in store.faults:
        pytest.skip(f"store cannot simulate the {kind!r} fault")
    return store


# -- the queue store ---------------------------------------------------------------


@dataclass
class World:
    """What the queue-store fault tests start from, set up without faults."""

    ready: list[str]
    """Four ready messages of ``jobs``."""
    leased: list[QueueMessage]
    """Three messages of ``jobs`` leased for an hour, with their tokens."""
    dead: list[str]
    """Two dead letters of ``jobs``."""
    other: str
    """A ready message of the queue ``other``."""

    @property
    def ids(self) -> list[tuple[str, str]]:
        """Every ``(queue, message id)`` of the world."""
        return [
            *((Q, i) for i in self.ready),
            *((Q, m.id) for m in self.leased),
            *((Q, i) for i in self.dead),
            (OTHER, self.other),
        ]


def _token(m: QueueMessage) -> str:
    assert m.lease_token is not None
    return m.lease_token


@dataclass(frozen=True)
class Verb:
    """One write call of the queue store, and the rows it writes before a fault fires."""

    after: int
    call: Callable[[QueueStore, World], object]


QUEUE_VERBS: dict[str, Verb] = {
    "put": Verb(0, lambda s, w: s.put(Q, b"new", codec=CODEC)),
    "put-dedup": Verb(0, lambda s, w: s.put(Q, b"new", codec=CODEC, dedup_key="k")),
    "put_many": Verb(1, lambda s, w: s.put_many(Q, [b"a", b"b", b"c"], codec=CODEC)),
    "lease": Verb(0, lambda s, w: s.lease(Q, lease_timeout=LONG)),
    "lease-batch": Verb(1, lambda s, w: s.lease(Q, lease_timeout=LONG, limit=3)),
    "ack": Verb(0, lambda s, w: s.ack(Q, w.leased[0].id, lease_token=_token(w.leased[0]))),
    "ack_many": Verb(1, lambda s, w: s.ack_many(Q, [(m.id, _token(m)) for m in w.leased])),
    "release": Verb(
        0,
        lambda s, w: s.release(
            Q, w.leased[0].id, lease_token=_token(w.leased[0]), delay=5, error="retry"
        ),
    ),
    "extend": Verb(
        0,
        lambda s, w: s.extend(
            Q, w.leased[0].id, lease_token=_token(w.leased[0]), lease_timeout=3 * LONG
        ),
    ),
    "dead_letter": Verb(
        0,
        lambda s, w: s.dead_letter(Q, w.leased[0].id, lease_token=_token(w.leased[0]), error="x"),
    ),
    "requeue_dead-all": Verb(1, lambda s, w: s.requeue_dead(Q)),
    "requeue_dead-ids": Verb(1, lambda s, w: s.requeue_dead(Q, w.dead)),
    "purge-ready": Verb(1, lambda s, w: s.purge(Q, "ready")),
    "purge-dead": Verb(1, lambda s, w: s.purge(Q, "dead")),
    "purge-all": Verb(1, lambda s, w: s.purge(Q, "all")),
}
"""Every write verb of the queue store, each doing real work on a :class:`World`."""


class FaultCase(QueueStoreCase):
    """Base of the queue-store fault classes: the world and its snapshot."""

    @pytest.fixture
    def world(self, store: QueueStore) -> World:
        """Ready, leased and dead messages in ``jobs`` and one message in ``other``."""
        put = [self.put(store, f"m{i}".encode()) for i in range(9)]
        leased = store.lease(Q, lease_timeout=LONG, limit=5)
        assert [m.id for m in leased] == [m.id for m in put[:5]]
        for m in leased[3:]:
            assert store.dead_letter(Q, m.id, lease_token=m.lease_token, error="boom")
        other = self.put(store, b"o", queue=OTHER)
        return World(
            ready=[m.id for m in put[5:]],
            leased=leased[:3],
            dead=[m.id for m in leased[3:]],
            other=other.id,
        )

    @staticmethod
    def everything(store: QueueStore, world: World) -> tuple[Any, ...]:
        """All that is observable about the world's queues and messages."""
        rows = []
        for queue, message_id in world.ids:
            m = store.inspect(queue, message_id)
            rows.append(
                None
                if m is None
                else (
                    m.id,
                    m.state,
                    m.payload,
                    m.attempts,
                    m.priority,
                    m.available_at,
                    m.leased_until,
                    m.leased_by,
                    m.last_error,
                    m.failed_at,
                )
            )
        peeked = store.peek(Q)
        return (
            store.queues(),
            store.stats(Q),
            store.stats(OTHER),
            None if peeked is None else peeked.id,
            [m.id for m in store.dead_letters(Q)],
            rows,
        )

    def works_again(self, store: QueueStore, world: World, verb: Verb, before: Any) -> None:
        """After the fault the same call succeeds, changes the world, and leaves a sound store."""
        verb.call(store, world)
        assert self.everything(store, world) != before, "the call changed nothing after the fault"
        if isinstance(store, IntegrityCheckable):
            assert store.check_integrity() == []


class EngineErrorSuite(FaultCase):
    """Engine errors in the middle of a write are translated and undo the whole call."""

    @pytest.mark.parametrize("name", list(QUEUE_VERBS))
    def test_engine_error_is_translated_and_changes_nothing(
        self, store: QueueStore, world: World, name: str
    ) -> None:
        injectable = _require(store, "engine_error")
        verb = QUEUE_VERBS[name]
        before = self.everything(store, world)
        fault = Fault("engine_error", after=verb.after)
        with injectable.inject_fault(fault), pytest.raises(StoreError) as raised:
            verb.call(store, world)
        error = raised.value
        assert not isinstance(error, StoreLockedError), f"an engine error reported as {error!r}"
        cause = error.__cause__
        assert cause is not None, "the engine's exception is not chained as __cause__"
        assert not isinstance(cause, LocalQueueError), "__cause__ is not the engine's exception"
        assert self.everything(store, world) == before, f"a failed {name} changed the store"
        self.works_again(store, world, verb, before)

    def test_failed_batch_stores_none_of_it(self, store: QueueStore, world: World) -> None:
        injectable = _require(store, "engine_error")
        total = store.stats(Q).total
        fault = Fault("engine_error", after=2)
        with injectable.inject_fault(fault), pytest.raises(StoreError):
            store.put_many(Q, [b"%d" % i for i in range(10)], codec=CODEC)
        assert store.stats(Q).total == total
        stored = store.put_many(Q, [b"%d" % i for i in range(10)], codec=CODEC)
        assert [store.inspect(Q, m.id) is not None for m in stored] == [True] * 10
        assert store.stats(Q).total == total + 10


class LockTimeoutSuite(FaultCase):
    """A write lock held by another connection is waited for, up to the store's timeout."""

    @pytest.mark.parametrize("name", list(QUEUE_VERBS))
    def test_lock_held_past_the_timeout_raises_locked_and_changes_nothing(
        self, store: QueueStore, world: World, name: str
    ) -> None:
        injectable = _require(store, "locked")
        verb = QUEUE_VERBS[name]
        before = self.everything(store, world)
        with injectable.inject_fault(Fault("locked", timeout=LOCK_TIMEOUT)):
            started = time.monotonic()
            with pytest.raises(QueueStoreLockedError):
                verb.call(store, world)
            elapsed = time.monotonic() - started
        assert elapsed >= 0.9 * LOCK_TIMEOUT, f"gave up after {elapsed:.3f} s, before the timeout"
        assert elapsed < LOCK_TIMEOUT + LOCK_SLACK, f"still waiting {elapsed:.1f} s later"
        assert self.everything(store, world) == before, f"a locked-out {name} changed the store"
        self.works_again(store, world, verb, before)

    @pytest.mark.parametrize("name", ["put", "put_many", "lease", "ack_many"])
    def test_contention_shorter_than_the_timeout_is_waited_out(
        self, store: QueueStore, world: World, name: str
    ) -> None:
        injectable = _require(store, "locked")
        verb = QUEUE_VERBS[name]
        before = self.everything(store, world)
        _while_locked_briefly(injectable, lambda: verb.call(store, world))
        assert self.everything(store, world) != before


def _while_locked_briefly(injectable: FaultInjectable, call: Callable[[], object]) -> None:
    """Run ``call`` while another thread holds the lock for 0.3 s of a 30 s timeout."""
    locked = threading.Event()
    done = threading.Event()
    failures: list[BaseException] = []

    def hold() -> None:
        try:
            with injectable.inject_fault(Fault("locked", timeout=30.0)):
                locked.set()
                done.wait(0.3)
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)
            locked.set()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(30), "the lock fault could not be set up"
        assert not failures, failures
        call()  # must not raise: the lock is released long before the timeout
    finally:
        done.set()
        holder.join(30)
    assert not failures, failures


class FaultHookSuite(QueueStoreCase):
    """The hook itself: declared kinds only, and nothing left behind."""

    def test_declared_faults_are_known_and_others_refused(self, store: QueueStore) -> None:
        if not isinstance(store, FaultInjectable):
            pytest.skip("store does not implement FaultInjectable")
        known = set(get_args(FaultKind))
        assert store.faults <= known
        for kind in sorted(known - store.faults):
            with pytest.raises(ConfigurationError), store.inject_fault(Fault(kind)):
                pass  # pragma: no cover - the hook must refuse before this

    def test_an_unused_fault_leaves_the_store_as_it_was(self, store: QueueStore) -> None:
        if not isinstance(store, FaultInjectable):
            pytest.skip("store does not implement FaultInjectable")
        m = self.put(store, b"kept")
        for kind in sorted(store.faults):
            with store.inject_fault(Fault(kind)):
                pass
        assert store.queues() == [Q]
        assert store.stats(Q).total == 1
        assert self.lease_one(store).id == m.id
        if isinstance(store, IntegrityCheckable):
            assert store.check_integrity() == []


# -- the attempt store -----------------------------------------------------------------

ATTEMPT_VERBS: dict[str, Callable[[AttemptStore], object]] = {
    "begin_attempt-new": lambda a: a.begin_attempt("fresh"),
    "begin_attempt-existing": lambda a: a.begin_attempt("k1"),
    "record_failure": lambda a: a.record_failure("k1", "again", exhausted=True),
    "reset": lambda a: a.reset("k1"),
}
"""Every write verb of the attempt store, each doing real work on the seeded records."""


class AttemptFaultCase(AttemptStoreCase):
    """Base of the attempt-store fault classes: seeded records and their snapshot."""

    @pytest.fixture
    def seeded(self, attempts: AttemptStore) -> AttemptStore:
        """``k1``: one failed attempt; ``k2``: exhausted."""
        attempts.begin_attempt("k1")
        attempts.record_failure("k1", "boom")
        attempts.begin_attempt("k2")
        attempts.record_failure("k2", "spent", exhausted=True)
        return attempts

    @staticmethod
    def everything(attempts: AttemptStore) -> list[Any]:
        """The records of every key the tests touch."""
        return [attempts.get_record(key) for key in ("k1", "k2", "fresh")]


class AttemptEngineErrorSuite(AttemptFaultCase):
    """Engine errors in attempt-store writes are translated and change nothing."""

    @pytest.mark.parametrize("name", list(ATTEMPT_VERBS))
    def test_engine_error_is_translated_and_changes_nothing(
        self, seeded: AttemptStore, name: str
    ) -> None:
        injectable = _require(seeded, "engine_error")
        call = ATTEMPT_VERBS[name]
        before = self.everything(seeded)
        with injectable.inject_fault(Fault("engine_error")), pytest.raises(StoreError) as raised:
            call(seeded)
        error = raised.value
        assert not isinstance(error, StoreLockedError), f"an engine error reported as {error!r}"
        assert error.__cause__ is not None, "the engine's exception is not chained as __cause__"
        assert not isinstance(error.__cause__, LocalQueueError)
        assert self.everything(seeded) == before, f"a failed {name} changed the store"
        call(seeded)
        assert self.everything(seeded) != before


class AttemptLockTimeoutSuite(AttemptFaultCase):
    """A write lock held by another connection is waited for, up to the store's timeout."""

    @pytest.mark.parametrize("name", list(ATTEMPT_VERBS))
    def test_lock_held_past_the_timeout_raises_locked_and_changes_nothing(
        self, seeded: AttemptStore, name: str
    ) -> None:
        injectable = _require(seeded, "locked")
        call = ATTEMPT_VERBS[name]
        before = self.everything(seeded)
        with injectable.inject_fault(Fault("locked", timeout=LOCK_TIMEOUT)):
            started = time.monotonic()
            with pytest.raises(AttemptStoreLockedError):
                call(seeded)
            elapsed = time.monotonic() - started
        assert elapsed >= 0.9 * LOCK_TIMEOUT, f"gave up after {elapsed:.3f} s, before the timeout"
        assert elapsed < LOCK_TIMEOUT + LOCK_SLACK, f"still waiting {elapsed:.1f} s later"
        assert self.everything(seeded) == before, f"a locked-out {name} changed the store"
        call(seeded)
        assert self.everything(seeded) != before

    def test_contention_shorter_than_the_timeout_is_waited_out(self, seeded: AttemptStore) -> None:
        injectable = _require(seeded, "locked")
        _while_locked_briefly(injectable, lambda: seeded.begin_attempt("k1"))
        record = seeded.get_record("k1")
        assert record is not None
        assert record.attempts == 2
