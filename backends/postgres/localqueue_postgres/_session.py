"""A store's link to the server: the connection pool, retries and error translation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_random_exponential

from localqueue.errors import StoreClosedError, StoreLockedError
from localqueue_postgres._config import PostgresConfig
from localqueue_postgres._errors import TRANSIENT, translate_errors
from localqueue_postgres._schema import Tables, ensure_schema

__all__ = ["Connection", "Session"]

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
            return work(conn)

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
