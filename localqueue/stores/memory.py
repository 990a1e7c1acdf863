"""In-memory stores: a real, thread-safe engine for tests and ephemeral work.

Values arrive serialised, exactly as with the persistent stores, so code
tested here behaves the same on disk. State belongs to the instance; nothing
survives ``close()`` or the process. Share one instance between threads to
stand in for several consumers.

URL: ``memory://`` (each open is a new, empty store); it takes no options.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Self, TypeVar

from localqueue import validation
from localqueue.errors import ConfigurationError, Full, StoreClosedError
from localqueue.kit import (
    Capability,
    ClosingContext,
    QueueMessage,
    QueueStats,
    RetryRecord,
    StoredState,
    build_message,
    effective_state,
    max_deliveries_error,
    next_attempt,
    ready_message,
    with_failure,
)
from localqueue.protocols import Clock, PurgeTarget
from localqueue.registry import ClassBackend
from localqueue.urls import Option, StoreURL

__all__ = ["MemoryAttemptStore", "MemoryQueueStore", "backend"]

# -- options ---------------------------------------------------------------------------

OPTIONS: dict[str, Option[Any]] = {}
"""The query-string options of ``memory://`` URLs."""


def _check_memory_url(url: StoreURL) -> dict[str, Any]:
    if url.path or url.host:
        raise ConfigurationError("memory:// takes no path or host")
    return url.options(OPTIONS)


# -- error translation -----------------------------------------------------------------

# None: the engine is this module's own dicts and heaps, which raise no engine
# errors; misuse is refused by localqueue.validation before anything changes.


# -- engine handle ---------------------------------------------------------------------

# Plain ints of the kit's codes: compared on every record, so no enum lookups.
_READY, _INFLIGHT, _DEAD = (int(s) for s in StoredState)

_E = TypeVar("_E", bound=tuple[Any, ...])  # a heap entry: ready or timer


class _Record:
    __slots__ = (
        "attempts",
        "available_at",
        "codec",
        "created_at",
        "dedup_key",
        "failed_at",
        "id",
        "last_error",
        "leased_by",
        "payload",
        "priority",
        "seq",
        "state",
        "token",
        "version",
    )

    def __init__(
        self,
        id: str,
        seq: int,
        payload: bytes,
        codec: str,
        created_at: float,
        available_at: float,
        priority: int,
        dedup_key: str | None,
    ) -> None:
        self.id = id
        self.seq = seq
        self.payload = payload
        self.codec = codec
        self.created_at = created_at
        self.available_at = available_at
        self.priority = priority
        self.dedup_key = dedup_key
        self.state = _READY
        self.attempts = 0
        self.leased_by: str | None = None
        self.token: str | None = None
        self.last_error: str | None = None
        self.failed_at: float | None = None
        # Bumped on every change of availability, so heap entries of an older
        # version are recognised as stale and skipped instead of searched for.
        self.version = 0


class _Queue:
    __slots__ = ("dedup", "ready", "records", "timers")

    def __init__(self) -> None:
        self.records: dict[str, _Record] = {}
        self.dedup: dict[str, str] = {}
        # (-priority, available_at, seq, id, version): available now.
        self.ready: list[tuple[int, float, int, str, int]] = []
        # (due, seq, id, version): delayed messages and running leases.
        self.timers: list[tuple[float, int, str, int]] = []


def _live(heap: list[_E], records: dict[str, _Record], at: int) -> list[_E]:
    """``heap`` without the entries of removed or rescheduled messages, heapified.

    Entries are only dropped lazily when they reach the top, so acks by id and
    heartbeats would otherwise grow a heap without bound.
    """
    kept = [
        e for e in heap if (live := records.get(e[at])) is not None and live.version == e[at + 1]
    ]
    heapq.heapify(kept)
    return kept


# -- message building ------------------------------------------------------------------


def _message(name: str, rec: _Record, now: float, token: str | None = None) -> QueueMessage:
    state, leased_until = effective_state(rec.state, rec.available_at, now)
    return build_message(
        {
            "id": rec.id,
            "queue": name,
            "state": state,
            "payload": rec.payload,
            "codec": rec.codec,
            "attempts": rec.attempts,
            "created_at": rec.created_at,
            "available_at": rec.available_at,
            "priority": rec.priority,
            "leased_until": leased_until,
            "leased_by": rec.leased_by,
            "lease_token": token,
            "last_error": rec.last_error,
            "failed_at": rec.failed_at,
            "dedup_key": rec.dedup_key,
        }
    )


# -- queue store -----------------------------------------------------------------------


class MemoryQueueStore(ClosingContext):
    """A queue store held in this process's memory.

    Args:
        clock: Time source; ``time.time`` by default.
    """

    capabilities = frozenset({Capability.INJECTABLE_CLOCK})

    def __init__(
        self,
        *,
        clock: Clock | None = None,
    ) -> None:
        self._clock: Clock = clock or time.time
        self._queues: dict[str, _Queue] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._seq = itertools.count()
        self._closed = False
        # Ids and lease tokens only need to be unique, not secret, in one process:
        # a random per-store prefix and counters cost far less than urandom calls.
        self._id_prefix = os.urandom(8).hex()
        self._ids = itertools.count()
        self._tokens = itertools.count(int.from_bytes(os.urandom(6)))

    def _new_id(self) -> str:
        return "%s%016x" % (self._id_prefix, next(self._ids))  # noqa: UP031

    @classmethod
    def from_url(cls, url: StoreURL, *, clock: Clock | None = None) -> Self:
        """Open a new store from ``memory://``."""
        return cls(**_check_memory_url(url), clock=clock)

    def __repr__(self) -> str:
        return "MemoryQueueStore()"

    # -- helpers (call with the lock held) -----------------------------------

    def _queue(self, name: str) -> _Queue:
        if self._closed:
            raise StoreClosedError("the memory queue store is closed")
        q = self._queues.get(name)
        if q is None:
            q = self._queues[name] = _Queue()
        return q

    def _schedule(self, q: _Queue, rec: _Record, now: float) -> None:
        rec.version += 1
        if rec.available_at <= now and rec.state == _READY:
            heapq.heappush(q.ready, (-rec.priority, rec.available_at, rec.seq, rec.id, rec.version))
            if len(q.ready) > 2 * len(q.records) + 1024:
                q.ready = _live(q.ready, q.records, 3)
        else:
            heapq.heappush(q.timers, (rec.available_at, rec.seq, rec.id, rec.version))
            if len(q.timers) > 2 * len(q.records) + 1024:
                q.timers = _live(q.timers, q.records, 2)

    def _promote(self, q: _Queue, now: float) -> None:
        timers = q.timers
        while timers and timers[0][0] <= now:
            _, seq, message_id, version = heapq.heappop(timers)
            rec = q.records.get(message_id)
            if rec is not None and rec.version == version:
                heapq.heappush(q.ready, (-rec.priority, rec.available_at, seq, message_id, version))

    def _next_ready(self, q: _Queue, now: float) -> _Record | None:
        self._promote(q, now)
        ready = q.ready
        while ready:
            _, _, _, message_id, version = ready[0]
            rec = q.records.get(message_id)
            if rec is not None and rec.version == version:
                return rec
            heapq.heappop(ready)
        return None

    def _held(self, q: _Queue, message_id: str, token: str | None) -> _Record | None:
        rec = q.records.get(message_id)
        if rec is None or rec.state == _DEAD:
            return None
        if token is not None and rec.token != token:
            return None
        return rec

    def _remove(self, q: _Queue, rec: _Record) -> None:
        del q.records[rec.id]
        if rec.dedup_key is not None:
            q.dedup.pop(rec.dedup_key, None)

    def _new(
        self,
        q: _Queue,
        message_id: str,
        payload: bytes,
        codec: str,
        now: float,
        delay: float,
        priority: int,
        dedup_key: str | None,
    ) -> _Record:
        rec = _Record(
            message_id, next(self._seq), payload, codec, now, now + delay, priority, dedup_key
        )
        q.records[rec.id] = rec
        if dedup_key is not None:
            q.dedup[dedup_key] = rec.id
        self._schedule(q, rec, now)
        return rec

    @staticmethod
    def _check_room(q: _Queue, name: str, needed: int, max_size: int) -> None:
        # Called under the lock, so the count and the insert that follows are one step.
        unfinished = sum(1 for rec in q.records.values() if rec.state != _DEAD)
        if unfinished + needed > max_size:
            raise Full(f"queue {name!r} holds {unfinished} of at most {max_size} messages")

    # -- QueueStore ------------------------------------------------------------

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
        """Store one message (see :meth:`localqueue.protocols.QueueStore.put`)."""
        delay = validation.check_put(queue, payload, delay, priority, dedup_key)
        if max_size is not None:
            validation.check_max_size(max_size)
        with self._lock:
            q = self._queue(queue)
            now = self._clock()
            if dedup_key is not None and dedup_key in q.dedup:
                return _message(queue, q.records[q.dedup[dedup_key]], now)
            if max_size is not None:
                self._check_room(q, queue, 1, max_size)
            rec = self._new(q, self._new_id(), payload, codec, now, delay, priority, dedup_key)
            self._changed.notify_all()
            return ready_message(
                rec.id, queue, payload, codec, now, rec.available_at, priority, dedup_key
            )

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
        """Store several messages atomically."""
        items, delay = validation.check_put_many(queue, payloads, delay, priority)
        if max_size is not None:
            validation.check_max_size(max_size)
        with self._lock:
            q = self._queue(queue)
            now = self._clock()
            if max_size is not None and items:
                self._check_room(q, queue, len(items), max_size)
            recs = [
                self._new(q, self._new_id(), p, codec, now, delay, priority, None) for p in items
            ]
            if recs:
                self._changed.notify_all()
            return [
                ready_message(rec.id, queue, rec.payload, codec, now, rec.available_at, priority)
                for rec in recs
            ]

    def lease(
        self,
        queue: str,
        *,
        lease_timeout: float,
        leased_by: str | None = None,
        limit: int = 1,
        max_deliveries: int | None = None,
    ) -> list[QueueMessage]:
        """Lease up to ``limit`` available messages; spent ones are dead-lettered on the way."""
        lease_timeout = validation.check_lease(
            queue, lease_timeout, leased_by, limit, max_deliveries
        )
        leased: list[QueueMessage] = []
        with self._lock:
            q = self._queue(queue)
            now = self._clock()
            while len(leased) < limit:
                rec = self._next_ready(q, now)
                if rec is None:
                    break
                heapq.heappop(q.ready)
                if max_deliveries is not None and rec.attempts >= max_deliveries:
                    rec.state = _DEAD
                    rec.token = None
                    rec.version += 1
                    rec.last_error, rec.failed_at = max_deliveries_error(max_deliveries), now
                    continue
                rec.state = _INFLIGHT
                rec.attempts += 1
                rec.available_at = now + lease_timeout
                rec.leased_by = leased_by
                rec.token = "%016x" % next(self._tokens)  # noqa: UP031 - the fastest spelling
                self._schedule(q, rec, now)
                leased.append(_message(queue, rec, now, rec.token))
        return leased

    def wait(self, queue: str, timeout: float) -> None:
        """Block until a put/release/requeue notifies, a timer is due, or ``timeout`` passes."""
        validation.check_queue_name(queue)
        timeout = validation.check_timeout(timeout)
        with self._lock:
            q = self._queue(queue)
            now = self._clock()
            if self._next_ready(q, now) is not None:
                return
            if q.timers:
                timeout = min(timeout, max(0.0, q.timers[0][0] - now))
            self._changed.wait(timeout)

    def ack(self, queue: str, message_id: str, *, lease_token: str | None = None) -> bool:
        """Delete a message."""
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        with self._lock:
            q = self._queue(queue)
            rec = q.records.get(message_id)
            if rec is None or (lease_token is not None and rec.token != lease_token):
                return False
            self._remove(q, rec)
            return True

    def ack_many(self, queue: str, leases: Sequence[tuple[str, str | None]]) -> int:
        """Delete several messages atomically."""
        validation.check_queue_name(queue)
        validation.check_leases(leases)
        with self._lock:
            q = self._queue(queue)
            acked = 0
            for message_id, token in leases:
                rec = q.records.get(message_id)
                if rec is not None and (token is None or rec.token == token):
                    self._remove(q, rec)
                    acked += 1
            return acked

    def release(
        self,
        queue: str,
        message_id: str,
        *,
        lease_token: str | None = None,
        delay: float = 0.0,
        error: str | None = None,
    ) -> bool:
        """Make a message ready again after ``delay``."""
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        delay = validation.check_delay(delay)
        error = validation.check_error(error)
        with self._lock:
            q = self._queue(queue)
            rec = self._held(q, message_id, lease_token)
            if rec is None:
                return False
            now = self._clock()
            rec.state = _READY
            rec.available_at = now + delay
            rec.token = None
            if error is not None:
                rec.last_error, rec.failed_at = error, now
            self._schedule(q, rec, now)
            self._changed.notify_all()
            return True

    def extend(
        self, queue: str, message_id: str, *, lease_token: str, lease_timeout: float
    ) -> bool:
        """Move the end of a held lease to ``lease_timeout`` seconds from now."""
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        lease_timeout = validation.check_lease_timeout(lease_timeout)
        with self._lock:
            q = self._queue(queue)
            rec = q.records.get(message_id)
            if rec is None or rec.state != _INFLIGHT or rec.token != lease_token:
                return False
            now = self._clock()
            rec.available_at = now + lease_timeout
            self._schedule(q, rec, now)
            return True

    def dead_letter(
        self,
        queue: str,
        message_id: str,
        *,
        lease_token: str | None = None,
        error: str | None = None,
    ) -> bool:
        """Move a message to dead-letter storage."""
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        error = validation.check_error(error)
        with self._lock:
            q = self._queue(queue)
            rec = self._held(q, message_id, lease_token)
            if rec is None:
                return False
            now = self._clock()
            rec.state = _DEAD
            rec.token = None
            rec.version += 1
            rec.last_error, rec.failed_at = error, now
            return True

    def requeue_dead(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        """Return dead letters to the ready state."""
        validation.check_queue_name(queue)
        ids = None if message_ids is None else validation.check_message_ids(message_ids)
        with self._lock:
            q = self._queue(queue)
            now = self._clock()
            if ids is None:
                targets = [r for r in q.records.values() if r.state == _DEAD]
                targets.sort(key=lambda r: (r.failed_at or 0.0, r.seq))
            else:
                found = (q.records.get(i) for i in dict.fromkeys(ids))
                targets = [r for r in found if r is not None and r.state == _DEAD]
            for rec in targets:
                rec.state = _READY
                rec.attempts = 0
                rec.available_at = now
                self._schedule(q, rec, now)
            if targets:
                self._changed.notify_all()
            return len(targets)

    def purge(self, queue: str, target: PurgeTarget = "ready") -> int:
        """Delete ready, dead or all messages."""
        validation.check_queue_name(queue)
        validation.check_purge_target(target)
        with self._lock:
            q = self._queue(queue)
            if target == "all":
                del self._queues[queue]  # records, dedup keys and both heaps at once
                return len(q.records)
            if target == "dead":
                victims = [r for r in q.records.values() if r.state == _DEAD]
            else:
                now = self._clock()
                victims = [
                    r
                    for r in q.records.values()
                    if r.state == _READY or (r.state == _INFLIGHT and r.available_at <= now)
                ]
            for rec in victims:
                self._remove(q, rec)
            return len(victims)

    def peek(self, queue: str) -> QueueMessage | None:
        """The next message ``lease`` would return, not leased."""
        validation.check_queue_name(queue)
        with self._lock:
            q = self._queue(queue)
            now = self._clock()
            rec = self._next_ready(q, now)
            return None if rec is None else _message(queue, rec, now)

    def inspect(self, queue: str, message_id: str) -> QueueMessage | None:
        """One message by id."""
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        with self._lock:
            q = self._queue(queue)
            rec = q.records.get(message_id)
            return None if rec is None else _message(queue, rec, self._clock())

    def dead_letters(self, queue: str, *, limit: int | None = None) -> list[QueueMessage]:
        """Dead letters, oldest failure first."""
        validation.check_queue_name(queue)
        if limit is not None:
            validation.check_limit(limit)
        with self._lock:
            q = self._queue(queue)
            now = self._clock()
            dead = sorted(
                (r for r in q.records.values() if r.state == _DEAD),
                key=lambda r: (r.failed_at or 0.0, r.seq),
            )
            return [_message(queue, r, now) for r in dead[:limit]]

    def stats(self, queue: str) -> QueueStats:
        """Counts by effective state."""
        validation.check_queue_name(queue)
        ready = delayed = inflight = dead = 0
        with self._lock:
            q = self._queue(queue)
            now = self._clock()
            for rec in q.records.values():
                if rec.state == _DEAD:
                    dead += 1
                elif rec.available_at > now:
                    if rec.state == _INFLIGHT:
                        inflight += 1
                    else:
                        delayed += 1
                else:
                    ready += 1
        return QueueStats(ready=ready, delayed=delayed, inflight=inflight, dead=dead)

    def queues(self) -> list[str]:
        """Queues holding at least one message."""
        with self._lock:
            if self._closed:
                raise StoreClosedError("the memory queue store is closed")
            return sorted(name for name, q in self._queues.items() if q.records)

    def check_integrity(self) -> list[str]:
        """Check that every deduplication key points at its message."""
        problems: list[str] = []
        with self._lock:
            if self._closed:
                raise StoreClosedError("the memory queue store is closed")
            for name, q in self._queues.items():
                for key, message_id in q.dedup.items():
                    rec = q.records.get(message_id)
                    if rec is None or rec.dedup_key != key:
                        problems.append(f"{name}: dedup key {key!r} points at {message_id}")
        return problems

    def close(self) -> None:
        """Drop every message; later calls raise ``StoreClosedError``."""
        with self._lock:
            self._closed = True
            self._queues.clear()
            self._changed.notify_all()


# -- attempt store ---------------------------------------------------------------------


class MemoryAttemptStore(ClosingContext):
    """An attempt store held in this process's memory.

    Args:
        clock: Time source; ``time.time`` by default.
    """

    capabilities = frozenset({Capability.INJECTABLE_CLOCK})

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Callable[[], float] = clock or time.time
        self._records: dict[str, RetryRecord] = {}
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_url(cls, url: StoreURL, *, clock: Clock | None = None) -> Self:
        """Open a new store from ``memory://``."""
        _check_memory_url(url)
        return cls(clock=clock)

    def __repr__(self) -> str:
        return "MemoryAttemptStore()"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the memory attempt store is closed")

    def get_record(self, key: str) -> RetryRecord | None:
        """The record of ``key``, if any."""
        validation.check_retry_key(key)
        with self._lock:
            self._check_open()
            return self._records.get(key)

    def begin_attempt(self, key: str) -> RetryRecord:
        """Count one more attempt for ``key``."""
        validation.check_retry_key(key)
        with self._lock:
            self._check_open()
            now = self._clock()
            record = next_attempt(self._records.get(key), key, now)
            self._records[key] = record
            return record

    def record_failure(
        self, key: str, error: str | None, *, exhausted: bool = False
    ) -> RetryRecord | None:
        """Record the latest failure of ``key``."""
        validation.check_retry_key(key)
        error = validation.check_error(error)
        with self._lock:
            self._check_open()
            old = self._records.get(key)
            if old is None:
                return None
            record = with_failure(old, error, exhausted=exhausted)
            self._records[key] = record
            return record

    def reset(self, key: str) -> bool:
        """Forget ``key``."""
        validation.check_retry_key(key)
        with self._lock:
            self._check_open()
            return self._records.pop(key, None) is not None

    def close(self) -> None:
        """Drop every record; later calls raise ``StoreClosedError``."""
        with self._lock:
            self._closed = True
            self._records.clear()


# -- backend ---------------------------------------------------------------------------

backend = ClassBackend(MemoryQueueStore, MemoryAttemptStore)
"""What the ``memory`` scheme resolves to."""
