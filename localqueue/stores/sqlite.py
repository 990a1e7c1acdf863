"""SQLite stores: the default engine, standard library only.

One file holds any number of queues (table ``messages``) and the retry
records (table ``retry_records``); several threads, store instances and OS
processes may use it at once. The database runs in WAL mode, so readers never
block the single writer, and each handle keeps one connection guarded by a
lock.

URL: ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or a plain path.
Options: ``durability`` (``full``/``normal``/``off``, mapped to
``PRAGMA synchronous``), ``timeout`` (seconds of lock contention retried
before :class:`~localqueue.errors.QueueStoreLockedError`) and
``poll_interval`` (how often a blocked ``wait`` looks for other processes'
writes). See ``docs/stores/sqlite.md``.

Layout choices that keep the hot paths to one statement each:

* While a message is leased its ``available_at`` holds the lease deadline, so
  "available" is one range on one partial index for ready messages and
  expired leases alike: ``state < 2 AND available_at <= now``.
* ``put`` is a single ``INSERT`` whose message is built client-side, a
  single-message ``lease`` is a single ``UPDATE ... RETURNING`` and ``ack`` a
  single ``DELETE``; no reclaim scans, no read-backs.
* A message id is its rowid and a random nonce (``{seq:016x}{nonce:016x}``),
  so no index on ids is written with every commit and an id lookup is a
  rowid lookup; the nonce keeps an old id from matching a later message that
  reuses a deleted rowid.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import random
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, Self, TypeVar

from localqueue import validation
from localqueue.errors import (
    AttemptStoreLockedError,
    ConfigurationError,
    Full,
    QueueStoreLockedError,
    StoreCorruptedError,
    StoreError,
    StoreLockedError,
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
    ready_message,
)
from localqueue.protocols import Clock, Damage, Fault, PurgeTarget
from localqueue.registry import PathBackend
from localqueue.stores._sqlite_db import (
    SCHEMA_STATEMENTS,
    SCHEMA_VERSION,
    SQLITE_FAULTS,
    Database,
    describe,
    hub_for,
    primary_code,
)
from localqueue.stores._sqlite_repair import (
    READ_ROW_SQL,
    ROW_COLUMNS,
    SCAN_ROWS_SQL,
    SET_ASIDE_SQL,
    integrity_problems,
    readable_rows,
    row_problem,
    salvage,
    set_aside,
)
from localqueue.urls import Option, StoreURL

__all__ = ["OPTIONS", "SCHEMA_VERSION", "SQLiteAttemptStore", "SQLiteQueueStore", "backend"]

T = TypeVar("T")

logger = logging.getLogger(__name__)


# -- options ---------------------------------------------------------------------------

DURABILITY_LEVELS: Final = {"full": 2, "normal": 1, "off": 0}
"""``durability`` option -> ``PRAGMA synchronous`` value."""


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise ValueError("must be a finite number > 0")
    return value


OPTIONS: dict[str, Option[Any]] = {
    "durability": Option.choice(
        "full",
        tuple(DURABILITY_LEVELS),
        "full (fsync every commit), normal (fsync at checkpoints) or off (never fsync)",
    ),
    "timeout": Option.number(30.0, "seconds lock contention is retried before failing"),
    "poll_interval": Option(
        _positive_seconds, 0.005, "seconds between checks for other processes' writes in wait"
    ),
}
"""The query-string options of ``sqlite://`` URLs (the same for both store kinds)."""

# The constructors check their arguments with these same options, so a value is
# accepted as an argument exactly when it would be as URL text; these say why not.
_BAD_ARGUMENT = {
    "durability": "durability must be one of full, normal, off, not {value!r}",
    "timeout": "timeout must be a number of seconds >= 0, not {value!r}",
    "poll_interval": "poll_interval must be a number of seconds > 0, not {value!r}",
}


def _check_argument(name: str, value: object) -> None:
    check_argument(OPTIONS[name], value, _BAD_ARGUMENT[name])


def _url_path(url: StoreURL) -> str:
    if url.host:
        raise ConfigurationError(
            f"sqlite URLs take no host ({url.host!r}); use sqlite:///relative.db "
            "or sqlite:////absolute/path.db"
        )
    if not url.path:
        raise ConfigurationError(
            "a sqlite URL needs a file path: sqlite:///relative.db or sqlite:////absolute.db"
        )
    return url.path


# -- error translation -----------------------------------------------------------------


def _error_rules(db: Database) -> list[ErrorRule]:
    """How ``sqlite3`` errors on ``db``'s file read as localqueue errors (by result code)."""

    def code(*codes: int) -> Callable[[BaseException], bool]:
        return lambda exc: primary_code(exc) in codes

    def when(
        test: Callable[[BaseException], bool], make: Callable[[BaseException], StoreError]
    ) -> ErrorRule:
        return (sqlite3.Error, lambda exc: make(exc) if test(exc) else None)

    path = db.path
    locked = code(sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return [
        when(
            lambda exc: locked(exc) or "locked" in str(exc).lower(),
            # db.timeout, not its value now: fault injection changes it for a while.
            lambda exc: db.locked_error(
                f"{path} stayed locked by another connection for more than "
                f"{db.timeout:g} s (raise the 'timeout' option if this is expected)"
            ),
        ),
        when(
            code(sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB),
            lambda exc: StoreCorruptedError(
                f"{path} is damaged or is not a SQLite database ({describe(exc)}); "
                "`localqueue repair` (or repair()) salvages what SQLite can still read; "
                "otherwise restore it from a backup"
            ),
        ),
        when(
            code(sqlite3.SQLITE_READONLY),
            lambda exc: StoreError(
                f"{path} is read-only ({describe(exc)}); the file, its -wal and -shm "
                "files and their directory must be writable"
            ),
        ),
        when(
            code(sqlite3.SQLITE_FULL),
            lambda exc: StoreError(f"{path}: the disk is full ({describe(exc)})"),
        ),
        when(
            code(sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH),
            lambda exc: StoreError(
                f"cannot open {path} ({describe(exc)}); check that its directory "
                "exists and is writable"
            ),
        ),
        when(
            code(sqlite3.SQLITE_IOERR),
            lambda exc: StoreError(f"{path}: I/O error ({describe(exc)})"),
        ),
        (sqlite3.Error, lambda exc: StoreError(f"{path}: SQLite error ({describe(exc)})")),
    ]


# -- engine handle ---------------------------------------------------------------------


def _open(
    path: str | os.PathLike[str],
    *,
    durability: str,
    timeout: float,
    kind: str,
    locked_error: type[StoreLockedError],
    reserve: bool = False,
) -> Database:
    """The engine handle a store holds: its arguments checked, its file open and set up."""
    path = os.fspath(path)
    if not path or path == ":memory:" or path.startswith("file:"):
        raise ConfigurationError(
            f"a SQLite store needs a file path, got {path!r} (use memory:// for RAM)"
        )
    _check_argument("durability", durability)
    _check_argument("timeout", timeout)
    return Database(
        path,
        synchronous=DURABILITY_LEVELS[durability],
        timeout=float(timeout),
        kind=kind,
        locked_error=locked_error,
        error_rules=_error_rules,
        reserve=reserve,
    )


# -- message building ------------------------------------------------------------------

# Plain ints of the kit's codes: compared on every record, so no enum lookups.
_READY, _INFLIGHT, _DEAD = (int(s) for s in StoredState)


# Exactly what _format_id writes: two 16-digit lowercase hex numbers below 2**63.
_ID_PATTERN: Final = re.compile(r"[0-7][0-9a-f]{15}[0-7][0-9a-f]{15}")


def _format_id(seq: int, nonce: int) -> str:
    return "%016x%016x" % (seq, nonce)  # noqa: UP031 - measurably faster here


def _parse_id(message_id: str) -> tuple[int, int]:
    """The rowid and nonce of an id; ``(-1, -1)``, which matches no row, for any
    string this store did not make."""
    if _ID_PATTERN.fullmatch(message_id) is None:
        return -1, -1
    return int(message_id[:16], 16), int(message_id[16:], 16)


# 63 bits, as SQLite integers are signed. The nonce only tells a reused rowid
# apart, so it need not be secret; random reseeds itself in forked children.
_new_nonce = functools.partial(random.getrandbits, 63)


def _new_nonces(count: int) -> list[int]:
    bits = random.getrandbits
    return [bits(63) for _ in range(count)]


def _row_name(row: Sequence[Any]) -> str:
    """How a report names a full row (``ROW_COLUMNS``), even one with damaged fields."""
    seq, nonce, queue = row[0], row[1], row[2]
    if type(seq) is int and type(nonce) is int and 0 <= seq < 2**63 and 0 <= nonce < 2**63:
        return f"{queue}: message {_format_id(seq, nonce)}"
    return f"{queue!r}: row {seq!r}"


def _message(queue: str, row: Sequence[Any], now: float, token: str | None = None) -> QueueMessage:
    (
        seq,
        nonce,
        state,
        priority,
        available_at,
        created_at,
        attempts,
        leased_by,
        last_error,
        failed_at,
        dedup_key,
        codec,
        payload,
    ) = row
    effective, leased_until = effective_state(state, available_at, now)
    # float(): RETURNING hands back whole-number REAL values as int.
    return build_message(
        {
            "id": _format_id(seq, nonce),
            "queue": queue,
            "state": effective,
            "payload": payload,
            "codec": codec,
            "attempts": attempts,
            "created_at": float(created_at),
            "available_at": float(available_at),
            "priority": priority,
            "leased_until": None if leased_until is None else float(leased_until),
            "leased_by": leased_by,
            "lease_token": token,
            "last_error": last_error,
            "failed_at": None if failed_at is None else float(failed_at),
            "dedup_key": dedup_key,
        }
    )


def _readable(queue: str, row: Sequence[Any], now: float) -> QueueMessage:
    """:func:`_message`, or for a row with impossible fields the dead letter it will become."""
    problem = row_problem(row)
    if problem is None:
        return _message(queue, row, now)
    seq, nonce, state, priority, available_at, created_at, attempts, leased_by = row[:8]
    last_error, failed_at, dedup_key, codec, payload = row[8:]
    full = (seq, nonce, queue, state, priority, available_at, created_at, attempts, leased_by)
    fixed = set_aside(
        (*full, None, last_error, failed_at, dedup_key, codec, payload), problem, now, 0
    )
    return _message(queue, fixed[:2] + fixed[3:9] + fixed[10:], now)


def _record(row: Sequence[Any]) -> RetryRecord:
    key, attempts, first_attempt_at, last_attempt_at, exhausted, last_error = row
    return RetryRecord(
        key=key,
        attempts=attempts,
        first_attempt_at=float(first_attempt_at),
        last_attempt_at=float(last_attempt_at),
        exhausted=bool(exhausted),
        last_error=last_error,
    )


# -- queue store -----------------------------------------------------------------------

_COLUMNS = (
    "seq, nonce, state, priority, available_at, created_at, attempts, leased_by, "
    "last_error, failed_at, dedup_key, codec, payload"
)
_PUT = (
    "INSERT INTO messages (nonce, queue, priority, available_at, created_at, codec, payload) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_PUT_DEDUP = (
    "INSERT INTO messages "
    "(nonce, queue, priority, available_at, created_at, codec, payload, dedup_key) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (queue, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING"
)
_PUT_SEQ = (
    "INSERT INTO messages "
    "(seq, nonce, queue, priority, available_at, created_at, codec, payload) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_MAX_SEQ = "SELECT coalesce(max(seq), 0) FROM messages"
_UNFINISHED = "SELECT count(*) FROM messages WHERE queue = ? AND state < 2"
_BY_DEDUP = f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND dedup_key = ?"
_NEXT = (
    "SELECT {cols} FROM messages WHERE queue = ?1 AND state < 2 AND available_at <= ?2 "
    "ORDER BY priority DESC, available_at, seq LIMIT ?3"
)
_NEXT_SEQS = _NEXT.format(cols="seq")
_NEXT_ROWS = _NEXT.format(cols=_COLUMNS)
_NEXT_ATTEMPTS = _NEXT.format(cols="seq, attempts")
_DEAD_LETTER_SEQS = (
    "UPDATE messages SET state = 2, lease_token = NULL, last_error = ?1, failed_at = ?2 "
    "WHERE seq IN (SELECT value FROM json_each(?3))"
)
_LEASE_SET = (
    "UPDATE messages SET state = 1, attempts = attempts + 1, available_at = ?4, "
    "leased_by = ?5, lease_token = lower(hex(randomblob(8))) "
)
_LEASE_ONE = (
    _LEASE_SET + "WHERE seq = (SELECT seq FROM messages WHERE queue = ?1 AND state < 2 "
    "AND available_at <= ?2 ORDER BY priority DESC, available_at, seq LIMIT ?3) "
    f"RETURNING lease_token, {_COLUMNS}"
)
_LEASE_SEQS = (
    _LEASE_SET + "WHERE seq IN (SELECT value FROM json_each(?6)) "
    f"RETURNING seq, lease_token, {_COLUMNS}"
)
# Statements on one message take its rowid and nonce as ?1 and ?2, its queue as ?3.
_BY_ID = "seq = ?1 AND nonce = ?2 AND queue = ?3"
_ACK = f"DELETE FROM messages WHERE {_BY_ID} AND (?4 IS NULL OR lease_token = ?4)"
_RELEASE = (
    "UPDATE messages SET state = 0, available_at = ?4, lease_token = NULL, "
    "last_error = coalesce(?6, last_error), "
    "failed_at = CASE WHEN ?6 IS NULL THEN failed_at ELSE ?7 END "
    f"WHERE {_BY_ID} AND state < 2 AND (?5 IS NULL OR lease_token = ?5)"
)
_EXTEND = f"UPDATE messages SET available_at = ?4 WHERE {_BY_ID} AND state = 1 AND lease_token = ?5"
_DEAD_LETTER = (
    "UPDATE messages SET state = 2, lease_token = NULL, last_error = ?5, failed_at = ?6 "
    f"WHERE {_BY_ID} AND state < 2 AND (?4 IS NULL OR lease_token = ?4)"
)
_REQUEUE_ALL = (
    "UPDATE messages SET state = 0, attempts = 0, available_at = ?2 WHERE queue = ?1 AND state = 2"
)
_REQUEUE_ONE = (
    f"UPDATE messages SET state = 0, attempts = 0, available_at = ?4 WHERE {_BY_ID} AND state = 2"
)
_PURGE_READY = (
    "DELETE FROM messages WHERE queue = ? AND state < 2 AND (state = 0 OR available_at <= ?)"
)
_PURGE_DEAD = "DELETE FROM messages WHERE queue = ? AND state = 2"
_PURGE_NOT_DEAD = "DELETE FROM messages WHERE queue = ? AND state < 2"
_INSPECT = f"SELECT {_COLUMNS} FROM messages WHERE {_BY_ID}"
_DEAD_LETTERS = (
    f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND state = 2 ORDER BY failed_at, seq LIMIT ?"
)
_STATS = (
    "SELECT coalesce(sum(available_at <= ?2), 0), "
    "coalesce(sum(state = 0 AND available_at > ?2), 0), "
    "coalesce(sum(state = 1 AND available_at > ?2), 0), "
    "(SELECT count(*) FROM messages WHERE queue = ?1 AND state = 2) "
    "FROM messages WHERE queue = ?1 AND state < 2"
)
# Earliest available_at of a queue's non-dead messages. The delivery index is
# ordered by priority first, so walk its distinct priorities (a loose index
# scan) and take the indexed minimum within each: O(priorities * log n).
_EARLIEST = """
WITH RECURSIVE levels(p) AS (
    SELECT max(priority) FROM messages WHERE queue = ?1 AND state < 2
    UNION ALL
    SELECT (SELECT max(priority) FROM messages
            WHERE queue = ?1 AND state < 2 AND priority < levels.p)
    FROM levels WHERE levels.p IS NOT NULL
)
SELECT min((SELECT min(available_at) FROM messages
            WHERE queue = ?1 AND state < 2 AND priority = levels.p))
FROM levels WHERE levels.p IS NOT NULL
"""
# An available entry of the delivery index whose row the table does not hold as
# available: after a damaged page, lease must not take that for an empty queue.
_STRAY = (
    "SELECT i.seq FROM (SELECT seq FROM messages INDEXED BY messages_available "
    "WHERE queue = ?1 AND state < 2 AND available_at <= ?2 "
    "ORDER BY priority DESC, available_at, seq LIMIT 1) AS i "
    "LEFT JOIN messages AS t NOT INDEXED ON t.seq = i.seq "
    "WHERE t.seq IS NULL OR t.queue IS NOT ?1 OR NOT t.state < 2 OR NOT t.available_at <= ?2"
)
_QUEUES = (
    "SELECT queue FROM messages WHERE state < 2 "
    "UNION SELECT queue FROM messages WHERE state = 2 ORDER BY 1"
)


def _dead_letter_spent(
    conn: sqlite3.Connection, queue: str, now: float, limit: int, max_deliveries: int
) -> None:
    """Dead-letter the spent messages among the next ``limit`` (in a write transaction).

    Repeats until the next ``limit`` available messages hold none that has been
    delivered ``max_deliveries`` times, so the lease that follows takes only
    messages with deliveries left.
    """
    error = max_deliveries_error(max_deliveries)
    while True:
        rows = conn.execute(_NEXT_ATTEMPTS, (queue, now, limit)).fetchall()
        spent = [seq for seq, attempts in rows if attempts >= max_deliveries]
        if not spent:
            return
        conn.execute(_DEAD_LETTER_SEQS, (error, now, json.dumps(spent)))


def _check_room(conn: sqlite3.Connection, queue: str, needed: int, max_size: int) -> None:
    """Raise ``Full`` unless ``needed`` more messages fit under ``max_size`` (in a write txn)."""
    unfinished = conn.execute(_UNFINISHED, (queue,)).fetchone()[0]
    if unfinished + needed > max_size:
        raise Full(f"queue {queue!r} holds {unfinished} of at most {max_size} messages")


class SQLiteQueueStore(ClosingContext):
    """A queue store in one SQLite file, shared safely by threads and processes.

    Args:
        path: The database file; created with its schema when missing.
        durability: ``"full"`` (default), ``"normal"`` or ``"off"``: ``PRAGMA synchronous``.
        timeout: Seconds lock contention is retried before ``QueueStoreLockedError``.
        poll_interval: Seconds between checks for other processes' writes in :meth:`wait`.
        clock: Time source; ``time.time`` by default.

    Raises:
        ConfigurationError: An argument is invalid.
        StoreCorruptedError: The file is not a SQLite database or is damaged.
        SchemaVersionError: The file was written by a newer localqueue.
        StoreError: The file cannot be opened or written.
    """

    capabilities = frozenset(
        {Capability.PERSISTENT, Capability.MULTI_PROCESS, Capability.INJECTABLE_CLOCK}
    )
    faults = SQLITE_FAULTS
    """Faults :meth:`inject_fault` simulates (see ``localqueue.protocols.FaultInjectable``)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: str = "full",
        timeout: float = 30.0,
        poll_interval: float = 0.005,
        clock: Clock | None = None,
    ) -> None:
        _check_argument("poll_interval", poll_interval)
        self._poll_interval = float(poll_interval)
        self._clock: Clock = clock or time.time
        self._db = _open(
            path,
            durability=durability,
            timeout=timeout,
            kind="queue store",
            locked_error=QueueStoreLockedError,
            reserve=True,
        )
        self._db.top_up_reserve()
        self._puts = 0
        self._lost: list[str] = []
        self._run = self._db.run
        self._hub = hub_for(os.path.realpath(self._db.path))
        self.durability = durability
        self.timeout = self._db.timeout

    @classmethod
    def from_url(cls, url: StoreURL, *, clock: Clock | None = None) -> Self:
        """Open the store a ``sqlite://`` URL (or plain path) names."""
        return cls(_url_path(url), **url.options(OPTIONS), clock=clock)

    @property
    def path(self) -> str:
        """The database file's path, as given."""
        return self._db.path

    def __repr__(self) -> str:
        return f"SQLiteQueueStore({self.path!r}, durability={self.durability!r})"

    # -- writes ----------------------------------------------------------------

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
        nonce = _new_nonce()
        clock = self._clock

        def insert(conn: sqlite3.Connection) -> tuple[float, int, Sequence[Any] | None]:
            now = clock()
            if dedup_key is None and max_size is None:
                cursor = conn.execute(
                    _PUT, (nonce, queue, priority, now + delay, now, codec, payload)
                )
                return now, cursor.lastrowid or 0, None
            with self._db.transaction(conn):
                if max_size is not None:
                    # Under BEGIN IMMEDIATE: no other writer between the count and the insert.
                    if dedup_key is not None:
                        existing = conn.execute(_BY_DEDUP, (queue, dedup_key)).fetchall()
                        if existing:
                            return now, 0, existing[0]
                    _check_room(conn, queue, 1, max_size)
                    if dedup_key is None:
                        cursor = conn.execute(
                            _PUT, (nonce, queue, priority, now + delay, now, codec, payload)
                        )
                        return now, cursor.lastrowid or 0, None
                cursor = conn.execute(
                    _PUT_DEDUP,
                    (nonce, queue, priority, now + delay, now, codec, payload, dedup_key),
                )
                if cursor.rowcount:
                    return now, cursor.lastrowid or 0, None
                existing = conn.execute(_BY_DEDUP, (queue, dedup_key)).fetchall()
                return now, 0, existing[0] if existing else None

        now, seq, existing = self._write(insert, draining=False)
        if existing is not None:
            return _message(queue, existing, now)
        self._hub.notify()
        self._grew(1)
        return ready_message(
            _format_id(seq, nonce), queue, payload, codec, now, now + delay, priority, dedup_key
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
        """Store several messages in one transaction (all or none)."""
        items, delay = validation.check_put_many(queue, payloads, delay, priority)
        if max_size is not None:
            validation.check_max_size(max_size)
        if not items:
            self._db.check_open()
            return []
        nonces = _new_nonces(len(items))
        clock = self._clock

        def insert(conn: sqlite3.Connection) -> tuple[float, int]:
            now = clock()
            available_at = now + delay
            with self._db.transaction(conn):
                if max_size is not None:
                    _check_room(conn, queue, len(items), max_size)
                # Rowids are chosen here, under the write lock, so the ids are known
                # without reading anything back.
                first = conn.execute(_MAX_SEQ).fetchone()[0] + 1
                conn.executemany(
                    _PUT_SEQ,
                    [
                        (seq, nonce, queue, priority, available_at, now, codec, payload)
                        for seq, nonce, payload in zip(
                            range(first, first + len(items)), nonces, items, strict=True
                        )
                    ],
                )
            return now, first

        now, first = self._write(insert, draining=False)
        self._hub.notify()
        self._grew(len(items))
        available_at = now + delay
        return [
            ready_message(
                _format_id(seq, nonce), queue, payload, codec, now, available_at, priority
            )
            for seq, nonce, payload in zip(
                range(first, first + len(items)), nonces, items, strict=True
            )
        ]

    def _write(self, operation: Callable[[sqlite3.Connection], T], *, draining: bool = True) -> T:
        """Run a write; when SQLite reports damage, :meth:`repair` once and run it again.

        The write was rolled back, so running it again is safe; if the file
        cannot be repaired, the ``StoreCorruptedError`` is raised. Rows the
        repair could not read at all are reported by the next :meth:`lease`.
        """
        try:
            return self._run(operation, draining=draining)
        except StoreCorruptedError as exc:
            logger.warning("%s: a write met damage (%s); repairing the file", self.path, exc)
            _, lost = self._repair()
            if lost:
                self._lost = lost
            return self._run(operation, draining=draining)

    def _report_loss(self) -> None:
        """Raise, once, for rows a repair by this handle could not read and lost."""
        lost, self._lost = self._lost, []
        if lost:
            more = f" (and {len(lost) - 3} more)" if len(lost) > 3 else ""
            raise StoreCorruptedError(
                f"{self.path} was damaged and has been repaired, but some rows could not "
                f"be read: {'; '.join(lost[:3])}{more}; messages the delivery index still "
                "named are kept as damaged dead letters, any others are lost; leasing goes on"
            )

    def _grew(self, count: int) -> None:
        # The reserve follows the WAL's size; a stat every 32 puts keeps it close.
        before, self._puts = self._puts, self._puts + count
        if self._db.disk_full or before // 32 != self._puts // 32:
            self._db.top_up_reserve()

    def lease(
        self,
        queue: str,
        *,
        lease_timeout: float,
        leased_by: str | None = None,
        limit: int = 1,
        max_deliveries: int | None = None,
    ) -> list[QueueMessage]:
        """Lease up to ``limit`` available messages: one ``UPDATE ... RETURNING`` for one."""
        lease_timeout = validation.check_lease(
            queue, lease_timeout, leased_by, limit, max_deliveries
        )
        self._report_loss()
        leased: list[QueueMessage] = []
        while len(leased) < limit:
            now, rows = self._write(
                functools.partial(
                    self._lease_rows,
                    queue,
                    lease_timeout,
                    leased_by,
                    limit - len(leased),
                    max_deliveries,
                )
            )
            if self._lost and not leased and not rows:
                self._report_loss()
            damaged = []
            for row in rows:
                problem = row_problem(row[1:])
                if problem is None:
                    leased.append(_message(queue, row[1:], now, row[0]))
                else:
                    damaged.append((row[1], problem))
            if not damaged:
                break
            # Move each impossible row aside and lease again in its place.
            self._set_aside(queue, damaged, now)
        return leased

    def _lease_rows(
        self,
        queue: str,
        lease_timeout: float,
        leased_by: str | None,
        limit: int,
        max_deliveries: int | None,
        conn: sqlite3.Connection,
    ) -> tuple[float, list[Any]]:
        """Lease up to ``limit`` rows; each row is its lease token then ``_COLUMNS``."""
        now = self._clock()
        if limit == 1 and max_deliveries is None:
            rows = conn.execute(
                _LEASE_ONE, (queue, now, 1, now + lease_timeout, leased_by)
            ).fetchall()
        else:
            with self._db.transaction(conn):
                if max_deliveries is not None:
                    _dead_letter_spent(conn, queue, now, limit, max_deliveries)
                seqs = [row[0] for row in conn.execute(_NEXT_SEQS, (queue, now, limit))]
                rows = []
                if seqs:
                    rows = conn.execute(
                        _LEASE_SEQS,
                        (queue, now, limit, now + lease_timeout, leased_by, json.dumps(seqs)),
                    ).fetchall()
            # RETURNING gives no order: restore delivery order from the SELECT.
            rank = {seq: i for i, seq in enumerate(seqs)}
            rows.sort(key=lambda row: rank[row[0]])
            rows = [row[1:] for row in rows]
        if not rows:
            # The delivery index may name a row the table no longer holds (a
            # damaged page): that must not pass for an empty queue.
            stray = conn.execute(_STRAY, (queue, now)).fetchone()
            if stray is not None:
                raise StoreCorruptedError(
                    f"{self.path}: the delivery index names rowid {stray[0]} of queue "
                    f"{queue!r}, which the table does not hold as available"
                )
        return now, rows

    def _set_aside(self, queue: str, damaged: list[tuple[int, str]], now: float) -> None:
        """Rewrite rows with impossible fields as dead letters saying what was wrong."""

        def update(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            moved = []
            with self._db.transaction(conn):
                for seq, problem in damaged:
                    row = conn.execute(READ_ROW_SQL, (seq,)).fetchone()
                    if row is None:
                        continue
                    fixed = set_aside(row, problem, now, _new_nonce())
                    conn.execute(SET_ASIDE_SQL, (*fixed[1:], seq))
                    moved.append((_format_id(fixed[0], fixed[1]), problem))
            return moved

        for message_id, problem in self._write(update):
            logger.warning(
                "%s: queue %r: message %s is damaged (%s); moved aside as a dead letter",
                self.path,
                queue,
                message_id,
                problem,
            )

    def ack(self, queue: str, message_id: str, *, lease_token: str | None = None) -> bool:
        """Delete a message: one ``DELETE``."""
        validation.check_queue_name(queue)
        seq, nonce = _parse_id(validation.check_message_id(message_id))
        cursor = self._write(lambda conn: conn.execute(_ACK, (seq, nonce, queue, lease_token)))
        return bool(cursor.rowcount)

    def ack_many(self, queue: str, leases: Sequence[tuple[str, str | None]]) -> int:
        """Delete several messages in one transaction."""
        validation.check_queue_name(queue)
        validation.check_leases(leases)
        if len(leases) == 0:
            self._db.check_open()
            return 0
        params = [(*_parse_id(message_id), queue, token) for message_id, token in leases]

        def delete(conn: sqlite3.Connection) -> int:
            with self._db.transaction(conn):
                return conn.executemany(_ACK, params).rowcount

        return self._write(delete)

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
        seq, nonce = _parse_id(validation.check_message_id(message_id))
        delay = validation.check_delay(delay)
        error = validation.check_error(error)
        clock = self._clock

        def update(conn: sqlite3.Connection) -> int:
            now = clock()
            params = (seq, nonce, queue, now + delay, lease_token, error, now)
            return conn.execute(_RELEASE, params).rowcount

        released = bool(self._write(update))
        if released:
            self._hub.notify()
        return released

    def extend(
        self, queue: str, message_id: str, *, lease_token: str, lease_timeout: float
    ) -> bool:
        """Move the end of a held lease to ``lease_timeout`` seconds from now."""
        validation.check_queue_name(queue)
        seq, nonce = _parse_id(validation.check_message_id(message_id))
        lease_timeout = validation.check_lease_timeout(lease_timeout)
        clock = self._clock

        def update(conn: sqlite3.Connection) -> int:
            params = (seq, nonce, queue, clock() + lease_timeout, lease_token)
            return conn.execute(_EXTEND, params).rowcount

        return bool(self._write(update))

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
        seq, nonce = _parse_id(validation.check_message_id(message_id))
        error = validation.check_error(error)
        clock = self._clock

        def update(conn: sqlite3.Connection) -> int:
            params = (seq, nonce, queue, lease_token, error, clock())
            return conn.execute(_DEAD_LETTER, params).rowcount

        return bool(self._write(update))

    def requeue_dead(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        """Return dead letters to the ready state."""
        validation.check_queue_name(queue)
        ids = (
            None
            if message_ids is None
            else list(dict.fromkeys(validation.check_message_ids(message_ids)))
        )
        if ids == []:
            self._db.check_open()
            return 0
        clock = self._clock

        def update(conn: sqlite3.Connection) -> int:
            now = clock()
            if ids is None:
                return conn.execute(_REQUEUE_ALL, (queue, now)).rowcount
            with self._db.transaction(conn):
                params = [(*_parse_id(i), queue, now) for i in ids]
                return conn.executemany(_REQUEUE_ONE, params).rowcount

        requeued = self._write(update)
        if requeued:
            self._hub.notify()
        return requeued

    def purge(self, queue: str, target: PurgeTarget = "ready") -> int:
        """Delete ready (and delayed), dead or all messages."""
        validation.check_queue_name(queue)
        validation.check_purge_target(target)
        clock = self._clock

        def delete(conn: sqlite3.Connection) -> int:
            if target == "ready":
                return conn.execute(_PURGE_READY, (queue, clock())).rowcount
            if target == "dead":
                return conn.execute(_PURGE_DEAD, (queue,)).rowcount
            with self._db.transaction(conn):
                deleted = conn.execute(_PURGE_DEAD, (queue,)).rowcount
                return deleted + conn.execute(_PURGE_NOT_DEAD, (queue,)).rowcount

        return self._write(delete)

    # -- reads -----------------------------------------------------------------

    def peek(self, queue: str) -> QueueMessage | None:
        """The next message ``lease`` would return, not leased."""
        validation.check_queue_name(queue)
        clock = self._clock

        def select(conn: sqlite3.Connection) -> tuple[float, Sequence[Any] | None]:
            now = clock()
            limit = 1
            while True:
                # lease moves damaged rows aside, so the next one lease would
                # return is the first intact row.
                rows = conn.execute(_NEXT_ROWS, (queue, now, limit)).fetchall()
                for row in rows:
                    if row_problem(row) is None:
                        return now, row
                if len(rows) < limit:
                    return now, None
                limit *= 4

        now, row = self._run(select)
        return None if row is None else _message(queue, row, now)

    def inspect(self, queue: str, message_id: str) -> QueueMessage | None:
        """One message by id, in any state."""
        validation.check_queue_name(queue)
        seq, nonce = _parse_id(validation.check_message_id(message_id))
        clock = self._clock

        def select(conn: sqlite3.Connection) -> tuple[float, Sequence[Any] | None]:
            rows = conn.execute(_INSPECT, (seq, nonce, queue)).fetchall()
            return clock(), rows[0] if rows else None

        now, row = self._run(select)
        return None if row is None else _readable(queue, row, now)

    def dead_letters(self, queue: str, *, limit: int | None = None) -> list[QueueMessage]:
        """Dead letters, oldest failure first."""
        validation.check_queue_name(queue)
        if limit is not None:
            validation.check_limit(limit)
        clock = self._clock

        def select(conn: sqlite3.Connection) -> tuple[float, list[Any]]:
            rows = conn.execute(_DEAD_LETTERS, (queue, -1 if limit is None else limit))
            return clock(), rows.fetchall()

        now, rows = self._run(select)
        return [_readable(queue, row, now) for row in rows]

    def stats(self, queue: str) -> QueueStats:
        """Counts by effective state, from one covering-index scan."""
        validation.check_queue_name(queue)
        clock = self._clock
        ready, delayed, inflight, dead = self._run(
            lambda conn: conn.execute(_STATS, (queue, clock())).fetchone()
        )
        return QueueStats(ready=ready, delayed=delayed, inflight=inflight, dead=dead)

    def queues(self) -> list[str]:
        """Queues holding at least one message, sorted."""
        return self._run(lambda conn: [row[0] for row in conn.execute(_QUEUES)])

    def check_integrity(self) -> list[str]:
        """Run ``PRAGMA integrity_check`` and check every row's fields; never raises for damage.

        Returns one line per problem: SQLite's findings prefixed ``sqlite:``,
        and one line per row with impossible fields, naming its id.
        """

        def check(conn: sqlite3.Connection) -> list[str]:
            problems = integrity_problems(conn)
            lost: list[str] = []
            for row in readable_rows(conn, "messages", ", ".join(ROW_COLUMNS), lost):
                problem = row_problem(row, ROW_COLUMNS)
                if problem is not None:
                    problems.append(f"{_row_name(row)} is damaged: {problem}")
            return problems + lost

        return self._run(check)

    def repair(self) -> list[str]:
        """Mend what :meth:`check_integrity` finds; see ``localqueue.protocols.Repairable``.

        When SQLite reports damaged pages or indexes, both tables are rebuilt
        from the rows it can still read (one write transaction, then
        ``VACUUM``): rows with impossible fields, and messages only the
        delivery index still remembers, become dead letters saying so; rows
        nothing can read any more are reported lost. Without engine damage,
        rows with impossible fields are rewritten as dead letters in place.
        Returns one line per repair, ``[]`` when nothing needed one.
        """
        return self._repair()[0]

    def _repair(self) -> tuple[list[str], list[str]]:
        """:meth:`repair`'s lines, and separately those about rows lost for good."""
        clock = self._clock

        def mend(conn: sqlite3.Connection) -> tuple[list[str], list[str]]:
            if integrity_problems(conn):
                return salvage(conn, self.path, SCHEMA_STATEMENTS, _format_id, clock(), _new_nonce)
            lines = []
            now = clock()
            with self._db.transaction(conn):
                for row in conn.execute(SCAN_ROWS_SQL).fetchall():
                    problem = row_problem(row, ROW_COLUMNS)
                    if problem is None:
                        continue
                    fixed = set_aside(row, problem, now, _new_nonce())
                    conn.execute(SET_ASIDE_SQL, (*fixed[1:], row[0]))
                    line = (
                        f"{fixed[2]}: message {_format_id(fixed[0], fixed[1])} is damaged "
                        f"({problem}); moved aside as a dead letter"
                    )
                    logger.warning("%s: %s", self.path, line)
                    lines.append(line)
            return lines, []

        lines, lost = self._run(mend, draining=True)
        if lines:
            self._hub.notify()
        return lines, lost

    damages: frozenset[Damage] = frozenset({"record"})
    """Damage :meth:`damage_record` plants (see ``localqueue.protocols.DamageInjectable``)."""

    def damage_record(self, queue: str, message_id: str, how: Damage) -> None:
        """Test hook: overwrite a message's codec, payload and created_at with values
        of types localqueue never writes, through SQL, as a damaged page can leave them.

        Its index entries stay, so the row is still found by leasing and counted by
        stats.
        """
        if how not in self.damages:
            raise ConfigurationError(f"SQLite stores cannot plant {how!r} damage")
        validation.check_queue_name(queue)
        seq, nonce = _parse_id(validation.check_message_id(message_id))
        self._run(
            lambda conn: conn.execute(
                f"UPDATE messages SET codec = x'a5a5', payload = 42, created_at = 'a5a5' "
                f"WHERE {_BY_ID}",
                (seq, nonce, queue),
            )
        )

    def wait(self, queue: str, timeout: float) -> None:
        """Block until a message may be available, at most ``timeout`` seconds.

        Writes by stores of this process on the same file wake it at once;
        other processes' writes are seen through ``PRAGMA data_version``
        within ``poll_interval``. It also returns when the earliest delayed
        message or lease of the queue becomes due.
        """
        validation.check_queue_name(queue)
        timeout = validation.check_timeout(timeout)
        hub = self._hub
        with hub.changed:
            hub.waiters += 1
            generation = hub.generation
        try:
            self._wait(queue, timeout, generation)
        finally:
            with hub.changed:
                hub.waiters -= 1

    def _wait(self, queue: str, timeout: float, generation: int) -> None:
        hub = self._hub
        clock = self._clock

        def look(conn: sqlite3.Connection) -> tuple[float, float | None, int]:
            earliest = conn.execute(_EARLIEST, (queue,)).fetchone()[0]
            return clock(), earliest, conn.execute("PRAGMA data_version").fetchone()[0]

        now, earliest, version = self._run(look)
        if earliest is not None:
            if earliest <= now:
                return
            timeout = min(timeout, earliest - now)
        deadline = time.monotonic() + timeout

        def data_version(conn: sqlite3.Connection) -> int:
            version: int = conn.execute("PRAGMA data_version").fetchone()[0]
            return version

        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            with hub.changed:
                if hub.generation == generation:
                    hub.changed.wait(min(remaining, self._poll_interval))
                if hub.generation != generation:
                    return
            if self._db.conn is None or self._run(data_version) != version:
                return

    def inject_fault(self, fault: Fault) -> contextlib.AbstractContextManager[None]:
        """Test hook: make SQLite fail as ``fault`` says until the context exits.

        ``locked`` holds the write lock from a second connection (and uses
        ``fault.timeout`` as this handle's timeout meanwhile); ``engine_error``
        installs TEMP triggers, seen only by this handle, that abort the row write
        after ``fault.after`` of them. See ``localqueue.protocols.FaultInjectable``.
        """
        return self._db.inject_fault(fault)

    def close(self) -> None:
        """Close the connection; later calls raise ``StoreClosedError``. Idempotent."""
        self._db.close()
        # Wake this process's waiters so a wait on the closed store ends now.
        self._hub.notify()


# -- attempt store ---------------------------------------------------------------------

_RECORD_COLUMNS = "key, attempts, first_attempt_at, last_attempt_at, exhausted, last_error"
_GET_RECORD = f"SELECT {_RECORD_COLUMNS} FROM retry_records WHERE key = ?"
_BEGIN_ATTEMPT = (
    "INSERT INTO retry_records (key, attempts, first_attempt_at, last_attempt_at) "
    "VALUES (?1, 1, ?2, ?2) ON CONFLICT (key) DO UPDATE SET "
    "attempts = attempts + 1, last_attempt_at = excluded.last_attempt_at "
    f"RETURNING {_RECORD_COLUMNS}"
)
_RECORD_FAILURE = (
    "UPDATE retry_records SET last_error = ?2, exhausted = (exhausted OR ?3) "
    f"WHERE key = ?1 RETURNING {_RECORD_COLUMNS}"
)
_RESET = "DELETE FROM retry_records WHERE key = ?"


class SQLiteAttemptStore(ClosingContext):
    """An attempt store in a SQLite file (table ``retry_records``; may share a queue store's file).

    Args:
        path: The database file; created with its schema when missing.
        durability: ``"full"`` (default), ``"normal"`` or ``"off"``: ``PRAGMA synchronous``.
        timeout: Seconds lock contention is retried before ``AttemptStoreLockedError``.
        clock: Time source; ``time.time`` by default.
    """

    capabilities = frozenset(
        {Capability.PERSISTENT, Capability.MULTI_PROCESS, Capability.INJECTABLE_CLOCK}
    )
    faults = SQLITE_FAULTS
    """Faults :meth:`inject_fault` simulates (see ``localqueue.protocols.FaultInjectable``)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: str = "full",
        timeout: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self._clock: Clock = clock or time.time
        self._db = _open(
            path,
            durability=durability,
            timeout=timeout,
            kind="attempt store",
            locked_error=AttemptStoreLockedError,
        )
        self._run = self._db.run
        self.durability = durability

    @classmethod
    def from_url(cls, url: StoreURL, *, clock: Clock | None = None) -> Self:
        """Open the store a ``sqlite://`` URL names; ``poll_interval`` is accepted
        (the same URL serves both store kinds) and unused."""
        options = url.options(OPTIONS)
        return cls(
            _url_path(url),
            durability=options["durability"],
            timeout=options["timeout"],
            clock=clock,
        )

    @property
    def path(self) -> str:
        """The database file's path, as given."""
        return self._db.path

    def __repr__(self) -> str:
        return f"SQLiteAttemptStore({self.path!r}, durability={self.durability!r})"

    def get_record(self, key: str) -> RetryRecord | None:
        """The record of ``key``, if any."""
        validation.check_retry_key(key)
        rows = self._run(lambda conn: conn.execute(_GET_RECORD, (key,)).fetchall())
        return _record(rows[0]) if rows else None

    def begin_attempt(self, key: str) -> RetryRecord:
        """Count one more attempt for ``key``: one upsert with ``RETURNING``."""
        validation.check_retry_key(key)
        clock = self._clock
        # fetchall(): a RETURNING statement commits only once stepped to its end.
        rows = self._run(lambda conn: conn.execute(_BEGIN_ATTEMPT, (key, clock())).fetchall())
        return _record(rows[0])

    def record_failure(
        self, key: str, error: str | None, *, exhausted: bool = False
    ) -> RetryRecord | None:
        """Record the latest failure of ``key``."""
        validation.check_retry_key(key)
        error = validation.check_error(error)
        params = (key, error, bool(exhausted))
        rows = self._run(lambda conn: conn.execute(_RECORD_FAILURE, params).fetchall())
        return _record(rows[0]) if rows else None

    def reset(self, key: str) -> bool:
        """Forget ``key``."""
        validation.check_retry_key(key)
        return bool(self._run(lambda conn: conn.execute(_RESET, (key,)).rowcount))

    def inject_fault(self, fault: Fault) -> contextlib.AbstractContextManager[None]:
        """Test hook: as :meth:`SQLiteQueueStore.inject_fault`."""
        return self._db.inject_fault(fault)

    def close(self) -> None:
        """Close the connection; later calls raise ``StoreClosedError``. Idempotent."""
        self._db.close()


# -- backend ---------------------------------------------------------------------------

backend = PathBackend(SQLiteQueueStore, SQLiteAttemptStore)
"""What the ``sqlite`` scheme resolves to."""
