"""A small but real localqueue backend on the standard library's ``sqlite3``.

It is the store that docs/writing-a-backend.md builds step by step: one SQLite
file holds every queue (table ``messages``) and every retry record (table
``attempts``). Each call is one ``BEGIN IMMEDIATE`` transaction on the handle's
own connection, guarded by a lock so threads can share the handle. Its
semantics are the memory store's; the conformance suite proves it.

URL: ``tutorial:///relative.db`` or ``tutorial:////absolute/path.db``, with
one option, ``?timeout=`` (seconds lock contention is retried, default 30).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self

from localqueue.errors import (
    AttemptStoreLockedError,
    Full,
    QueueStoreLockedError,
    StoreClosedError,
    StoreError,
)
from localqueue.kit import (
    Capability,
    ClosingContext,
    ErrorRule,
    QueueMessage,
    QueueStats,
    RetryRecord,
    StoredState,
    build_message,
    check_argument,
    effective_state,
    max_deliveries_error,
    new_lease_token,
    new_message_id,
    next_attempt,
    ready_message,
    translating,
    with_failure,
)
from localqueue.protocols import Clock, PurgeTarget
from localqueue.registry import PathBackend
from localqueue.urls import Option, StoreURL
from localqueue.validation import (
    check_delay,
    check_error,
    check_lease,
    check_lease_timeout,
    check_leases,
    check_limit,
    check_max_size,
    check_message_id,
    check_message_ids,
    check_purge_target,
    check_put,
    check_put_many,
    check_queue_name,
    check_retry_key,
    check_timeout,
)

__all__ = ["OPTIONS", "TutorialAttemptStore", "TutorialQueueStore", "backend"]

# -- options ---------------------------------------------------------------------------

# --8<-- [start:options]
OPTIONS: dict[str, Option[Any]] = {
    "timeout": Option.number(30.0, "seconds lock contention is retried before failing"),
}
_BAD_TIMEOUT = "timeout must be a finite number of seconds >= 0, got {value!r}"
# --8<-- [end:options]

# -- error translation -----------------------------------------------------------------


# --8<-- [start:errors]
def _error_rules(path: str, locked: type[StoreError]) -> list[ErrorRule]:
    """How ``sqlite3`` errors on the file at ``path`` read as localqueue errors."""
    return [
        (
            sqlite3.OperationalError,
            lambda e: locked(f"{path} stayed locked: {e}") if "locked" in str(e) else None,
        ),
        (sqlite3.Error, lambda e: StoreError(f"{path}: {e}")),
    ]


# --8<-- [end:errors]


# -- engine handle ---------------------------------------------------------------------

# --8<-- [start:engine]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, queue TEXT NOT NULL,
    state INTEGER NOT NULL, payload BLOB NOT NULL, codec TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,
    available_at REAL NOT NULL, priority INTEGER NOT NULL, leased_by TEXT,
    lease_token TEXT, last_error TEXT, failed_at REAL, dedup_key TEXT);
CREATE INDEX IF NOT EXISTS messages_order
    ON messages (queue, priority DESC, available_at, seq);
CREATE UNIQUE INDEX IF NOT EXISTS messages_dedup
    ON messages (queue, dedup_key) WHERE dedup_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS attempts (
    key TEXT PRIMARY KEY, attempts INTEGER NOT NULL, first_attempt_at REAL NOT NULL,
    last_attempt_at REAL NOT NULL, exhausted INTEGER NOT NULL, last_error TEXT);
"""


class _Database(ClosingContext):
    """One connection to the file, shared by threads under a lock."""

    _locked_error: type[StoreError] = StoreError

    def __init__(self, path: str, *, timeout: float = 30.0, clock: Clock | None = None) -> None:
        check_argument(OPTIONS["timeout"], timeout, _BAD_TIMEOUT)
        self.path = path
        self._clock: Clock = clock or time.time
        self._lock = threading.Lock()
        self._closed = False
        self._rules = _error_rules(path, self._locked_error)
        with translating(self._rules):
            self._conn = sqlite3.connect(
                path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)

    @classmethod
    def from_url(cls, url: StoreURL, *, clock: Clock | None = None) -> Self:
        """Open the file ``url.path`` names, with the URL's options."""
        return cls(url.path, **url.options(OPTIONS), clock=clock)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; engine errors leave it as localqueue errors."""
        with self._lock, translating(self._rules):
            if self._closed:
                raise StoreClosedError(f"the store at {self.path} is closed")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection; idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()


# --8<-- [end:engine]


# -- message building ------------------------------------------------------------------

# --8<-- [start:building]
_COLUMNS = (
    "id, state, payload, codec, attempts, created_at, available_at, priority,"
    " leased_by, last_error, failed_at, dedup_key"
)
_AVAILABLE = "queue = ? AND state != 2 AND available_at <= ?"  # 2 is StoredState.DEAD
_ORDER = "ORDER BY priority DESC, available_at, seq"


def _message(queue: str, row: Sequence[Any], now: float, token: str | None = None) -> QueueMessage:
    state, leased_until = effective_state(row[1], row[6], now)
    return build_message(
        {
            "id": row[0],
            "queue": queue,
            "state": state,
            "payload": row[2],
            "codec": row[3],
            "attempts": row[4],
            "created_at": row[5],
            "available_at": row[6],
            "priority": row[7],
            "leased_until": leased_until,
            "leased_by": row[8],
            "lease_token": token,
            "last_error": row[9],
            "failed_at": row[10],
            "dedup_key": row[11],
        }
    )


# --8<-- [end:building]


# -- queue store -----------------------------------------------------------------------


# --8<-- [start:queue-put]
class TutorialQueueStore(_Database):
    """Many named queues in one SQLite file."""

    capabilities = frozenset({Capability.PERSISTENT, Capability.INJECTABLE_CLOCK})
    _locked_error = QueueStoreLockedError

    def _check_room(self, db: sqlite3.Connection, queue: str, needed: int, limit: int) -> None:
        # Inside the write transaction, so the count and the insert are one step.
        sql = "SELECT COUNT(*) FROM messages WHERE queue = ? AND state != ?"
        (unfinished,) = db.execute(sql, (queue, StoredState.DEAD)).fetchone()
        if unfinished + needed > limit:
            raise Full(f"queue {queue!r} holds {unfinished} of at most {limit} messages")

    def _insert(
        self,
        db: sqlite3.Connection,
        queue: str,
        payload: bytes,
        codec: str,
        now: float,
        available_at: float,
        priority: int,
        dedup_key: str | None,
    ) -> QueueMessage:
        message_id = new_message_id()
        db.execute(
            "INSERT INTO messages (id, queue, state, payload, codec, created_at,"
            " available_at, priority, dedup_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message_id,
                queue,
                StoredState.READY,
                payload,
                codec,
                now,
                available_at,
                priority,
                dedup_key,
            ),
        )
        return ready_message(
            message_id, queue, payload, codec, now, available_at, priority, dedup_key
        )

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
        delay = check_put(queue, payload, delay, priority, dedup_key)
        if max_size is not None:
            check_max_size(max_size)
        with self._transaction() as db:
            now = self._clock()
            if dedup_key is not None:
                sql = f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND dedup_key = ?"
                row = db.execute(sql, (queue, dedup_key)).fetchone()
                if row is not None:
                    return _message(queue, row, now)
            if max_size is not None:
                self._check_room(db, queue, 1, max_size)
            return self._insert(db, queue, payload, codec, now, now + delay, priority, dedup_key)

    # --8<-- [end:queue-put]

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
        """Store several messages in one transaction: all or none."""
        items, delay = check_put_many(queue, payloads, delay, priority)
        if max_size is not None:
            check_max_size(max_size)
        with self._transaction() as db:
            now = self._clock()
            if max_size is not None and items:
                self._check_room(db, queue, len(items), max_size)
            return [
                self._insert(db, queue, p, codec, now, now + delay, priority, None) for p in items
            ]

    # --8<-- [start:queue-lease]
    def lease(
        self,
        queue: str,
        *,
        lease_timeout: float,
        leased_by: str | None = None,
        limit: int = 1,
        max_deliveries: int | None = None,
    ) -> list[QueueMessage]:
        """Lease up to ``limit`` available messages, in delivery order."""
        lease_timeout = check_lease(queue, lease_timeout, leased_by, limit, max_deliveries)
        leased: list[QueueMessage] = []
        with self._transaction() as db:
            now = self._clock()
            sql = f"SELECT {_COLUMNS} FROM messages WHERE {_AVAILABLE} {_ORDER} LIMIT ?"
            spent = True
            while spent and len(leased) < limit:
                spent = False
                for row in db.execute(sql, (queue, now, limit - len(leased))).fetchall():
                    if max_deliveries is not None and row[4] >= max_deliveries:
                        # Delivered as often as allowed: a dead letter, and the next one
                        # (the loop's next SELECT) is leased in its place.
                        db.execute(
                            "UPDATE messages SET state = 2, lease_token = NULL,"
                            " last_error = ?, failed_at = ? WHERE id = ?",
                            (max_deliveries_error(max_deliveries), now, row[0]),
                        )
                        spent = True
                        continue
                    leased.append(self._lease_row(db, queue, row, now, lease_timeout, leased_by))
        return leased

    @staticmethod
    def _lease_row(
        db: sqlite3.Connection,
        queue: str,
        row: Any,
        now: float,
        lease_timeout: float,
        leased_by: str | None,
    ) -> QueueMessage:
        """Lease one selected row (inside the lease's transaction)."""
        token = new_lease_token()
        db.execute(
            "UPDATE messages SET state = ?, attempts = attempts + 1,"
            " available_at = ?, leased_by = ?, lease_token = ? WHERE id = ?",
            (StoredState.INFLIGHT, now + lease_timeout, leased_by, token, row[0]),
        )
        held = list(row)
        held[1], held[4] = StoredState.INFLIGHT, row[4] + 1
        held[6], held[8] = now + lease_timeout, leased_by
        return _message(queue, held, now, token)

    def wait(self, queue: str, timeout: float) -> None:
        """Poll every 20 ms until a message is available, one is due, or ``timeout`` passes."""
        check_queue_name(queue)
        deadline = time.monotonic() + check_timeout(timeout)
        while True:
            with self._transaction() as db:
                now = self._clock()
                sql = "SELECT MIN(available_at) FROM messages WHERE queue = ? AND state != 2"
                (due,) = db.execute(sql, (queue,)).fetchone()
            if due is not None:
                if due <= now:
                    return
                # Wake by the due time (counted in real seconds: the clock may be fake).
                deadline = min(deadline, time.monotonic() + due - now)
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.02, left))

    # --8<-- [end:queue-lease]

    # --8<-- [start:queue-finish]
    def _change(self, sql: str, **params: Any) -> bool:
        """Run one UPDATE or DELETE; ``:now`` is the store's clock, read in the transaction."""
        with self._transaction() as db:
            return db.execute(sql, {**params, "now": self._clock()}).rowcount > 0

    _HELD = "queue = :queue AND id = :id AND (:token IS NULL OR lease_token = :token)"

    def ack(self, queue: str, message_id: str, *, lease_token: str | None = None) -> bool:
        """Delete a message for good (only while leased under ``lease_token``, if given)."""
        check_queue_name(queue)
        check_message_id(message_id)
        sql = f"DELETE FROM messages WHERE {self._HELD}"
        return self._change(sql, queue=queue, id=message_id, token=lease_token)

    def ack_many(self, queue: str, leases: Sequence[tuple[str, str | None]]) -> int:
        """Delete several messages in one transaction."""
        check_queue_name(queue)
        check_leases(leases)
        sql = "DELETE FROM messages WHERE queue = ? AND id = ? AND (? IS NULL OR lease_token = ?)"
        with self._transaction() as db:
            return sum(db.execute(sql, (queue, i, t, t)).rowcount for i, t in leases)

    def release(
        self,
        queue: str,
        message_id: str,
        *,
        lease_token: str | None = None,
        delay: float = 0.0,
        error: str | None = None,
    ) -> bool:
        """Make a message ready again after ``delay``, ending its lease."""
        check_queue_name(queue)
        check_message_id(message_id)
        delay, error = check_delay(delay), check_error(error)
        return self._change(
            "UPDATE messages SET state = 0, available_at = :now + :delay, lease_token = NULL,"
            " last_error = COALESCE(:error, last_error),"
            " failed_at = CASE WHEN :error IS NULL THEN failed_at ELSE :now END"
            f" WHERE {self._HELD} AND state != 2",
            queue=queue,
            id=message_id,
            token=lease_token,
            delay=delay,
            error=error,
        )

    def extend(
        self, queue: str, message_id: str, *, lease_token: str, lease_timeout: float
    ) -> bool:
        """Move the end of a held lease to ``lease_timeout`` seconds from now."""
        check_queue_name(queue)
        check_message_id(message_id)
        lease_timeout = check_lease_timeout(lease_timeout)
        return self._change(
            "UPDATE messages SET available_at = :now + :lease_timeout"
            " WHERE queue = :queue AND id = :id AND state = 1 AND lease_token = :token",
            queue=queue,
            id=message_id,
            token=lease_token,
            lease_timeout=lease_timeout,
        )

    def dead_letter(
        self,
        queue: str,
        message_id: str,
        *,
        lease_token: str | None = None,
        error: str | None = None,
    ) -> bool:
        """Move a message to dead-letter storage, recording ``error``."""
        check_queue_name(queue)
        check_message_id(message_id)
        error = check_error(error)
        return self._change(
            "UPDATE messages SET state = 2, lease_token = NULL, last_error = :error,"
            f" failed_at = :now WHERE {self._HELD} AND state != 2",
            queue=queue,
            id=message_id,
            token=lease_token,
            error=error,
        )

    # --8<-- [end:queue-finish]

    def requeue_dead(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        """Return dead letters to ready with ``attempts`` reset, oldest failure first."""
        check_queue_name(queue)
        ids = None if message_ids is None else check_message_ids(message_ids)
        with self._transaction() as db:
            now = self._clock()
            if ids is None:
                sql = (
                    "SELECT id FROM messages WHERE queue = ? AND state = 2 ORDER BY failed_at, seq"
                )
                ids = [i for (i,) in db.execute(sql, (queue,)).fetchall()]
            sql = (
                "UPDATE messages SET state = 0, attempts = 0, available_at = ?"
                " WHERE queue = ? AND id = ? AND state = 2"
            )
            return sum(db.execute(sql, (now, queue, i)).rowcount for i in dict.fromkeys(ids))

    def purge(self, queue: str, target: PurgeTarget = "ready") -> int:
        """Delete ready (and delayed, and expired-lease), dead, or all messages."""
        check_queue_name(queue)
        check_purge_target(target)
        where = {
            "all": "",
            "dead": " AND state = 2",
            "ready": " AND (state = 0 OR (state = 1 AND available_at <= ?))",
        }[target]
        with self._transaction() as db:
            params = (queue, self._clock()) if target == "ready" else (queue,)
            return db.execute(f"DELETE FROM messages WHERE queue = ?{where}", params).rowcount

    def peek(self, queue: str) -> QueueMessage | None:
        """The message ``lease`` would return next, not leased."""
        check_queue_name(queue)
        with self._transaction() as db:
            now = self._clock()
            sql = f"SELECT {_COLUMNS} FROM messages WHERE {_AVAILABLE} {_ORDER} LIMIT 1"
            row = db.execute(sql, (queue, now)).fetchone()
        return None if row is None else _message(queue, row, now)

    def inspect(self, queue: str, message_id: str) -> QueueMessage | None:
        """One message by id, in any state."""
        check_queue_name(queue)
        check_message_id(message_id)
        with self._transaction() as db:
            now = self._clock()
            sql = f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND id = ?"
            row = db.execute(sql, (queue, message_id)).fetchone()
        return None if row is None else _message(queue, row, now)

    def dead_letters(self, queue: str, *, limit: int | None = None) -> list[QueueMessage]:
        """Dead letters, oldest failure first."""
        check_queue_name(queue)
        if limit is not None:
            check_limit(limit)
        with self._transaction() as db:
            now = self._clock()
            sql = (
                f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND state = 2"
                " ORDER BY failed_at, seq LIMIT ?"
            )
            rows = db.execute(sql, (queue, -1 if limit is None else limit)).fetchall()
        return [_message(queue, row, now) for row in rows]

    def stats(self, queue: str) -> QueueStats:
        """Counts by effective state."""
        check_queue_name(queue)
        with self._transaction() as db:
            (ready, delayed, inflight, dead) = db.execute(
                "SELECT COALESCE(SUM(state != 2 AND available_at <= ?), 0),"
                " COALESCE(SUM(state = 0 AND available_at > ?), 0),"
                " COALESCE(SUM(state = 1 AND available_at > ?), 0),"
                " COALESCE(SUM(state = 2), 0) FROM messages WHERE queue = ?",
                (now := self._clock(), now, now, queue),
            ).fetchone()
        return QueueStats(ready=ready, delayed=delayed, inflight=inflight, dead=dead)

    def queues(self) -> list[str]:
        """Names of the queues holding at least one message, sorted."""
        with self._transaction() as db:
            rows = db.execute("SELECT DISTINCT queue FROM messages ORDER BY queue").fetchall()
        return [name for (name,) in rows]


# -- attempt store ---------------------------------------------------------------------


# --8<-- [start:attempts]
class TutorialAttemptStore(_Database):
    """Retry records in the same kind of SQLite file (table ``attempts``)."""

    capabilities = frozenset({Capability.PERSISTENT, Capability.INJECTABLE_CLOCK})
    _locked_error = AttemptStoreLockedError

    @staticmethod
    def _get(db: sqlite3.Connection, key: str) -> RetryRecord | None:
        row = db.execute(
            "SELECT attempts, first_attempt_at, last_attempt_at, exhausted, last_error"
            " FROM attempts WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        return RetryRecord(key, row[0], row[1], row[2], bool(row[3]), row[4])

    @staticmethod
    def _put(db: sqlite3.Connection, r: RetryRecord) -> RetryRecord:
        db.execute(
            "INSERT OR REPLACE INTO attempts VALUES (?, ?, ?, ?, ?, ?)",
            (r.key, r.attempts, r.first_attempt_at, r.last_attempt_at, r.exhausted, r.last_error),
        )
        return r

    def get_record(self, key: str) -> RetryRecord | None:
        """The record of ``key``, if any."""
        check_retry_key(key)
        with self._transaction() as db:
            return self._get(db, key)

    def begin_attempt(self, key: str) -> RetryRecord:
        """Count one more attempt for ``key`` (read and write in one transaction)."""
        check_retry_key(key)
        with self._transaction() as db:
            return self._put(db, next_attempt(self._get(db, key), key, self._clock()))

    def record_failure(
        self, key: str, error: str | None, *, exhausted: bool = False
    ) -> RetryRecord | None:
        """Record the latest failure of ``key``; exhaustion sticks until ``reset``."""
        check_retry_key(key)
        error = check_error(error)
        with self._transaction() as db:
            old = self._get(db, key)
            return (
                None
                if old is None
                else self._put(db, with_failure(old, error, exhausted=exhausted))
            )

    def reset(self, key: str) -> bool:
        """Forget ``key``."""
        check_retry_key(key)
        with self._transaction() as db:
            return db.execute("DELETE FROM attempts WHERE key = ?", (key,)).rowcount > 0


# --8<-- [end:attempts]


# -- backend ---------------------------------------------------------------------------

# --8<-- [start:backend]
backend = PathBackend(TutorialQueueStore, TutorialAttemptStore)
"""What the ``tutorial`` scheme resolves to (entry point ``localqueue.backends``)."""
# --8<-- [end:backend]
