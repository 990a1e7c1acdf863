# One-line docstrings name each bug and its guarantee; some run past 100 columns.
# ruff: noqa: E501
"""Planted-bug stores ("mutants"): each breaks one guarantee the conformance suite must catch.

Every mutant is a small subclass of a real store that overrides one method (or
one helper) with a bug a real backend author could write. Its docstring's first
line names the bug and the guarantee it breaks; ``catch`` says which kind of
suite test would catch it. ``tests/mutants/test_mutants.py`` runs the whole
conformance suite against each one and requires the suite to fail.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from localqueue._models import QueueMessage, QueueStats, RetryRecord, ready_message
from localqueue.errors import (
    Full,
    QueueStoreLockedError,
    StoreClosedError,
    StoreCorruptedError,
    StoreError,
)
from localqueue.protocols import PurgeTarget
from localqueue.stores import memory as mem
from localqueue.stores import sqlite as sq
from localqueue.stores.memory import MemoryAttemptStore, MemoryQueueStore
from localqueue.stores.sqlite import SQLiteAttemptStore, SQLiteQueueStore
from localqueue.validation import (
    MAX_ERROR_LENGTH,
    check_delay,
    check_error,
    check_lease,
    check_lease_timeout,
    check_limit,
    check_max_deliveries,
    check_max_size,
    check_message_id,
    check_put_many,
    check_queue_name,
    check_retry_key,
    check_timeout,
)

__all__ = ["MUTANTS", "Mutant", "by_name"]

Engine = Literal["memory", "sqlite"]
Kind = Literal["queue", "attempt"]
C = TypeVar("C", bound=type)


@dataclass(frozen=True)
class Mutant:
    """One planted-bug store: its name, engine, store kind, class, bug and expected catcher."""

    name: str
    engine: Engine
    kind: Kind
    cls: type
    catch: str

    @property
    def bug(self) -> str:
        """The first line of the class docstring: the bug and the guarantee it breaks."""
        return (self.cls.__doc__ or "").strip().splitlines()[0]


MUTANTS: list[Mutant] = []

_BASES: dict[type, tuple[Engine, Kind]] = {
    MemoryQueueStore: ("memory", "queue"),
    MemoryAttemptStore: ("memory", "attempt"),
    SQLiteQueueStore: ("sqlite", "queue"),
    SQLiteAttemptStore: ("sqlite", "attempt"),
}


def mutant(catch: str) -> Callable[[C], C]:
    """Register a mutant class; ``catch`` names the kind of test that should kill it."""

    def register(cls: C) -> C:
        base = next(b for b in cls.__mro__[1:] if b in _BASES)
        engine, kind = _BASES[base]
        name = "".join("_" + c.lower() if c.isupper() else c for c in cls.__name__).lstrip("_")
        MUTANTS.append(Mutant(name, engine, kind, cls, catch))
        return cls

    return register


LeaseFn = Callable[..., list[QueueMessage]]


def _real_when_capped(lease: LeaseFn) -> LeaseFn:
    """For mutants whose bug is in the plain lease: a lease with ``max_deliveries``
    runs the real store's, so the delivery-cap tests do not kill them by accident."""

    @functools.wraps(lease)
    def wrapper(
        self: Any, queue: str, *, max_deliveries: int | None = None, **kw: Any
    ) -> list[QueueMessage]:
        if max_deliveries is not None:
            # Mutant classes are leaves, so this is the real store's lease.
            real: LeaseFn = super(type(self), self).lease
            return real(queue, max_deliveries=max_deliveries, **kw)
        return lease(self, queue, **kw)

    return wrapper


def by_name(name: str) -> Mutant:
    """The mutant called ``name``."""
    for m in MUTANTS:
        if m.name == name:
            return m
    raise KeyError(name)


# ---------------------------------------------------------------------------
# memory queue store
# ---------------------------------------------------------------------------


@mutant("a concurrent-lease log: an id leased to two consumers while the first lease is valid")
class MemLeaseRace(MemoryQueueStore):
    """lease chooses outside the lock, then marks: two threads lease one message (no double lease)."""

    @_real_when_capped
    def lease(
        self, queue: str, *, lease_timeout: float, leased_by: str | None = None, limit: int = 1
    ) -> list[QueueMessage]:
        lease_timeout = check_lease(queue, lease_timeout, leased_by, limit)
        leased: list[QueueMessage] = []
        while len(leased) < limit:
            with self._lock:
                q = self._queue(queue)
                rec = self._next_ready(q, self._clock())
            if rec is None:
                break
            time.sleep(0.0005)  # the window between "choose" and "mark"
            with self._lock:
                now = self._clock()
                if q.ready and q.ready[0][3] == rec.id:
                    heapq.heappop(q.ready)
                rec.state = mem._INFLIGHT
                rec.attempts += 1
                rec.available_at = now + lease_timeout
                rec.leased_by = leased_by
                rec.token = "%016x" % next(self._tokens)  # noqa: UP031
                self._schedule(q, rec, now)
                leased.append(mem._message(queue, rec, now, rec.token))
        return leased


@mutant("wait() is shown to block: bounded store calls or elapsed time while nothing is due")
class MemWaitReturnsAtOnce(MemoryQueueStore):
    """wait returns at once, so consumers busy-spin (blocking get without busy polling)."""

    def wait(self, queue: str, timeout: float) -> None:
        check_queue_name(queue)
        check_timeout(timeout)
        with self._lock:
            self._queue(queue)


@mutant("put's available_at compared with the injected clock, absolute tolerance")
class MemPutReportsWrongAvailableAt(MemoryQueueStore):
    """put reports available_at 30 s late for a delayed message (timestamps from the store clock)."""

    def put(self, queue: str, payload: bytes, **kw: Any) -> QueueMessage:
        m = super().put(queue, payload, **kw)
        if kw.get("delay", 0):
            return ready_message(
                m.id,
                queue,
                payload,
                m.codec,
                m.created_at,
                m.available_at + 30,
                m.priority,
                m.dedup_key,
            )
        return m


def _find_any_queue(store: MemoryQueueStore, message_id: str) -> tuple[Any, Any]:
    for q in store._queues.values():
        rec = q.records.get(message_id)
        if rec is not None:
            return q, rec
    return None, None


@mutant("queue isolation for release: another queue's id must return False and change nothing")
class MemReleaseAnyQueue(MemoryQueueStore):
    """release finds the message by id in any queue (queue isolation)."""

    def release(
        self,
        queue: str,
        message_id: str,
        *,
        lease_token: str | None = None,
        delay: float = 0.0,
        error: str | None = None,
    ) -> bool:
        check_queue_name(queue)
        check_message_id(message_id)
        delay = check_delay(delay)
        error = check_error(error)
        with self._lock:
            self._queue(queue)
            q, rec = _find_any_queue(self, message_id)
            if rec is None or rec.state == mem._DEAD:
                return False
            if lease_token is not None and rec.token != lease_token:
                return False
            now = self._clock()
            rec.state = mem._READY
            rec.available_at = now + delay
            rec.token = None
            if error is not None:
                rec.last_error, rec.failed_at = error, now
            self._schedule(q, rec, now)
            self._changed.notify_all()
            return True


@mutant("queue isolation for inspect: another queue's id is None")
class MemInspectAnyQueue(MemoryQueueStore):
    """inspect returns a message of another queue by id (queue isolation)."""

    def inspect(self, queue: str, message_id: str) -> QueueMessage | None:
        check_queue_name(queue)
        check_message_id(message_id)
        with self._lock:
            self._queue(queue)
            for name, q in self._queues.items():
                rec = q.records.get(message_id)
                if rec is not None:
                    return mem._message(name, rec, self._clock())
            return None


@mutant("failed_at compared with the injected clock, absolute tolerance")
class MemReleaseFailedAtOff(MemoryQueueStore):
    """release records failed_at ten minutes off the store clock (timestamps from the store clock)."""

    def release(self, queue: str, message_id: str, **kw: Any) -> bool:
        done = super().release(queue, message_id, **kw)
        if done and kw.get("error") is not None:
            with self._lock:
                rec = self._queues[queue].records[message_id]
                rec.failed_at = (rec.failed_at or 0.0) - 600
        return done


@mutant("extend after the lease ended (release / dead letter) must be False")
class MemExtendUnleased(MemoryQueueStore):
    """extend treats a cleared token as 'anyone may': renews a released message (extend by the holder only)."""

    def extend(
        self, queue: str, message_id: str, *, lease_token: str, lease_timeout: float
    ) -> bool:
        check_queue_name(queue)
        check_message_id(message_id)
        lease_timeout = check_lease_timeout(lease_timeout)
        with self._lock:
            q = self._queue(queue)
            rec = q.records.get(message_id)
            if rec is None or (rec.token is not None and rec.token != lease_token):
                return False
            now = self._clock()
            rec.available_at = now + lease_timeout
            self._schedule(q, rec, now)
            return True


@mutant("put_many with a bad item mid-batch stores nothing")
class MemPutManyNotAtomic(MemoryQueueStore):
    """put_many validates and stores item by item, keeping the items before a bad one (atomic batch)."""

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
        with self._lock:
            self._queue(queue)  # closed-store check
        return [
            self.put(queue, p, codec=codec, delay=delay, priority=priority, max_size=max_size)
            for p in payloads
        ]


@mutant("ack with a wrong or stale token returns False and keeps the message")
class MemAckIgnoresToken(MemoryQueueStore):
    """ack ignores the lease token (no message acked twice / lease-guarded settle)."""

    def ack(self, queue: str, message_id: str, *, lease_token: str | None = None) -> bool:
        return super().ack(queue, message_id)


@mutant("an expired lease is leased again with attempts + 1")
class MemExpiredLeaseNotRedelivered(MemoryQueueStore):
    """leases never expire: timers only promote ready (delayed) messages (at-least-once delivery)."""

    def _promote(self, q: Any, now: float) -> None:
        timers = q.timers
        while timers and timers[0][0] <= now:
            _, seq, message_id, version = heapq.heappop(timers)
            rec = q.records.get(message_id)
            if rec is not None and rec.version == version and rec.state == mem._READY:
                heapq.heappush(q.ready, (-rec.priority, rec.available_at, seq, message_id, version))


@mutant("attempts is 1 on the first lease and one higher on each redelivery")
class MemAttemptsNotIncremented(MemoryQueueStore):
    """lease does not count the attempt (attempts incremented on each delivery)."""

    def lease(self, queue: str, **kw: Any) -> list[QueueMessage]:
        leased = super().lease(queue, **kw)
        with self._lock:
            for m in leased:
                self._queues[queue].records[m.id].attempts -= 1
        return [dataclasses.replace(m, attempts=m.attempts - 1) for m in leased]


@mutant("FIFO among messages put in one instant")
class MemFifoBroken(MemoryQueueStore):
    """messages put in the same instant come out newest first (FIFO within a priority)."""

    def _new(
        self,
        q: Any,
        message_id: str,
        payload: bytes,
        codec: str,
        now: float,
        delay: float,
        priority: int,
        dedup_key: str | None,
    ) -> Any:
        rec = mem._Record(
            message_id, -next(self._seq), payload, codec, now, now + delay, priority, dedup_key
        )
        q.records[rec.id] = rec
        if dedup_key is not None:
            q.dedup[dedup_key] = rec.id
        self._schedule(q, rec, now)
        return rec


@mutant("a second put with a stored dedup key returns the stored message")
class MemDedupIgnored(MemoryQueueStore):
    """put ignores the dedup key and stores a duplicate (deduplication)."""

    def put(self, queue: str, payload: bytes, **kw: Any) -> QueueMessage:
        key = kw.get("dedup_key")
        if key is not None:
            with self._lock:
                self._queue(queue).dedup.pop(key, None)
        return super().put(queue, payload, **kw)


@mutant("the same dedup key in two queues stores two messages")
class MemDedupNotPerQueue(MemoryQueueStore):
    """dedup keys are global: a key used in another queue returns that queue's message (per-queue dedup)."""

    def put(self, queue: str, payload: bytes, **kw: Any) -> QueueMessage:
        key = kw.get("dedup_key")
        if key is not None:
            with self._lock:
                for name, q in self._queues.items():
                    if key in q.dedup:
                        return mem._message(name, q.records[q.dedup[key]], self._clock())
        return super().put(queue, payload, **kw)


@mutant("a dead letter is never leased, even after its old lease would have expired")
class MemDeadLetterLeasable(MemoryQueueStore):
    """dead_letter forgets to retire the heap entries, so a dead letter is leased again (dead letters leave delivery)."""

    def dead_letter(
        self,
        queue: str,
        message_id: str,
        *,
        lease_token: str | None = None,
        error: str | None = None,
    ) -> bool:
        check_queue_name(queue)
        check_message_id(message_id)
        error = check_error(error)
        with self._lock:
            q = self._queue(queue)
            rec = self._held(q, message_id, lease_token)
            if rec is None:
                return False
            rec.state = mem._DEAD
            rec.token = None
            rec.last_error, rec.failed_at = error, self._clock()
            return True


@mutant("requeue_dead resets attempts to 0")
class MemRequeueKeepsAttempts(MemoryQueueStore):
    """requeue_dead keeps the old attempts count (requeue resets the budget)."""

    def requeue_dead(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        with self._lock:
            q = self._queue(queue)
            before = {r.id: r.attempts for r in q.records.values() if r.state == mem._DEAD}
        n = super().requeue_dead(queue, message_ids)
        with self._lock:
            for message_id, attempts in before.items():
                rec = q.records.get(message_id)
                if rec is not None and rec.state == mem._READY:
                    rec.attempts = attempts
        return n


@mutant("purge('ready') keeps inflight and dead messages")
class MemPurgeReadyTakesInflight(MemoryQueueStore):
    """purge('ready') also deletes messages under a valid lease (purge targets)."""

    def purge(self, queue: str, target: PurgeTarget = "ready") -> int:
        if target != "ready":
            return super().purge(queue, target)
        check_queue_name(queue)
        with self._lock:
            q = self._queue(queue)
            victims = [r for r in q.records.values() if r.state != mem._DEAD]
            for rec in victims:
                self._remove(q, rec)
            return len(victims)


@mutant("stats counts each state, delayed apart from ready")
class MemStatsDelayedAsReady(MemoryQueueStore):
    """stats counts delayed messages as ready (stats by effective state)."""

    def stats(self, queue: str) -> QueueStats:
        s = super().stats(queue)
        return QueueStats(ready=s.ready + s.delayed, delayed=0, inflight=s.inflight, dead=s.dead)


@mutant("queues() omits queues whose messages were all acked or that were only read")
class MemQueuesListsEmpty(MemoryQueueStore):
    """queues lists every name ever touched, even with no message (list of queues)."""

    def queues(self) -> list[str]:
        with self._lock:
            if self._closed:
                raise StoreClosedError("closed")
            return sorted(self._queues)


@mutant("every method after close() raises StoreClosedError")
class MemCloseNotFinal(MemoryQueueStore):
    """close drops the data but leaves the store usable (close is final)."""

    def close(self) -> None:
        with self._lock:
            self._queues.clear()
            self._changed.notify_all()


@mutant("a put with invalid arguments raises ValidationError and stores nothing")
class MemPutSkipsValidation(MemoryQueueStore):
    """put skips argument checks and stores a negative delay / out-of-range priority (bad input rejected)."""

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
        check_queue_name(queue)
        with self._lock:
            q = self._queue(queue)
            now = self._clock()
            if dedup_key is not None and dedup_key in q.dedup:
                return mem._message(queue, q.records[q.dedup[dedup_key]], now)
            if max_size is not None:
                self._check_room(q, queue, 1, max_size)
            rec = self._new(
                q, self._new_id(), payload, codec, now, float(delay), priority, dedup_key
            )
            self._changed.notify_all()
            return mem._message(queue, rec, now)


@mutant("queue names differing in case or trailing space are distinct queues")
class MemQueueNamesFolded(MemoryQueueStore):
    """queue names are case-folded and stripped, so 'Jobs' and 'jobs ' share one queue (names distinct)."""

    def _queue(self, name: str) -> Any:
        return super()._queue(name.strip().lower())


@mutant("dedup keys differing in case or trailing space are distinct")
class MemDedupKeysFolded(MemoryQueueStore):
    """dedup keys are case-folded, so 'Order-1' deduplicates against 'order-1' (keys distinct)."""

    def put(self, queue: str, payload: bytes, **kw: Any) -> QueueMessage:
        if kw.get("dedup_key") is not None:
            kw["dedup_key"] = kw["dedup_key"].strip().lower()
        return super().put(queue, payload, **kw)


@mutant("peek returns the next available message, never a leased or delayed one")
class MemPeekShowsLeased(MemoryQueueStore):
    """peek returns the oldest stored message whatever its state (peek = what lease returns next)."""

    def peek(self, queue: str) -> QueueMessage | None:
        check_queue_name(queue)
        with self._lock:
            q = self._queue(queue)
            live = [r for r in q.records.values() if r.state != mem._DEAD]
            if not live:
                return None
            rec = min(live, key=lambda r: (-r.priority, r.seq))
            return mem._message(queue, rec, self._clock())


@mutant("dead_letters lists oldest failure first and honours limit")
class MemDeadLettersNewestFirst(MemoryQueueStore):
    """dead_letters lists the newest failure first (dead-letter order)."""

    def dead_letters(self, queue: str, *, limit: int | None = None) -> list[QueueMessage]:
        if limit is not None:
            check_limit(limit)
        everything = super().dead_letters(queue)
        return list(reversed(everything))[:limit]


@mutant("ack_many skips pairs whose token is stale")
class MemAckManyIgnoresTokens(MemoryQueueStore):
    """ack_many deletes every listed id, stale tokens included (no ack of a lease not held)."""

    def ack_many(self, queue: str, leases: Sequence[tuple[str, str | None]]) -> int:
        return super().ack_many(queue, [(message_id, None) for message_id, _ in leases])


@mutant("dead_letter with a stale token returns False")
class MemDeadLetterIgnoresToken(MemoryQueueStore):
    """dead_letter ignores the lease token, so a stale holder buries a redelivered message (lease-guarded settle)."""

    def dead_letter(self, queue: str, message_id: str, **kw: Any) -> bool:
        kw.pop("lease_token", None)
        return super().dead_letter(queue, message_id, **kw)


@mutant("release(delay=...) keeps the message unavailable until due")
class MemReleaseIgnoresDelay(MemoryQueueStore):
    """release makes the message available at once, ignoring delay (release with a delay)."""

    def release(self, queue: str, message_id: str, **kw: Any) -> bool:
        check_delay(kw.pop("delay", 0.0))
        return super().release(queue, message_id, **kw)


@mutant("a store used in `with` is closed when the block ends")
class MemExitLeavesOpen(MemoryQueueStore):
    """__exit__ returns without closing the store, so `with` leaks the handle (every store a context manager)."""

    def __exit__(self, *exc: object) -> None:
        return None


@mutant("error texts are kept in their storable form, NUL and lone surrogates escaped (text alike)")
class MemErrorTextRaw(MemoryQueueStore):
    """dead_letter keeps the error text as given, NUL included, where every other store escapes it (text alike on every store)."""

    def dead_letter(
        self,
        queue: str,
        message_id: str,
        *,
        lease_token: str | None = None,
        error: str | None = None,
    ) -> bool:
        raw = error
        done = super().dead_letter(queue, message_id, lease_token=lease_token, error=error)
        if done and raw is not None:
            with self._lock:
                self._queue(queue).records[message_id].last_error = raw[:MAX_ERROR_LENGTH]
        return done


@mutant("a dedup key holding NUL is refused with ValidationError and stores nothing (text alike)")
class MemDedupKeyNulAccepted(MemoryQueueStore):
    """put strips NUL characters from dedup keys instead of refusing them, merging distinct keys (text alike on every store)."""

    def put(self, queue: str, payload: bytes, **kw: Any) -> QueueMessage:
        if isinstance(kw.get("dedup_key"), str):
            kw["dedup_key"] = kw["dedup_key"].replace("\x00", "") or "nul"
        return super().put(queue, payload, **kw)


# ---------------------------------------------------------------------------
# memory attempt store
# ---------------------------------------------------------------------------


@mutant("concurrent begin_attempt from threads loses no increment")
class MemBeginAttemptRace(MemoryAttemptStore):
    """begin_attempt reads, then writes without the lock: concurrent attempts are lost (attempts counted)."""

    def begin_attempt(self, key: str) -> RetryRecord:
        check_retry_key(key)
        self._check_open()
        old = self._records.get(key)
        time.sleep(0.0002)
        now = self._clock()
        if old is None:
            record = RetryRecord(key=key, attempts=1, first_attempt_at=now, last_attempt_at=now)
        else:
            record = RetryRecord(
                key=key,
                attempts=old.attempts + 1,
                first_attempt_at=old.first_attempt_at,
                last_attempt_at=now,
                exhausted=old.exhausted,
                last_error=old.last_error,
            )
        self._records[key] = record
        return record


@mutant("exhausted stays set until reset")
class MemRecordFailureUnexhausts(MemoryAttemptStore):
    """record_failure overwrites exhausted with the new flag, un-exhausting a spent budget (sticky exhaustion)."""

    def record_failure(
        self, key: str, error: str | None, *, exhausted: bool = False
    ) -> RetryRecord | None:
        record = super().record_failure(key, error, exhausted=exhausted)
        if record is None:
            return None
        with self._lock:
            fixed = RetryRecord(
                key=key,
                attempts=record.attempts,
                first_attempt_at=record.first_attempt_at,
                last_attempt_at=record.last_attempt_at,
                exhausted=exhausted,
                last_error=record.last_error,
            )
            self._records[key] = fixed
            return fixed


@mutant("reset deletes the record: get_record is None and counting restarts at 1")
class MemResetNoop(MemoryAttemptStore):
    """reset reports success but keeps the record (reset forgets)."""

    def reset(self, key: str) -> bool:
        check_retry_key(key)
        with self._lock:
            self._check_open()
            return key in self._records


@mutant("retry keys differing in case or trailing space are distinct")
class MemRetryKeysFolded(MemoryAttemptStore):
    """retry keys are case-folded, so 'Job:1' and 'job:1' share a budget (keys distinct)."""

    def begin_attempt(self, key: str) -> RetryRecord:
        check_retry_key(key)
        return super().begin_attempt(key.strip().lower())

    def get_record(self, key: str) -> RetryRecord | None:
        check_retry_key(key)
        return super().get_record(key.strip().lower())


@mutant("get_record of a bad key raises ValidationError")
class MemGetRecordSkipsValidation(MemoryAttemptStore):
    """get_record skips key validation and answers None for a bad key (bad input typed error)."""

    def get_record(self, key: str) -> RetryRecord | None:
        with self._lock:
            self._check_open()
            return self._records.get(key)


@mutant("every attempt-store method after close() raises StoreClosedError")
class MemAttemptCloseNotFinal(MemoryAttemptStore):
    """attempt store close drops the records but stays usable (close is final)."""

    def close(self) -> None:
        with self._lock:
            self._records.clear()


@mutant("a lease with max_deliveries dead-letters a message delivered that many times")
class MemMaxDeliveriesIgnored(MemoryQueueStore):
    """lease checks max_deliveries but never applies it (queue-level delivery cap)."""

    def lease(self, queue: str, **kw: Any) -> list[QueueMessage]:
        check_max_deliveries(kw.pop("max_deliveries", None))
        return super().lease(queue, **kw)


@mutant("the dead letter made by the delivery cap records why")
class MemMaxDeliveriesNoReason(MemoryQueueStore):
    """the delivery cap dead-letters without recording a reason (dead letters say why)."""

    def lease(self, queue: str, **kw: Any) -> list[QueueMessage]:
        leased = super().lease(queue, **kw)
        with self._lock:
            for rec in self._queues[queue].records.values():
                if rec.state == mem._DEAD and rec.last_error and "max_deliveries" in rec.last_error:
                    rec.last_error = None
        return leased


@mutant("the message after a spent one is leased in its place")
class MemMaxDeliveriesStopsAtSpent(MemoryQueueStore):
    """a lease that dead-letters a spent message returns nothing instead of the next one."""

    def lease(self, queue: str, **kw: Any) -> list[QueueMessage]:
        cap = kw.get("max_deliveries")
        before = self.stats(queue).dead if cap is not None else 0
        leased = super().lease(queue, **kw)
        if cap is not None and self.stats(queue).dead > before:
            for m in leased:
                self.release(queue, m.id, lease_token=m.lease_token)
            return []
        return leased


# ---------------------------------------------------------------------------
# SQLite queue store
# ---------------------------------------------------------------------------


@mutant("a concurrent-lease log across handles/processes: one id held by two consumers")
class SqliteLeaseSelectThenUpdate(SQLiteQueueStore):
    """lease SELECTs then UPDATEs in separate statements without a write lock (no double lease)."""

    @_real_when_capped
    def lease(
        self, queue: str, *, lease_timeout: float, leased_by: str | None = None, limit: int = 1
    ) -> list[QueueMessage]:
        lease_timeout = check_lease(queue, lease_timeout, leased_by, limit)
        now = self._clock()
        seqs = [
            row[0]
            for row in self._run(lambda c: c.execute(sq._NEXT_SEQS, (queue, now, limit)).fetchall())
        ]
        if not seqs:
            return []
        time.sleep(0.001)  # the gap between the read and the write
        rows = self._run(
            lambda c: c.execute(
                sq._LEASE_SEQS,
                (queue, now, limit, now + lease_timeout, leased_by, json.dumps(seqs)),
            ).fetchall()
        )
        rank = {seq: i for i, seq in enumerate(seqs)}
        rows.sort(key=lambda row: rank[row[0]])
        return [sq._message(queue, row[2:], now, row[1]) for row in rows]


@mutant("put's available_at compared with the injected clock, absolute tolerance")
class SqlitePutReportsWrongAvailableAt(SQLiteQueueStore):
    """put reports available_at 30 s late for a delayed message (timestamps from the store clock)."""

    def put(self, queue: str, payload: bytes, **kw: Any) -> QueueMessage:
        m = super().put(queue, payload, **kw)
        if kw.get("delay", 0):
            return ready_message(
                m.id,
                queue,
                payload,
                m.codec,
                m.created_at,
                m.available_at + 30,
                m.priority,
                m.dedup_key,
            )
        return m


_BY_ID_ANY_QUEUE = "seq = ?1 AND nonce = ?2 AND ?3 IS NOT NULL"


@mutant("queue isolation for release: another queue's id must return False and change nothing")
class SqliteReleaseAnyQueue(SQLiteQueueStore):
    """release matches the id without the queue (queue isolation)."""

    def release(
        self,
        queue: str,
        message_id: str,
        *,
        lease_token: str | None = None,
        delay: float = 0.0,
        error: str | None = None,
    ) -> bool:
        check_queue_name(queue)
        seq, nonce = sq._parse_id(check_message_id(message_id))
        delay = check_delay(delay)
        error = check_error(error)
        sql = sq._RELEASE.replace(sq._BY_ID, _BY_ID_ANY_QUEUE)
        now = self._clock()
        params = (seq, nonce, queue, now + delay, lease_token, error, now)
        return bool(self._run(lambda c: c.execute(sql, params).rowcount))


@mutant("queue isolation for requeue_dead: another queue's dead letter is skipped")
class SqliteRequeueAnyQueue(SQLiteQueueStore):
    """requeue_dead by id requeues another queue's dead letter (queue isolation)."""

    def requeue_dead(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        if message_ids is None:
            return super().requeue_dead(queue, None)
        check_queue_name(queue)
        sql = sq._REQUEUE_ONE.replace(sq._BY_ID, _BY_ID_ANY_QUEUE)
        now = self._clock()
        params = [(*sq._parse_id(check_message_id(i)), queue, now) for i in message_ids]

        def update(c: sqlite3.Connection) -> int:
            return sum(c.execute(sql, p).rowcount for p in params)

        return self._run(update)


@mutant("queue isolation for dead_letter: another queue's id must return False")
class SqliteDeadLetterAnyQueue(SQLiteQueueStore):
    """dead_letter matches the id without the queue (queue isolation)."""

    def dead_letter(
        self,
        queue: str,
        message_id: str,
        *,
        lease_token: str | None = None,
        error: str | None = None,
    ) -> bool:
        check_queue_name(queue)
        seq, nonce = sq._parse_id(check_message_id(message_id))
        error = check_error(error)
        sql = sq._DEAD_LETTER.replace(sq._BY_ID, _BY_ID_ANY_QUEUE)
        params = (seq, nonce, queue, lease_token, error, self._clock())
        return bool(self._run(lambda c: c.execute(sql, params).rowcount))


@mutant("queue isolation for extend: another queue's id must return False")
class SqliteExtendAnyQueue(SQLiteQueueStore):
    """extend matches the id without the queue (queue isolation)."""

    def extend(
        self, queue: str, message_id: str, *, lease_token: str, lease_timeout: float
    ) -> bool:
        check_queue_name(queue)
        seq, nonce = sq._parse_id(check_message_id(message_id))
        lease_timeout = check_lease_timeout(lease_timeout)
        sql = sq._EXTEND.replace(sq._BY_ID, _BY_ID_ANY_QUEUE)
        params = (seq, nonce, queue, self._clock() + lease_timeout, lease_token)
        return bool(self._run(lambda c: c.execute(sql, params).rowcount))


@mutant("queue isolation for inspect: another queue's id is None")
class SqliteInspectAnyQueue(SQLiteQueueStore):
    """inspect finds a message of another queue by id (queue isolation)."""

    def inspect(self, queue: str, message_id: str) -> QueueMessage | None:
        check_queue_name(queue)
        seq, nonce = sq._parse_id(check_message_id(message_id))
        sql = sq._INSPECT.replace(sq._BY_ID, _BY_ID_ANY_QUEUE)
        rows = self._run(lambda c: c.execute(sql, (seq, nonce, queue)).fetchall())
        return None if not rows else sq._message(queue, rows[0], self._clock())


@mutant("purge of one queue leaves other queues' messages alone")
class SqlitePurgeDeadAllQueues(SQLiteQueueStore):
    """purge('dead') deletes the dead letters of every queue (queue isolation)."""

    def purge(self, queue: str, target: PurgeTarget = "ready") -> int:
        if target != "dead":
            return super().purge(queue, target)
        check_queue_name(queue)
        return self._run(
            lambda c: (
                c.execute(
                    "DELETE FROM messages WHERE state = 2 AND ? IS NOT NULL", (queue,)
                ).rowcount
            )
        )


@mutant("failed_at compared with the injected clock, absolute tolerance")
class SqliteDeadLetterFailedAtOff(SQLiteQueueStore):
    """dead_letter records failed_at ten minutes off the store clock (timestamps from the store clock)."""

    def dead_letter(
        self,
        queue: str,
        message_id: str,
        *,
        lease_token: str | None = None,
        error: str | None = None,
    ) -> bool:
        check_queue_name(queue)
        seq, nonce = sq._parse_id(check_message_id(message_id))
        error = check_error(error)
        params = (seq, nonce, queue, lease_token, error, self._clock() - 600)
        return bool(self._run(lambda c: c.execute(sq._DEAD_LETTER, params).rowcount))


@mutant("extend after the lease ended (release / dead letter) must be False")
class SqliteExtendUnleased(SQLiteQueueStore):
    """extend renews a message that is no longer leased: no state check, NULL token matches (extend by holder only)."""

    def extend(
        self, queue: str, message_id: str, *, lease_token: str, lease_timeout: float
    ) -> bool:
        check_queue_name(queue)
        seq, nonce = sq._parse_id(check_message_id(message_id))
        lease_timeout = check_lease_timeout(lease_timeout)
        sql = (
            "UPDATE messages SET state = 1, available_at = ?4 WHERE "
            f"{sq._BY_ID} AND (lease_token IS NULL OR lease_token = ?5)"
        )
        params = (seq, nonce, queue, self._clock() + lease_timeout, lease_token)
        return bool(self._run(lambda c: c.execute(sql, params).rowcount))


@mutant("put_many failing mid-batch in the engine stores nothing (fault injection)")
class SqlitePutManyNotAtomic(SQLiteQueueStore):
    """put_many inserts row by row in autocommit, so an engine error mid-batch keeps half (atomic batch)."""

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
        items, delay = check_put_many(queue, payloads, delay, priority)
        self._db.check_open()
        return [
            self.put(queue, p, codec=codec, delay=delay, priority=priority, max_size=max_size)
            for p in items
        ]


@mutant("ack_many failing mid-batch in the engine deletes nothing (fault injection)")
class SqliteAckManyNotAtomic(SQLiteQueueStore):
    """ack_many deletes one row per autocommit, so an engine error mid-batch keeps half (atomic batch)."""

    def ack_many(self, queue: str, leases: Sequence[tuple[str, str | None]]) -> int:
        check_queue_name(queue)
        self._db.check_open()
        return sum(self.ack(queue, m, lease_token=t) for m, t in leases)


@mutant("higher priority is delivered first")
class SqlitePriorityIgnored(SQLiteQueueStore):
    """lease orders by available_at only, ignoring priority (priorities)."""

    @_real_when_capped
    def lease(
        self, queue: str, *, lease_timeout: float, leased_by: str | None = None, limit: int = 1
    ) -> list[QueueMessage]:
        lease_timeout = check_lease(queue, lease_timeout, leased_by, limit)
        select = sq._NEXT_SEQS.replace("priority DESC, ", "")

        def batch(c: sqlite3.Connection) -> tuple[float, list[Any]]:
            now = self._clock()
            with self._db.transaction(c):
                seqs = [row[0] for row in c.execute(select, (queue, now, limit))]
                if not seqs:
                    return now, []
                rows = c.execute(
                    sq._LEASE_SEQS,
                    (queue, now, limit, now + lease_timeout, leased_by, json.dumps(seqs)),
                ).fetchall()
            rank = {seq: i for i, seq in enumerate(seqs)}
            rows.sort(key=lambda row: rank[row[0]])
            return now, [row[1:] for row in rows]

        now, rows = self._run(batch)
        return [sq._message(queue, row[1:], now, row[0]) for row in rows]


@mutant("stats counts each state, delayed apart from ready")
class SqliteStatsMiscountsDelayed(SQLiteQueueStore):
    """stats counts delayed messages as ready (stats by effective state)."""

    def stats(self, queue: str) -> QueueStats:
        s = super().stats(queue)
        return QueueStats(ready=s.ready + s.delayed, delayed=0, inflight=s.inflight, dead=s.dead)


@mutant("the same dedup key in two queues stores two messages")
class SqliteDedupNotPerQueue(SQLiteQueueStore):
    """put looks dedup keys up across all queues (per-queue dedup)."""

    def put(self, queue: str, payload: bytes, **kw: Any) -> QueueMessage:
        key = kw.get("dedup_key")
        if key is not None:
            check_queue_name(queue)
            rows = self._run(
                lambda c: c.execute(
                    f"SELECT queue, {sq._COLUMNS} FROM messages WHERE dedup_key = ?", (key,)
                ).fetchall()
            )
            if rows:
                return sq._message(rows[0][0], rows[0][1:], self._clock())
        return super().put(queue, payload, **kw)


@mutant("requeue_dead resets attempts to 0")
class SqliteRequeueKeepsAttempts(SQLiteQueueStore):
    """requeue_dead keeps the old attempts count (requeue resets the budget)."""

    def requeue_dead(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        if message_ids is not None:
            return super().requeue_dead(queue, message_ids)
        check_queue_name(queue)
        sql = sq._REQUEUE_ALL.replace("attempts = 0, ", "")
        return self._run(lambda c: c.execute(sql, (queue, self._clock())).rowcount)


@mutant("every method after close() raises StoreClosedError")
class SqliteCloseNotFinal(SQLiteQueueStore):
    """close is a no-op that leaves the connection usable (close is final)."""

    def close(self) -> None:
        self._hub.notify()


@mutant("an expired lease is leased again with attempts + 1")
class SqliteExpiredLeaseNotRedelivered(SQLiteQueueStore):
    """lease only takes state 0 rows, so an expired lease is never delivered again (at-least-once)."""

    @_real_when_capped
    def lease(
        self, queue: str, *, lease_timeout: float, leased_by: str | None = None, limit: int = 1
    ) -> list[QueueMessage]:
        lease_timeout = check_lease(queue, lease_timeout, leased_by, limit)
        select = sq._NEXT_SEQS.replace("state < 2", "state = 0")

        def batch(c: sqlite3.Connection) -> tuple[float, list[Any]]:
            now = self._clock()
            with self._db.transaction(c):
                seqs = [row[0] for row in c.execute(select, (queue, now, limit))]
                if not seqs:
                    return now, []
                rows = c.execute(
                    sq._LEASE_SEQS,
                    (queue, now, limit, now + lease_timeout, leased_by, json.dumps(seqs)),
                ).fetchall()
            rank = {seq: i for i, seq in enumerate(seqs)}
            rows.sort(key=lambda row: rank[row[0]])
            return now, [row[1:] for row in rows]

        now, rows = self._run(batch)
        return [sq._message(queue, row[1:], now, row[0]) for row in rows]


@mutant("lock contention past the timeout raises QueueStoreLockedError (fault injection)")
class SqliteLockedAsGenericError(SQLiteQueueStore):
    """a locked database is reported as a plain StoreError, not QueueStoreLockedError (error translation)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        run = self._db.run

        def translated(operation: Callable[[sqlite3.Connection], Any], **kw: Any) -> Any:
            try:
                return run(operation, **kw)
            except QueueStoreLockedError as exc:
                raise StoreError(str(exc)) from exc.__cause__

        self._run = translated


@mutant("an engine error is a StoreError chained from the engine's exception (fault injection)")
class SqliteEngineErrorUntranslated(SQLiteQueueStore):
    """engine errors escape as raw sqlite3 exceptions (engine errors mapped onto localqueue.errors)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        run = self._db.run

        def raw(operation: Callable[[sqlite3.Connection], Any], **kw: Any) -> Any:
            try:
                return run(operation, **kw)
            except StoreError as exc:
                if isinstance(exc.__cause__, sqlite3.Error) and not isinstance(
                    exc, QueueStoreLockedError
                ):
                    raise exc.__cause__ from None
                raise

        self._run = raw


@mutant("queue names differing in case or trailing space are distinct queues")
class SqliteQueueNamesFolded(SQLiteQueueStore):
    """put normalises queue names (case and trailing spaces), merging distinct queues (names distinct)."""

    def put(self, queue: str, payload: bytes, **kw: Any) -> QueueMessage:
        check_queue_name(queue)
        return super().put(queue.strip().lower(), payload, **kw)

    def lease(self, queue: str, **kw: Any) -> list[QueueMessage]:
        check_queue_name(queue)
        return super().lease(queue.strip().lower(), **kw)


@mutant("dedup keys differing in case or trailing space are distinct")
class SqliteDedupKeysFolded(SQLiteQueueStore):
    """dedup keys are stripped and lower-cased before use (keys distinct)."""

    def put(self, queue: str, payload: bytes, **kw: Any) -> QueueMessage:
        if kw.get("dedup_key") is not None:
            kw["dedup_key"] = kw["dedup_key"].strip().lower()
        return super().put(queue, payload, **kw)


@mutant("a dead letter is never leased")
class SqliteDeadLetterLeasable(SQLiteQueueStore):
    """lease filters on available_at only, forgetting the state column, so dead letters are leased (dead letters leave delivery)."""

    @_real_when_capped
    def lease(
        self, queue: str, *, lease_timeout: float, leased_by: str | None = None, limit: int = 1
    ) -> list[QueueMessage]:
        lease_timeout = check_lease(queue, lease_timeout, leased_by, limit)
        select = (
            "SELECT seq FROM messages WHERE queue = ?1 AND available_at <= ?2 "
            "ORDER BY priority DESC, available_at, seq LIMIT ?3"
        )

        def batch(c: sqlite3.Connection) -> tuple[float, list[Any]]:
            now = self._clock()
            with self._db.transaction(c):
                seqs = [row[0] for row in c.execute(select, (queue, now, limit))]
                if not seqs:
                    return now, []
                rows = c.execute(
                    sq._LEASE_SEQS,
                    (queue, now, limit, now + lease_timeout, leased_by, json.dumps(seqs)),
                ).fetchall()
            rank = {seq: i for i, seq in enumerate(seqs)}
            rows.sort(key=lambda row: rank[row[0]])
            return now, [row[1:] for row in rows]

        now, rows = self._run(batch)
        return [sq._message(queue, row[1:], now, row[0]) for row in rows]


@mutant("peek returns None while only delayed messages are stored")
class SqlitePeekIgnoresDelay(SQLiteQueueStore):
    """peek ignores available_at and shows a delayed message (peek = what lease returns next)."""

    def peek(self, queue: str) -> QueueMessage | None:
        check_queue_name(queue)
        sql = sq._NEXT_ROWS.replace("AND available_at <= ?2 ", "AND ?2 IS NOT NULL ")
        now = self._clock()
        rows = self._run(lambda c: c.execute(sql, (queue, now, 1)).fetchall())
        return sq._message(queue, rows[0], now) if rows else None


@mutant("dead_letters honours limit")
class SqliteDeadLettersIgnoreLimit(SQLiteQueueStore):
    """dead_letters ignores limit and returns every dead letter (dead-letter listing)."""

    def dead_letters(self, queue: str, *, limit: int | None = None) -> list[QueueMessage]:
        if limit is not None:
            check_limit(limit)
        return super().dead_letters(queue)


@mutant("queues() lists only queues holding messages, sorted")
class SqliteQueuesUnsorted(SQLiteQueueStore):
    """queues returns names in insertion order, not sorted (list of queues)."""

    def queues(self) -> list[str]:
        return self._run(
            lambda c: [
                r[0]
                for r in c.execute("SELECT queue FROM messages GROUP BY queue ORDER BY min(seq)")
            ]
        )


@mutant("release with a negative delay raises ValidationError and changes nothing")
class SqliteReleaseSkipsValidation(SQLiteQueueStore):
    """release skips the delay check and stores a negative delay (bad input rejected)."""

    def release(
        self,
        queue: str,
        message_id: str,
        *,
        lease_token: str | None = None,
        delay: float = 0.0,
        error: str | None = None,
    ) -> bool:
        check_queue_name(queue)
        seq, nonce = sq._parse_id(check_message_id(message_id))
        now = self._clock()
        params = (seq, nonce, queue, now + float(delay), lease_token, error, now)
        return bool(self._run(lambda c: c.execute(sq._RELEASE, params).rowcount))


@mutant("wait returns by the time a delayed message is due, not after the full timeout")
class SqliteWaitIgnoresDueTimes(SQLiteQueueStore):
    """wait sleeps the whole timeout even when a delayed message becomes due sooner (bounded wake-up)."""

    def wait(self, queue: str, timeout: float) -> None:
        check_queue_name(queue)
        self._db.check_open()
        time.sleep(min(float(timeout), 20.0))


@mutant("maxsize is never exceeded by several processes or handles putting at once")
class SqliteCapacityCheckNotAtomic(SQLiteQueueStore):
    """put counts the queue in one statement and inserts in another, so racing producers overfill it (atomic capacity)."""

    def put(self, queue: str, payload: bytes, **kw: Any) -> QueueMessage:
        if kw.get("max_size") is None or kw.get("dedup_key") is not None:
            return super().put(queue, payload, **kw)  # dedup puts keep the real, locked check
        max_size = check_max_size(kw.pop("max_size"))
        if max_size is not None:
            check_queue_name(queue)
            unfinished = self._run(
                lambda c: c.execute(
                    "SELECT count(*) FROM messages WHERE queue = ? AND state < 2", (queue,)
                ).fetchone()[0]
            )
            time.sleep(0.0005)  # the gap between the check and the insert
            if unfinished + 1 > max_size:
                raise Full(f"queue {queue!r} holds {unfinished} of at most {max_size} messages")
        return super().put(queue, payload, **kw)


@mutant("a damaged record never blocks its queue (damage hook)")
class SqliteDamagedRowRaises(SQLiteQueueStore):
    """lease raises StoreCorruptedError on a row it cannot read instead of moving it aside, so every later lease fails (one bad record never stops a queue)."""

    def _set_aside(self, queue: str, damaged: list[tuple[int, str]], now: float) -> None:
        raise StoreCorruptedError(f"queue {queue!r}: {len(damaged)} damaged row(s)")


@mutant("a damaged record is kept as a dead letter saying so, never dropped (damage hook)")
class SqliteDamagedRowDropped(SQLiteQueueStore):
    """lease deletes a row it cannot read, silently: the message vanishes from stats and dead letters (no data is ever hidden)."""

    def _set_aside(self, queue: str, damaged: list[tuple[int, str]], now: float) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM messages WHERE seq = ?", [(seq,) for seq, _ in damaged])

        self._write(delete)


@mutant("check_integrity names every damaged message (damage hook)")
class SqliteIntegrityBlind(SQLiteQueueStore):
    """check_integrity runs SQLite's own check only and misses rows with impossible fields (damage is reported)."""

    def check_integrity(self) -> list[str]:
        return []


# ---------------------------------------------------------------------------
# SQLite attempt store
# ---------------------------------------------------------------------------


@mutant("begin_attempt from threads and processes loses no increment")
class SqliteBeginAttemptNotAtomic(SQLiteAttemptStore):
    """begin_attempt reads the count and writes count + 1 in two statements (attempts counted atomically)."""

    def begin_attempt(self, key: str) -> RetryRecord:
        check_retry_key(key)
        now = self._clock()
        rows = self._run(lambda c: c.execute(sq._GET_RECORD, (key,)).fetchall())
        attempts = rows[0][1] + 1 if rows else 1
        time.sleep(0.0002)
        self._run(
            lambda c: c.execute(
                "INSERT INTO retry_records (key, attempts, first_attempt_at, last_attempt_at) "
                "VALUES (?1, ?2, ?3, ?3) ON CONFLICT (key) DO UPDATE SET "
                "attempts = ?2, last_attempt_at = ?3",
                (key, attempts, now),
            )
        )
        rows = self._run(lambda c: c.execute(sq._GET_RECORD, (key,)).fetchall())
        return sq._record(rows[0])


@mutant("exhausted stays set until reset")
class SqliteRecordFailureUnexhausts(SQLiteAttemptStore):
    """record_failure writes exhausted = the new flag, un-exhausting a spent budget (sticky exhaustion)."""

    def record_failure(
        self, key: str, error: str | None, *, exhausted: bool = False
    ) -> RetryRecord | None:
        check_retry_key(key)
        error = check_error(error)
        sql = sq._RECORD_FAILURE.replace("(exhausted OR ?3)", "?3")
        rows = self._run(lambda c: c.execute(sql, (key, error, bool(exhausted))).fetchall())
        return sq._record(rows[0]) if rows else None


@mutant("reset deletes the record")
class SqliteResetNoop(SQLiteAttemptStore):
    """reset looks the key up but never deletes it (reset forgets)."""

    def reset(self, key: str) -> bool:
        check_retry_key(key)
        return bool(self._run(lambda c: c.execute(sq._GET_RECORD, (key,)).fetchall()))


@mutant("get_record returns the stored record, not a stale one")
class SqliteGetRecordStale(SQLiteAttemptStore):
    """get_record answers from a per-handle cache, so another handle's attempts are not seen (handles share records)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cache: dict[str, RetryRecord | None] = {}
        self._cache_lock = threading.Lock()

    def get_record(self, key: str) -> RetryRecord | None:
        with self._cache_lock:
            if key in self._cache:
                return self._cache[key]
        record = super().get_record(key)
        with self._cache_lock:
            self._cache[key] = record
        return record

    def begin_attempt(self, key: str) -> RetryRecord:
        record = super().begin_attempt(key)
        with self._cache_lock:
            self._cache.setdefault(key, record)
        return record


@mutant("a message is dead-lettered at the lease after its max_deliveries-th delivery")
class SqliteMaxDeliveriesOffByOne(SQLiteQueueStore):
    """the delivery cap counts one delivery too many (attempts > max instead of >=)."""

    def lease(self, queue: str, **kw: Any) -> list[QueueMessage]:
        cap = check_max_deliveries(kw.pop("max_deliveries", None))
        return super().lease(queue, **kw, max_deliveries=None if cap is None else cap + 1)


@mutant("a bad max_deliveries is refused with ValidationError and changes nothing")
class SqliteMaxDeliveriesUnchecked(SQLiteQueueStore):
    """a max_deliveries below 1 (or not an int) is taken as no cap instead of refused."""

    def lease(self, queue: str, **kw: Any) -> list[QueueMessage]:
        cap = kw.pop("max_deliveries", None)
        ok = isinstance(cap, int) and not isinstance(cap, bool) and cap >= 1
        return super().lease(queue, **kw, max_deliveries=cap if ok else None)
