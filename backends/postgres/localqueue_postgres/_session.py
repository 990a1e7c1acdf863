"""A store's link to the server: the connection pool, retries and error translation."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_random_exponential

from localqueue.errors import ConfigurationError, StoreClosedError, StoreLockedError
from localqueue.protocols import Fault, FaultKind
from localqueue_postgres._config import PostgresConfig
from localqueue_postgres._errors import TRANSIENT, translate_errors
from localqueue_postgres._schema import Tables, ensure_schema

__all__ = ["FAULTS", "Connection", "Session"]

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


class Session:
    """The pool one store uses, opened against a schema that exists and has a known version.

    Args:
        config: The parsed URL.
        locked: The ``*LockedError`` for lock timeouts of this kind of store.
        kind: ``"queue"`` or ``"attempt"``, for messages.
    """

    def __init__(
        self, config: PostgresConfig, *, locked: type[StoreLockedError], kind: str
    ) -> None:
        self.config = config
        self.tables = Tables(config.schema)
        self.where = config.url.redacted()
        self._locked = locked
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
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            kwargs=kwargs,
            min_size=config.pool_min_size,
            max_size=config.pool_max_size,
            open=False,
            # Connections in the pool may have been terminated by the server
            # (restart, pg_terminate_backend); check before handing one out.
            check=ConnectionPool.check_connection,
            timeout=config.connect_timeout,
            name=f"localqueue-{kind}",
        )
        self._pool.open(wait=False)

    def errors(self) -> AbstractContextManager[None]:
        """The context manager mapping driver errors for this store."""
        return translate_errors(self.where, self._locked, self.config.scrub)

    def check_open(self) -> None:
        """Raise ``StoreClosedError`` after :meth:`close`."""
        if self._closed:
            raise StoreClosedError(f"the PostgreSQL {self._kind} store {self.where} is closed")

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` on a pooled connection, retrying deadlocks and serialization failures.

        Every statement the stores send runs alone in autocommit mode, so a
        failed one was rolled back and running it again is safe.
        """
        self.check_open()
        retrying = Retrying(
            retry=retry_if_exception_type(TRANSIENT),
            stop=stop_after_delay(self.config.lock_timeout),
            wait=wait_random_exponential(multiplier=0.005, max=0.25),
            reraise=True,
        )
        with self.errors():
            result: T = retrying(self._once, work)
        return result

    def _once(self, work: Callable[[Connection], T]) -> T:
        with self._pool.connection() as conn:
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

    def listen_pool(self) -> ConnectionPool[Connection]:
        """The pool of connections used for blocking waits, opened on first use.

        A connection LISTENs only while a waiter holds it: the pool's reset
        runs ``UNLISTEN *``, so idle connections never pile up notifications.
        """
        self.check_open()
        with self._lock:
            if self._listen_pool is None:
                self._listen_pool = ConnectionPool(
                    kwargs=self.config.connect_kwargs(),
                    min_size=0,
                    max_size=self.config.pool_max_size,
                    open=False,
                    reset=_unlisten,
                    timeout=self.config.connect_timeout,
                    num_workers=1,
                    name=f"localqueue-{self._kind}-listen",
                )
                self._listen_pool.open(wait=False)
            return self._listen_pool

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


def _unlisten(conn: Connection) -> None:
    conn.execute("UNLISTEN *")
    # Drop notifications that arrived before the UNLISTEN took effect, so the
    # next waiter does not wake for a stale one.
    for _ in conn.notifies(timeout=0):
        pass
