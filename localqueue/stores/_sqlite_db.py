"""SQLite engine plumbing shared by both SQLite stores; no queue semantics here.

One :class:`Database` per store handle: the connection and its lock, the
schema and its version, lock-contention retries, error translation through
the store module's rules, the reserve file that lets consumers drain a full
disk, the per-file wake-up hubs, and the fault triggers of the conformance
suite's fault injection.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Final, TypeVar

from localqueue.errors import (
    ConfigurationError,
    LegacyStoreError,
    SchemaVersionError,
    StoreClosedError,
    StoreCorruptedError,
    StoreError,
    StoreLockedError,
)
from localqueue.kit import ErrorRule, translate_error
from localqueue.protocols import Fault, FaultKind

T = TypeVar("T")

logger = logging.getLogger("localqueue.stores.sqlite")

SCHEMA_VERSION: Final = 1
"""The schema version this release writes, recorded in ``PRAGMA user_version``."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq          INTEGER PRIMARY KEY,
    nonce        INTEGER NOT NULL,
    queue        TEXT    NOT NULL,
    state        INTEGER NOT NULL DEFAULT 0,
    priority     INTEGER NOT NULL DEFAULT 0,
    available_at REAL    NOT NULL,
    created_at   REAL    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    leased_by    TEXT,
    lease_token  TEXT,
    last_error   TEXT,
    failed_at    REAL,
    dedup_key    TEXT,
    codec        TEXT    NOT NULL,
    payload      BLOB    NOT NULL
);
-- Delivery order for ready messages and leases, expired or not. The trailing
-- state column makes stats() a covering-index scan.
CREATE INDEX IF NOT EXISTS messages_available
    ON messages (queue, priority DESC, available_at, seq, state) WHERE state < 2;
CREATE INDEX IF NOT EXISTS messages_dead
    ON messages (queue, failed_at, seq) WHERE state = 2;
CREATE UNIQUE INDEX IF NOT EXISTS messages_dedup
    ON messages (queue, dedup_key) WHERE dedup_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS retry_records (
    key              TEXT    PRIMARY KEY,
    attempts         INTEGER NOT NULL,
    first_attempt_at REAL    NOT NULL,
    last_attempt_at  REAL    NOT NULL,
    exhausted        INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT
);
"""
OUR_TABLES = ("messages", "retry_records")
# The schema holds no ';' but its statement separators.
SCHEMA_STATEMENTS = tuple(st for st in _SCHEMA.split(";") if st.strip())


class _Hub:
    """Wakes this process's waiters on a file when any of its stores writes to it."""

    __slots__ = ("__weakref__", "changed", "generation", "waiters")

    def __init__(self) -> None:
        self.changed = threading.Condition(threading.Lock())
        self.generation = 0
        self.waiters = 0

    def notify(self) -> None:
        # Writers skip the lock while nobody waits, which is most of the time. A
        # waiter counts itself before it first reads the database, so a write
        # that finds no waiter was committed before that read and is seen by it.
        if self.waiters:
            with self.changed:
                self.generation += 1
                self.changed.notify_all()


# One hub per database file in this process (keyed by real path), shared by
# every store instance on it; entries go when the last store on a file does.
_hubs: weakref.WeakValueDictionary[str, _Hub] = weakref.WeakValueDictionary()
_hubs_lock = threading.Lock()


def hub_for(path: str) -> _Hub:
    with _hubs_lock:
        hub = _hubs.get(path)
        if hub is None:
            hub = _hubs[path] = _Hub()
        return hub


def _forget_hubs_after_fork() -> None:
    # A forked child must not share (possibly held) locks with its parent.
    global _hubs, _hubs_lock
    _hubs = weakref.WeakValueDictionary()
    _hubs_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_hubs_after_fork)


def primary_code(exc: BaseException) -> int | None:
    """The primary SQLite result code of an engine error, if it has one."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


# Bounds of the reserve file (see _Database.top_up_reserve): WAL checkpoints
# start at 1000 pages, 4 MiB with the default page size.
_RESERVE_SLACK: Final = 128 * 1024
_RESERVE_MAX: Final = 4 * 1024 * 1024 + _RESERVE_SLACK


def describe(exc: BaseException) -> str:
    """An engine error as its SQLite error name and text, for messages."""
    return f"{getattr(exc, 'sqlite_errorname', type(exc).__name__)}: {exc}"


class Database:
    """One connection to a store file: opening, error translation, retries, closing.

    Every use of the connection goes through :meth:`run`, which holds the
    lock, maps ``sqlite3`` errors onto :mod:`localqueue.errors` (the only
    place that does), and retries lock contention until ``timeout``.
    """

    __slots__ = (
        "conn",
        "disk_full",
        "kind",
        "lock",
        "locked_error",
        "path",
        "reserve_path",
        "rules",
        "timeout",
    )

    def __init__(
        self,
        path: str,
        *,
        synchronous: int,
        timeout: float,
        kind: str,
        locked_error: type[StoreLockedError],
        error_rules: Callable[[Database], Sequence[ErrorRule]],
        reserve: bool = False,
    ) -> None:
        self.path = path
        self.reserve_path = self.path + "-reserve" if reserve else None
        self.disk_full = False
        self.timeout = timeout
        self.kind = kind
        self.locked_error = locked_error
        self.rules = error_rules(self)
        self.lock = threading.Lock()
        self.conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                self.path,
                # No busy handler: SQLite's sleeps at least 1 ms per collision, far
                # longer than a commit here; run() retries lock contention itself.
                timeout=0,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=64,
            )
        except sqlite3.Error as exc:
            raise self.translate(exc) from exc
        self.conn = conn
        try:
            self.run(lambda c: self._setup(c, synchronous))
        except BaseException:
            self.conn = None
            conn.close()
            raise

    def _setup(self, conn: sqlite3.Connection, synchronous: int) -> None:
        # The version is checked first so a newer store's file is left untouched.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(version, SCHEMA_VERSION)
        # 0.2.0 data would otherwise sit unseen beside an empty queue.
        from localqueue.stores._legacy_0_2_0 import sqlite_legacy_layout

        legacy = sqlite_legacy_layout(conn)
        if legacy is not None:
            raise LegacyStoreError(self.path, legacy, SCHEMA_VERSION)
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: cannot switch to WAL mode (journal mode is {mode})")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        # Checkpoints truncate the WAL back to this size instead of leaving it at its peak.
        conn.execute("PRAGMA journal_size_limit = 67108864")
        if version == SCHEMA_VERSION:
            return
        with self.transaction(conn):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                tables = conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)",
                    OUR_TABLES,
                ).fetchall()
                if tables:
                    raise StoreCorruptedError(
                        f"{self.path} has a {tables[0][0]!r} table but no localqueue schema "
                        "version: it is not a localqueue store"
                    )
                for statement in SCHEMA_STATEMENTS:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version > SCHEMA_VERSION:
                raise SchemaVersionError(version, SCHEMA_VERSION)

    def translate(self, exc: sqlite3.Error) -> StoreError:
        """The localqueue error for an engine error (the caller chains ``exc``)."""
        error = translate_error(self.rules, exc)
        return error if error is not None else StoreError(f"{self.path}: {describe(exc)}")

    def check_open(self) -> None:
        """Raise ``StoreClosedError`` once the connection is closed."""
        if self.conn is None:
            raise StoreClosedError(f"the SQLite {self.kind} on {self.path} is closed")

    def run(self, operation: Callable[[sqlite3.Connection], T], *, draining: bool = False) -> T:
        """Run ``operation`` on the connection under the lock, retrying lock contention.

        A call that finds the database locked is retried after a pause that
        starts at 50 µs and doubles up to 5 ms, for at most ``timeout``
        seconds: another connection's commit takes tens of microseconds, and
        SQLite's own busy handler would sleep a whole millisecond or more.

        A ``draining`` operation (one that leases, acks or otherwise lets
        consumers free space) that finds the disk full gives back the reserve
        file, checkpoints the WAL into the freed room and is tried once more.
        """
        started = time.monotonic()
        pause = 0.00005
        spent = False
        while True:
            with self.lock:
                conn = self.conn
                if conn is None:
                    raise StoreClosedError(f"the SQLite {self.kind} on {self.path} is closed")
                try:
                    result = operation(conn)
                    if draining and self.disk_full:
                        # Keep the WAL short while the disk is full: a checkpoint
                        # lets the next commit reuse the WAL from its start.
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    return result
                except sqlite3.Error as exc:
                    error = self.translate(exc)
                    if draining and not spent and primary_code(exc) == sqlite3.SQLITE_FULL:
                        spent = True
                        self.spend_reserve(conn)
                        continue
                    if not isinstance(error, StoreLockedError):
                        raise error from exc
                    if time.monotonic() - started >= self.timeout:
                        raise error from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.005)

    def spend_reserve(self, conn: sqlite3.Connection) -> None:
        """Give the reserve file's room back and move the WAL into the database file."""
        self.disk_full = True
        if self.reserve_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.reserve_path)
                logger.warning(
                    "%s: the disk is full; gave back the %s reserve so consumers can drain",
                    self.path,
                    self.reserve_path,
                )
        # The checkpoint writes the WAL's pages into the database file (using the
        # room just freed) and truncates the WAL, freeing its own room.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def top_up_reserve(self) -> None:
        """Grow the reserve file to what draining a full disk needs now; quiet on failure.

        The first checkpoint after the disk fills may have to grow the database
        file by up to the WAL's size, so the reserve follows the WAL's size
        (plus slack for the draining commits), between 128 KiB and 4 MiB + 128 KiB.
        """
        if self.reserve_path is None:
            return
        try:
            wal = os.stat(self.path + "-wal").st_size
        except OSError:
            wal = 0
        target = min(max(wal, 0) + _RESERVE_SLACK, _RESERVE_MAX)
        try:
            fd = os.open(self.reserve_path, os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError:
            return
        try:
            if os.fstat(fd).st_size < target:
                os.posix_fallocate(fd, 0, target)
            self.disk_full = False
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                logger.debug("%s: cannot grow the reserve file: %s", self.path, exc)
        finally:
            os.close(fd)

    @staticmethod
    @contextlib.contextmanager
    def transaction(conn: sqlite3.Connection) -> Iterator[None]:
        """A write transaction that takes the write lock up front (``BEGIN IMMEDIATE``).

        Taking it first means a transaction never has to upgrade a read lock,
        which SQLite may refuse without waiting.
        """
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            # Also after a failed COMMIT (e.g. disk full), which leaves the
            # transaction open: the next call must start from a clean connection.
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def inject_fault(self, fault: Fault) -> Iterator[None]:
        """The engine side of the stores' ``inject_fault`` (see ``FaultInjectable``).

        ``locked``: a second connection holds ``BEGIN IMMEDIATE``, as another
        process would. ``engine_error``: TEMP triggers (seen only by this
        handle's connection) count row writes and ``RAISE(ABORT)`` past ``after``;
        the counter lives in a TEMP table, so a rolled-back call re-arms it.
        """
        if fault.kind not in SQLITE_FAULTS:
            raise ConfigurationError(f"SQLite stores cannot simulate a {fault.kind!r} fault")
        if fault.kind == "locked":
            holder = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                holder.execute("BEGIN IMMEDIATE")
                configured, self.timeout = self.timeout, float(fault.timeout)
                try:
                    yield
                finally:
                    self.timeout = configured
                    holder.execute("ROLLBACK")
            finally:
                holder.close()
            return
        self.run(lambda conn: arm_fault(conn, fault.after))
        try:
            yield
        finally:
            if self.conn is not None:
                self.run(disarm_fault)

    def close(self) -> None:
        """Close the connection; idempotent."""
        with self.lock:
            conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()


SQLITE_FAULTS: Final[frozenset[FaultKind]] = frozenset({"locked", "engine_error"})
"""The faults both SQLite stores simulate for the conformance suite."""

_FAULT_TRIGGERS = [
    (f"lq_fault_{table}_{op.lower()}", table, op)
    for table in OUR_TABLES
    for op in ("INSERT", "UPDATE", "DELETE")
]


def arm_fault(conn: sqlite3.Connection, after: int) -> None:
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS lq_fault (remaining INTEGER NOT NULL)")
    conn.execute("DELETE FROM temp.lq_fault")
    conn.execute("INSERT INTO temp.lq_fault VALUES (?)", (int(after),))
    for name, table, op in _FAULT_TRIGGERS:
        # Unqualified lq_fault inside the body: triggers may not qualify it,
        # and the TEMP schema is searched first.
        conn.execute(
            f"CREATE TEMP TRIGGER IF NOT EXISTS {name} BEFORE {op} ON main.{table} BEGIN "
            "UPDATE lq_fault SET remaining = remaining - 1; "
            "SELECT RAISE(ABORT, 'localqueue: injected engine fault') "
            "FROM lq_fault WHERE remaining < 0; END"
        )


def disarm_fault(conn: sqlite3.Connection) -> None:
    for name, _, _ in _FAULT_TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS temp.{name}")
    conn.execute("DROP TABLE IF EXISTS temp.lq_fault")
