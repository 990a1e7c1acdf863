"""A store's link to the server: the connection pool, retries and fault injection."""

from __future__ import annotations

import contextlib
import select
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TypeVar

import psycopg
from psycopg import pq, sql
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_random_exponential,
)

from localqueue.errors import ConfigurationError, StoreClosedError, StoreError
from localqueue.kit import ErrorRule, translating
from localqueue.protocols import Fault, FaultKind
from localqueue_postgres._config import PostgresConfig
from localqueue_postgres._errors import TRANSIENT
from localqueue_postgres._schema import Tables, ensure_schema, has_damage_index

__all__ = ["FAULTS", "RECONNECT_ATTEMPTS", "Connection", "Session"]

FAULTS: frozenset[FaultKind] = frozenset({"locked", "engine_error"})
"""The faults both PostgreSQL stores simulate for the conformance suite."""

# Counts the row writes of the current transaction (each store statement runs
# alone in autocommit, so: of the statement) in a transaction-local setting.
_FAULT_FUNCTION = """CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  done integer := coalesce(
    nullif(current_setting('localqueue.fault_writes', true), ''), '0')::integer;
BEGIN
  IF done >= TG_ARGV[0]::integer THEN
    RAISE EXCEPTION 'localqueue: injected engine fault';
  END IF;
  PERFORM set_config('localqueue.fault_writes', (done + 1)::text, true);
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $$"""

T = TypeVar("T")
Connection = psycopg.Connection[TupleRow]

RECONNECT_ATTEMPTS = 8
"""Times one call tries a fresh connection after losing one, before ``StoreError``.

With the back-off between tries (5 ms doubling, at most 250 ms) a call that
keeps losing its connection gives up within about one second.
"""


class _Lost(Exception):
    """A statement's connection broke (killed session, restart, network).

    ``sent`` tells whether the statement may have reached the server: when it
    did not, running it again is safe whatever it does.
    """

    def __init__(self, error: psycopg.Error, *, sent: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.sent = sent


def _broken(conn: Connection) -> bool:
    """True when ``conn`` is known or likely dead, found without a round trip.

    An idle autocommit session of the main pool (which never LISTENs) has
    nothing to read: a server that terminated it sent a FATAL message and
    closed the socket, so anything readable means the session is ending. A
    false alarm (a stray notice) only costs a reconnection.
    """
    if conn.pgconn.status == pq.ConnStatus.BAD:
        return True
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return True
    return bool(readable)


class Session:
    """The pool one store uses, opened against a schema that exists and has a known version.

    Args:
        config: The parsed URL.
        rules: How driver errors read as localqueue errors (the store's ``_error_rules``).
        kind: ``"queue"`` or ``"attempt"``, for messages.
    """

    def __init__(self, config: PostgresConfig, *, rules: Sequence[ErrorRule], kind: str) -> None:
        self.config = config
        self.tables = Tables(config.schema)
        self.where = config.url.redacted()
        self._rules = rules
        self._kind = kind
        self._closed = False
        self._lock = threading.Lock()
        self._listen_pool: ConnectionPool[Connection] | None = None
        self._fault_lock_timeout: float | None = None
        kwargs = config.connect_kwargs()
        # A direct connection first: it fails fast with the server's own reason
        # (refused, unknown database...) where a pool would only time out.
        with self.errors(), psycopg.connect(**kwargs) as conn:
            ensure_schema(conn, self.tables)
            # Leases look for damaged rows only where an index makes that free.
            self.damage_index = has_damage_index(conn, self.tables)
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            kwargs=kwargs,
            min_size=config.pool_min_size,
            max_size=config.pool_max_size,
            open=False,
            # No ``check``: the pool's check sleeps 1, 2, 4... seconds between
            # connections that fail it, so under repeated session kills a call
            # stalled until the pool timeout. run() checks and retries itself.
            timeout=config.connect_timeout,
            name=f"localqueue-{kind}",
        )
        self._pool.open(wait=False)

    def errors(self) -> AbstractContextManager[None]:
        """The context manager mapping driver errors for this store."""
        return translating(self._rules)

    def check_open(self) -> None:
        """Raise ``StoreClosedError`` after :meth:`close`."""
        if self._closed:
            raise StoreClosedError(f"the PostgreSQL {self._kind} store {self.where} is closed")

    def run(self, work: Callable[[Connection], T], *, idempotent: bool = True) -> T:
        """Run ``work`` on a pooled connection, retrying what is safe to run again.

        Deadlocks and serialization failures are retried until ``lock_timeout``:
        every statement the stores send runs alone in autocommit mode (or in one
        explicit transaction), so a failed one was rolled back. A lost connection
        is retried on a fresh one, at most :data:`RECONNECT_ATTEMPTS` times: always
        when it was found dead before the statement was sent, and otherwise only
        for ``idempotent`` work, whose second run cannot do more than its first
        would have (the statement may have committed before the reply was lost).

        Raises:
            StoreError: The connection kept being lost, or was lost while
                non-idempotent work ran (which may or may not have taken effect).
        """
        self.check_open()
        retrying = Retrying(
            retry=retry_if_exception_type((*TRANSIENT, _Lost)),
            stop=self._stop(idempotent),
            wait=wait_random_exponential(multiplier=0.005, max=0.25),
            reraise=True,
        )
        with self.errors():
            try:
                result: T = retrying(self._once, work)
            except _Lost as lost:
                raise self._lost_error(lost, idempotent) from lost.error
        return result

    def _stop(self, idempotent: bool) -> Callable[[RetryCallState], bool]:
        lock_timeout = self.config.lock_timeout

        def stop(state: RetryCallState) -> bool:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, _Lost):
                if error.sent and not idempotent:
                    return True
                return state.attempt_number >= RECONNECT_ATTEMPTS
            return (state.seconds_since_start or 0.0) >= lock_timeout

        return stop

    def _lost_error(self, lost: _Lost, idempotent: bool) -> StoreError:
        reason = self.config.scrub(str(lost.error)).strip()
        if lost.sent and not idempotent:
            return StoreError(
                f"{self.where}: connection to PostgreSQL lost while the statement ran, so it "
                f"may or may not have taken effect (not retried): {reason}"
            )
        return StoreError(
            f"{self.where}: connection to PostgreSQL lost {RECONNECT_ATTEMPTS} times in a "
            f"row: {reason}"
        )

    def _once(self, work: Callable[[Connection], T]) -> T:
        with self._pool.connection() as conn:
            if _broken(conn):
                # Closed here, the pool replaces it when it comes back.
                conn.close()
                raise _Lost(psycopg.OperationalError("the pooled session was gone"), sent=False)
            try:
                return self._work(conn, work)
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    raise _Lost(exc, sent=True) from exc
                raise

    def _work(self, conn: Connection, work: Callable[[Connection], T]) -> T:
        override = self._fault_lock_timeout
        if override is None:
            return work(conn)
        milliseconds = f"{max(1, round(override * 1000))}ms"
        conn.execute("SELECT set_config('lock_timeout', %s, false)", [milliseconds])
        try:
            return work(conn)
        finally:
            # Back to the URL's lock_timeout (a connection option, so RESET's default).
            with contextlib.suppress(psycopg.Error):
                conn.execute("RESET lock_timeout")

    @contextlib.contextmanager
    def inject_fault(self, fault: Fault) -> Iterator[None]:
        """The engine side of the stores' ``inject_fault`` (see ``FaultInjectable``).

        ``locked``: another session holds ``LOCK TABLE ... IN EXCLUSIVE MODE`` on
        both tables (reads go on, writes wait), and this store's statements use
        ``fault.timeout`` as their ``lock_timeout`` meanwhile. ``engine_error``: a
        row trigger on both tables raises past ``fault.after`` row writes of a
        statement. Both affect every handle on the schema while active.
        """
        if fault.kind not in FAULTS:
            raise ConfigurationError(f"PostgreSQL stores cannot simulate a {fault.kind!r} fault")
        self.check_open()
        t = self.tables
        with self.errors(), psycopg.connect(**self.config.connect_kwargs()) as conn:
            if fault.kind == "locked":
                with conn.transaction():
                    lock = sql.SQL("LOCK TABLE {}, {} IN EXCLUSIVE MODE")
                    conn.execute(lock.format(t.messages, t.attempts))
                    self._fault_lock_timeout = float(fault.timeout)
                    try:
                        yield
                    finally:
                        self._fault_lock_timeout = None
                return
            function = sql.Identifier(t.schema_name, "lq_fault")
            conn.execute(sql.SQL(_FAULT_FUNCTION).format(function=function))
            for table in (t.messages, t.attempts):
                conn.execute(
                    sql.SQL(
                        "CREATE TRIGGER lq_fault BEFORE INSERT OR UPDATE OR DELETE ON {} "
                        "FOR EACH ROW EXECUTE FUNCTION {}({})"
                    ).format(table, function, sql.Literal(str(int(fault.after))))
                )
            try:
                yield
            finally:
                for table in (t.messages, t.attempts):
                    conn.execute(sql.SQL("DROP TRIGGER IF EXISTS lq_fault ON {}").format(table))
                conn.execute(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(function))

    def kill_connections(self) -> int:
        """The engine side of the stores' ``kill_connections`` (see ``ConnectionKillable``).

        Terminates, with ``pg_terminate_backend``, every session of the URL's
        ``application_name`` whose last statement named this schema, from any
        process; sessions of other schemas stay. Returns how many were ended.
        """
        self.check_open()
        schema = sql.Identifier(self.tables.schema_name)
        with self.errors(), psycopg.connect(**self.config.connect_kwargs()) as conn:
            named = (_like(f"{schema.as_string(conn)}."), _like(self.tables.channel))
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s AND pid <> pg_backend_pid() "
                "AND (query LIKE %s OR query LIKE %s)",
                [self.config.application_name, *named],
            ).fetchone()
        return int(row[0]) if row else 0

    def listen_pool(self) -> ConnectionPool[Connection]:
        """The pool of connections used for blocking waits, opened on first use.

        A connection LISTENs only while a waiter holds it: the pool's reset
        runs ``UNLISTEN`` of the schema's channel (the only one a waiter
        listens to), so idle connections never pile up notifications.
        """
        self.check_open()
        with self._lock:
            if self._listen_pool is None:
                self._listen_pool = ConnectionPool(
                    kwargs=self.config.connect_kwargs(),
                    min_size=0,
                    max_size=self.config.pool_max_size,
                    open=False,
                    reset=self._unlisten,
                    timeout=self.config.connect_timeout,
                    num_workers=1,
                    name=f"localqueue-{self._kind}-listen",
                )
                self._listen_pool.open(wait=False)
            return self._listen_pool

    def _unlisten(self, conn: Connection) -> None:
        # Naming the channel (not UNLISTEN *) keeps this schema named in the
        # session's last statement, which kill_connections goes by.
        conn.execute(sql.SQL("UNLISTEN {}").format(sql.Identifier(self.tables.channel)))
        # Drop notifications that arrived before the UNLISTEN took effect, so the
        # next waiter does not wake for a stale one.
        for _ in conn.notifies(timeout=0):
            pass

    def close(self) -> None:
        """Close both pools. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pools = [self._pool, self._listen_pool]
        for pool in pools:
            if pool is not None:
                pool.close(timeout=5.0)


def _like(text: str) -> str:
    """A LIKE pattern matching any text that contains ``text``."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
