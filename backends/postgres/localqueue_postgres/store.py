"""PostgreSQL queue and attempt stores.

Every operation is one SQL statement in autocommit mode, so each is atomic
and costs one round trip (after the pool's liveness check). Leases pick rows
with ``FOR UPDATE SKIP LOCKED``, so concurrent consumers never wait for, nor
lease, the same message. ``put``, ``release`` and ``requeue_dead`` send a
``NOTIFY`` in the same statement; blocking waits ``LISTEN`` for it. All times
come from the server's clock (``now()``), so the store does not take an
injected clock.

URL: ``postgresql://user:password@host:port/database?schema=localqueue``
(``postgres://`` too); see :data:`localqueue_postgres.OPTIONS`.

The engine plumbing is in private modules beside this one: what a URL means
(``_config``), the tables (``_schema``), the SQL text (``_statements``), and
the connection pools, retries and fault injection (``_session``); this module
is the queue and attempt semantics over them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, Self

import psycopg
import psycopg_pool
from psycopg import sql
from psycopg.rows import dict_row

from localqueue import validation
from localqueue.errors import (
    AttemptStoreLockedError,
    ConfigurationError,
    Full,
    MessageNotFoundError,
    QueueStoreLockedError,
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
    build_message,
    effective_state,
    max_deliveries_error,
    new_message_id,
    new_message_ids,
)
from localqueue.protocols import Clock, Damage, Fault, PurgeTarget
from localqueue.registry import ClassBackend
from localqueue.urls import StoreURL
from localqueue.validation import storable_text
from localqueue_postgres._config import OPTIONS, PostgresConfig
from localqueue_postgres._errors import LOCKED
from localqueue_postgres._session import FAULTS, Connection, Session
from localqueue_postgres._statements import AttemptStatements, QueueStatements

__all__ = ["OPTIONS", "PostgresAttemptStore", "PostgresBackend", "PostgresQueueStore", "backend"]

_log = logging.getLogger(__name__)


# -- options ---------------------------------------------------------------------------

# OPTIONS (the URL's options, also localqueue_postgres.OPTIONS) and the messages
# for bad arguments live with PostgresConfig in _config, which the engine plumbing
# reads too. A PostgresConfig checks each field with check_argument(OPTIONS[name],
# ...), so the stores, which take one, accept a value exactly when the URL would.


def _open_config(url: StoreURL, clock: Clock | None) -> PostgresConfig:
    """The URL check both stores' ``from_url`` make: its options, and no clock."""
    if clock is not None:
        raise ConfigurationError(
            "the PostgreSQL stores keep time by the server's clock and take no clock argument"
        )
    return PostgresConfig.from_url(url)


def _check_config(config: object) -> PostgresConfig:
    """The constructors' argument: a :class:`PostgresConfig`, whose fields it checked."""
    if not isinstance(config, PostgresConfig):
        raise ConfigurationError(
            "the PostgreSQL stores take a PostgresConfig (or open them with from_url), "
            f"not {type(config).__name__}"
        )
    return config


# -- error translation -----------------------------------------------------------------


def _error_rules(config: PostgresConfig, locked: type[StoreLockedError]) -> list[ErrorRule]:
    """How psycopg's and its pool's exceptions map onto localqueue's tree.

    Every message names the store by its redacted URL, and a driver message has
    the password scrubbed from it, should one appear there.

    Args:
        config: The store's parsed URL.
        locked: The ``*LockedError`` raised for lock and serialization timeouts.
    """
    where, scrub = config.url.redacted(), config.scrub
    return [
        (LOCKED, lambda e: locked(f"{where}: gave up waiting for a lock: {scrub(str(e))}")),
        (
            psycopg_pool.PoolTimeout,
            lambda e: StoreError(
                f"{where}: no connection available in time (server unreachable or pool exhausted)"
            ),
        ),
        (
            (psycopg.OperationalError, psycopg.InterfaceError),
            lambda e: StoreError(f"{where}: connection to PostgreSQL failed: {scrub(str(e))}"),
        ),
        (psycopg.Error, lambda e: StoreError(f"{where}: PostgreSQL error: {scrub(str(e))}")),
    ]


# -- engine handle ---------------------------------------------------------------------

Row = dict[str, Any]


def _rows(conn: Connection, query: sql.Composed, params: dict[str, Any]) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def _count(conn: Connection, query: sql.Composed, params: dict[str, Any]) -> int:
    return conn.execute(query, params).rowcount


def _scalar(conn: Connection, query: sql.Composed, params: dict[str, Any]) -> Any:
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


class _PostgresHandle(ClosingContext):
    """What both stores share: the session (pools, retries, error translation) on a schema."""

    capabilities = frozenset({Capability.PERSISTENT, Capability.MULTI_PROCESS})
    faults = FAULTS
    """Faults :meth:`inject_fault` simulates (see ``localqueue.protocols.FaultInjectable``)."""
    _locked_error: type[StoreLockedError] = StoreLockedError
    _kind = "store"

    def __init__(self, config: PostgresConfig) -> None:
        config = _check_config(config)
        self._session = Session(
            config, rules=_error_rules(config, self._locked_error), kind=self._kind
        )

    @classmethod
    def from_url(cls, url: StoreURL, *, clock: Clock | None = None) -> Self:
        """Open the store a ``postgresql://`` URL names, creating its tables on first use.

        Both stores take the same options, so one URL opens either.

        Raises:
            ConfigurationError: An option is invalid, or a ``clock`` was passed.
            StoreError: The server cannot be reached.
            SchemaVersionError: The schema was written by a newer release.
        """
        return cls(_open_config(url, clock))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._session.where!r})"

    def inject_fault(self, fault: Fault) -> AbstractContextManager[None]:
        """Test hook: make PostgreSQL fail as ``fault`` says until the context exits.

        ``locked`` holds an ``EXCLUSIVE`` table lock from another session;
        ``engine_error`` adds a row trigger raising past ``fault.after`` writes.
        Both affect every handle on the schema. See
        ``localqueue.protocols.FaultInjectable``.
        """
        return self._session.inject_fault(fault)

    def close(self) -> None:
        """Close the store's connections; later calls raise ``StoreClosedError``. Idempotent."""
        self._session.close()


# -- message building ------------------------------------------------------------------


def _message(queue: str, row: Row, token: str | None = None) -> QueueMessage:
    state, available_at = row["state"], row["available_at"]
    # A damaged row (an unknown state) counts as dead until a lease moves it aside.
    effective, leased_until = effective_state(state, available_at, row["now"])
    return build_message(
        {
            "id": row["id"],
            "queue": queue,
            "state": effective,
            "payload": bytes(row["payload"]),
            "codec": row["codec"],
            "attempts": row["attempts"],
            "created_at": row["created_at"],
            "available_at": available_at,
            "priority": row["priority"],
            "leased_until": leased_until,
            "leased_by": row["leased_by"],
            "lease_token": token,
            "last_error": row["last_error"],
            "failed_at": row["failed_at"],
            "dedup_key": row["dedup_key"],
        }
    )


def _retry_record(row: Row) -> RetryRecord:
    return RetryRecord(
        key=row["key"],
        attempts=row["attempts"],
        first_attempt_at=row["first_attempt_at"],
        last_attempt_at=row["last_attempt_at"],
        exhausted=row["exhausted"],
        last_error=row["last_error"],
    )


# -- queue store -----------------------------------------------------------------------

_DAMAGED_STATE = 7
"""What ``damage_record`` writes: a state localqueue never does."""


class _Duplicate(Exception):
    """Carries the stored message of a duplicate ``dedup_key`` out of a transaction."""

    def __init__(self, message: QueueMessage) -> None:
        super().__init__(message.id)
        self.message = message


def _names_nothing(*texts: str | None) -> bool:
    """True when a text holds what PostgreSQL ``text`` cannot (NUL, a lone surrogate).

    Such a message id or lease token names nothing the store holds, so the call
    answers as for any unknown id instead of failing in the driver.
    """
    return any(text is not None and storable_text(text) != text for text in texts)


class PostgresQueueStore(_PostgresHandle):
    """A queue store in a PostgreSQL schema, shared by every process that opens the URL.

    Open it with :meth:`from_url` (or ``localqueue.open_queue_store(url)``).
    """

    _locked_error = QueueStoreLockedError
    _kind = "queue"

    def __init__(self, config: PostgresConfig) -> None:
        super().__init__(config)
        self._sql = QueueStatements(self._session)
        self._channel = self._session.tables.channel

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
        """Store one message (see :meth:`localqueue.protocols.QueueStore.put`).

        With ``max_size`` the count and the insert run in one transaction under a
        per-queue advisory lock, so the bound holds across connections. The id
        is chosen before the first try, so a retry after a lost connection finds
        the message its first try stored instead of storing it twice.
        """
        delay = validation.check_put(queue, payload, delay, priority, dedup_key)
        if max_size is not None:
            validation.check_max_size(max_size)
        params = {
            "id": new_message_id(),
            "queue": queue,
            "payload": payload,
            "codec": codec,
            "delay": delay,
            "priority": priority,
            "dedup_key": dedup_key,
            "channel": self._channel,
        }

        def work(conn: Connection) -> QueueMessage | None:
            rows = _rows(conn, self._sql.put, params)
            if not rows:  # a conflict: the dedup key, or this call's own earlier try
                rows = _rows(conn, self._sql.by_id_or_dedup_key, params)
            return _message(queue, rows[0]) if rows else None

        def bounded(conn: Connection) -> QueueMessage | None:
            with conn.transaction():
                self._reserve(conn, queue, 1, max_size or 0, params)
                return work(conn)

        while True:
            try:
                stored = self._session.run(work if max_size is None else bounded)
            except _Duplicate as dup:
                return dup.message
            # None: the duplicate (or this call's own earlier try, whose reply was
            # lost) was acked between the two statements; insert again.
            if stored is not None:
                return stored

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
        """Store several messages atomically, in one statement and one round trip.

        As with :meth:`put`, a retry after a lost connection finds the batch its
        first try stored instead of storing it twice.
        """
        items, delay = validation.check_put_many(queue, payloads, delay, priority)
        if max_size is not None:
            validation.check_max_size(max_size)
        self._session.check_open()
        if not items:
            return []
        ids = new_message_ids(len(items))
        params = {
            "ids": ids,
            "payloads": items,
            "queue": queue,
            "codec": codec,
            "delay": delay,
            "priority": priority,
            "channel": self._channel,
        }

        def work(conn: Connection) -> list[Row]:
            rows = _rows(conn, self._sql.put_many, params)
            if len(rows) < len(ids):  # an earlier try stored the batch; its reply was lost
                rows += _rows(conn, self._sql.by_ids, params)
            return rows

        def bounded(conn: Connection) -> list[Row]:
            with conn.transaction():
                stored = _rows(conn, self._sql.by_ids, params)
                if stored:
                    return stored
                self._reserve(conn, queue, len(items), max_size or 0, None)
                return _rows(conn, self._sql.put_many, params)

        rows = self._session.run(work if max_size is None else bounded)
        by_id = {row["id"]: row for row in rows}
        if len(by_id) < len(ids):
            raise StoreError(
                f"{self._session.where}: the connection was lost after the batch was stored, "
                f"and {len(ids) - len(by_id)} of its {len(ids)} messages were consumed "
                "before the retry could read them back; the batch is stored, do not put it again"
            )
        return [_message(queue, by_id[i]) for i in ids]

    def _reserve(
        self,
        conn: Connection,
        queue: str,
        needed: int,
        max_size: int,
        put: dict[str, Any] | None,
    ) -> None:
        """Inside a transaction: take the queue's capacity lock, then check for room.

        For a single ``put`` (its parameters given), raises ``_Duplicate`` for a
        stored message with its dedup key or its id (returned even when full), and
        for any call ``Full`` (rolling the transaction back) when ``needed`` does
        not fit.
        """
        params = {"schema": self._session.tables.schema_name, "queue": queue}
        conn.execute(self._sql.capacity_lock, params)
        if put is not None:
            rows = _rows(conn, self._sql.by_id_or_dedup_key, put)
            if rows:
                raise _Duplicate(_message(queue, rows[0]))
        unfinished = _scalar(conn, self._sql.unfinished, params)
        if unfinished + needed > max_size:
            raise Full(f"queue {queue!r} holds {unfinished} of at most {max_size} messages")

    def lease(
        self,
        queue: str,
        *,
        lease_timeout: float,
        leased_by: str | None = None,
        limit: int = 1,
        max_deliveries: int | None = None,
    ) -> list[QueueMessage]:
        """Lease up to ``limit`` available messages with ``FOR UPDATE SKIP LOCKED``.

        With ``max_deliveries``, the candidates already delivered that many times
        are dead-lettered by the same statement, which runs again in one
        transaction for the places they left, so up to ``limit`` others are leased.

        Retried after a lost connection: a lease whose reply was lost handed its
        fresh tokens to nobody, so its messages stay leased until the lease
        expires and are then delivered again; the retry leases others.
        """
        lease_timeout = validation.check_lease(
            queue, lease_timeout, leased_by, limit, max_deliveries
        )
        params: dict[str, Any] = {
            "queue": queue,
            "lease_timeout": lease_timeout,
            "leased_by": leased_by,
            "limit": limit,
        }
        if max_deliveries is None:
            rows = self._session.run(lambda conn: _rows(conn, self._sql.lease, params))
            self._report_damaged(queue, rows)
        else:
            params["max_deliveries"] = max_deliveries
            params["error"] = max_deliveries_error(max_deliveries)
            rows = self._session.run(lambda conn: self._lease_capped(conn, queue, params))
        rows = [row for row in rows if row["id"] is not None]
        # UPDATE ... RETURNING does not keep the subquery's order.
        rows.sort(key=lambda r: (-r["priority"], r["due"], r["seq"]))
        return [_message(queue, row, row["lease_token"]) for row in rows]

    def _lease_capped(self, conn: Connection, queue: str, params: dict[str, Any]) -> list[Row]:
        """In one transaction: lease past spent messages until ``limit`` or none are left."""
        leased: list[Row] = []
        with conn.transaction():
            while True:
                rows = _rows(
                    conn, self._sql.lease_capped, {**params, "limit": params["limit"] - len(leased)}
                )
                self._report_damaged(queue, rows)
                leased += [row for row in rows if row["id"] is not None]
                if len(leased) >= params["limit"] or not rows or not rows[0]["spent"]:
                    return leased

    @staticmethod
    def _report_damaged(queue: str, rows: list[Row]) -> None:
        for message_id in (rows[0]["damaged_ids"] if rows else None) or ():
            _log.warning(
                "queue %r: message %s has a damaged record (unknown state); "
                "moved aside as a dead letter",
                queue,
                message_id,
            )

    def wait(self, queue: str, timeout: float) -> None:
        """Block until a ``NOTIFY`` for ``queue``, the next due time, or ``timeout``.

        Also returns after ``poll_interval`` seconds, early if the listening
        connection is lost, and after ``timeout`` when every listening
        connection is taken (the caller then polls); callers re-check with
        :meth:`lease`, which reports a server that stays unreachable.
        """
        validation.check_queue_name(queue)
        timeout = validation.check_timeout(timeout)
        deadline = time.monotonic() + timeout
        pool = self._session.listen_pool()
        with self._session.errors():
            try:
                conn = pool.getconn(timeout=max(timeout, 0.05))
            except psycopg_pool.PoolTimeout:
                return
            try:
                self._listen(conn, queue, timeout, deadline)
            except psycopg.OperationalError:
                # The session was cut (server restart, pg_terminate_backend):
                # return early; the caller's next call reconnects or reports it.
                self._session.check_open()
            finally:
                pool.putconn(conn)

    def _listen(self, conn: Connection, queue: str, timeout: float, deadline: float) -> None:
        # LISTEN first, then look: a put committed after the look is notified.
        conn.execute(self._sql.listen)
        due = _scalar(conn, self._sql.next_due, {"queue": queue})
        if due is not None and due <= 0:
            return
        limit = min(timeout, self._session.config.poll_interval)
        if due is not None:
            limit = min(limit, due)
        deadline = min(deadline, time.monotonic() + limit)
        while (remaining := deadline - time.monotonic()) > 0:
            for note in conn.notifies(timeout=remaining, stop_after=1):
                if note.payload == queue:
                    return

    def ack(self, queue: str, message_id: str, *, lease_token: str | None = None) -> bool:
        """Delete a message.

        Retried after a lost connection; a retry finding the message already
        deleted by the lost try returns ``False`` (the message is gone as asked).
        """
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        if _names_nothing(message_id, lease_token):
            self._session.check_open()
            return False
        params = {"queue": queue, "id": message_id, "token": lease_token}
        return self._session.run(lambda conn: _count(conn, self._sql.ack, params)) > 0

    def ack_many(self, queue: str, leases: Sequence[tuple[str, str | None]]) -> int:
        """Delete several messages atomically."""
        validation.check_queue_name(queue)
        validation.check_leases(leases)
        self._session.check_open()
        leases = [pair for pair in leases if not _names_nothing(*pair)]
        if len(leases) == 0:
            return 0
        params = {
            "queue": queue,
            "ids": [message_id for message_id, _ in leases],
            "tokens": [token for _, token in leases],
        }
        return self._session.run(lambda conn: _count(conn, self._sql.ack_many, params))

    def release(
        self,
        queue: str,
        message_id: str,
        *,
        lease_token: str | None = None,
        delay: float = 0.0,
        error: str | None = None,
    ) -> bool:
        """Make a message ready again after ``delay``, notifying waiters."""
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        delay = validation.check_delay(delay)
        error = validation.check_error(error)
        if _names_nothing(message_id, lease_token):
            self._session.check_open()
            return False
        params = {
            "queue": queue,
            "id": message_id,
            "token": lease_token,
            "delay": delay,
            "error": error,
            "channel": self._channel,
        }
        # With a token a second run matches nothing (the first cleared it); without
        # one it could release a lease taken since, so it is not retried.
        released = self._session.run(
            lambda conn: _scalar(conn, self._sql.release, params),
            idempotent=lease_token is not None,
        )
        return bool(released)

    def extend(
        self, queue: str, message_id: str, *, lease_token: str, lease_timeout: float
    ) -> bool:
        """Move the end of a held lease to ``lease_timeout`` seconds from now."""
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        lease_timeout = validation.check_lease_timeout(lease_timeout)
        if _names_nothing(message_id, lease_token):
            self._session.check_open()
            return False
        params = {
            "queue": queue,
            "id": message_id,
            "token": lease_token,
            "lease_timeout": lease_timeout,
        }
        return self._session.run(lambda conn: _count(conn, self._sql.extend, params)) > 0

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
        if _names_nothing(message_id, lease_token):
            self._session.check_open()
            return False
        params = {"queue": queue, "id": message_id, "token": lease_token, "error": error}
        moved = self._session.run(
            lambda conn: _count(conn, self._sql.dead_letter, params),
            idempotent=lease_token is not None,
        )
        return moved > 0

    def requeue_dead(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        """Return dead letters to the ready state, notifying waiters."""
        validation.check_queue_name(queue)
        ids = None if message_ids is None else validation.check_message_ids(message_ids)
        if ids is not None:
            ids = [i for i in ids if not _names_nothing(i)]
        if ids is not None and not ids:
            self._session.check_open()
            return 0
        params = {"queue": queue, "ids": ids, "channel": self._channel}
        # A second run would report 0 for messages the first requeued.
        requeued = self._session.run(
            lambda conn: _scalar(conn, self._sql.requeue_dead, params), idempotent=False
        )
        return int(requeued or 0)

    def purge(self, queue: str, target: PurgeTarget = "ready") -> int:
        """Delete ready, dead or all messages."""
        validation.check_queue_name(queue)
        statement = self._sql.purge[validation.check_purge_target(target)]
        # A second run would not report what the first deleted.
        return self._session.run(
            lambda conn: _count(conn, statement, {"queue": queue}), idempotent=False
        )

    # -- reads -----------------------------------------------------------------

    def peek(self, queue: str) -> QueueMessage | None:
        """The next message ``lease`` would return, not leased."""
        validation.check_queue_name(queue)
        rows = self._session.run(lambda conn: _rows(conn, self._sql.peek, {"queue": queue}))
        return _message(queue, rows[0]) if rows else None

    def inspect(self, queue: str, message_id: str) -> QueueMessage | None:
        """One message by id."""
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        if _names_nothing(message_id):
            self._session.check_open()
            return None
        params = {"queue": queue, "id": message_id}
        rows = self._session.run(lambda conn: _rows(conn, self._sql.inspect, params))
        return _message(queue, rows[0]) if rows else None

    def dead_letters(self, queue: str, *, limit: int | None = None) -> list[QueueMessage]:
        """Dead letters, oldest failure first."""
        validation.check_queue_name(queue)
        if limit is not None:
            validation.check_limit(limit)
        params = {"queue": queue, "limit": limit}
        rows = self._session.run(lambda conn: _rows(conn, self._sql.dead_letters, params))
        return [_message(queue, row) for row in rows]

    def stats(self, queue: str) -> QueueStats:
        """Counts by effective state, by the server's clock."""
        validation.check_queue_name(queue)

        def work(conn: Connection) -> tuple[Any, ...] | None:
            return conn.execute(self._sql.stats, {"queue": queue}).fetchone()

        row = self._session.run(work)
        ready, delayed, inflight, dead = row or (0, 0, 0, 0)
        return QueueStats(ready=ready, delayed=delayed, inflight=inflight, dead=dead)

    def queues(self) -> list[str]:
        """Queues holding at least one message, sorted by code point."""

        def work(conn: Connection) -> list[str]:
            return [str(row[0]) for row in conn.execute(self._sql.queues)]

        return sorted(self._session.run(work))

    def check_integrity(self) -> list[str]:
        """Rows PostgreSQL keeps but localqueue cannot read (a state it never writes).

        PostgreSQL checks its own pages; this finds what a bad manual edit
        leaves. One line per damaged row, naming its id; ``[]`` when healthy.
        """
        rows = self._session.run(lambda conn: conn.execute(self._sql.find_damaged).fetchall())
        return [
            f"queue {queue!r}: message {message_id}: damaged record: unknown state {state}"
            for message_id, queue, state in rows
        ]

    def repair(self) -> list[str]:
        """Move every damaged row aside as a dead letter saying so, in one statement.

        Intact messages are untouched; a second call returns ``[]``.
        """
        rows = self._session.run(lambda conn: conn.execute(self._sql.repair).fetchall())
        done = [
            f"queue {queue!r}: message {message_id}: damaged record (unknown state {state}) "
            "moved aside as a dead letter"
            for message_id, queue, state in rows
        ]
        for line in done:
            _log.warning("%s", line)
        return done

    damages: frozenset[Damage] = frozenset({"record"})
    """``record`` only: PostgreSQL's indexes are its own, so none can dangle."""

    def damage_record(self, queue: str, message_id: str, how: Damage) -> None:
        """Test hook: give one message's row a state localqueue never writes.

        Raises:
            ConfigurationError: ``how`` is not ``"record"``.
            MessageNotFoundError: No such message in ``queue``.
        """
        if how not in self.damages:
            raise ConfigurationError(f"PostgreSQL stores cannot plant {how!r} damage")
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        params = {"queue": queue, "id": message_id, "state": _DAMAGED_STATE}
        if not self._session.run(lambda conn: _count(conn, self._sql.damage, params)):
            raise MessageNotFoundError(queue, message_id)

    def kill_connections(self) -> int:
        """Test hook: have the server end every session using this schema.

        Sessions of the URL's ``application_name`` whose last statement named
        the schema, from any process, end as after ``pg_terminate_backend``.
        See ``localqueue.protocols.ConnectionKillable``.
        """
        return self._session.kill_connections()


# -- attempt store ---------------------------------------------------------------------


class PostgresAttemptStore(_PostgresHandle):
    """Retry budgets in a PostgreSQL schema, shared by every process that opens the URL."""

    _locked_error = AttemptStoreLockedError
    _kind = "attempt"

    def __init__(self, config: PostgresConfig) -> None:
        super().__init__(config)
        self._sql = AttemptStatements(self._session)

    def _record(
        self, query: sql.Composed, params: dict[str, Any], *, idempotent: bool = True
    ) -> RetryRecord | None:
        rows = self._session.run(lambda conn: _rows(conn, query, params), idempotent=idempotent)
        return _retry_record(rows[0]) if rows else None

    def get_record(self, key: str) -> RetryRecord | None:
        """The record of ``key``, if any."""
        validation.check_retry_key(key)
        return self._record(self._sql.get, {"key": key})

    def begin_attempt(self, key: str) -> RetryRecord:
        """Count one more attempt for ``key`` in one upsert."""
        validation.check_retry_key(key)
        # Not retried after a lost connection: a second run would count twice.
        record = self._record(self._sql.begin, {"key": key}, idempotent=False)
        if record is None:  # pragma: no cover - an upsert always returns its row
            raise AssertionError("INSERT ... RETURNING returned no row")
        return record

    def record_failure(
        self, key: str, error: str | None, *, exhausted: bool = False
    ) -> RetryRecord | None:
        """Record the latest failure of ``key``."""
        validation.check_retry_key(key)
        error = validation.check_error(error)
        return self._record(self._sql.failure, {"key": key, "error": error, "exhausted": exhausted})

    def reset(self, key: str) -> bool:
        """Forget ``key``."""
        validation.check_retry_key(key)
        return self._session.run(lambda conn: _count(conn, self._sql.reset, {"key": key})) > 0


# -- backend ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresBackend(ClassBackend):
    """The PostgreSQL backend: namespaces are schemas (``NamespacedBackend``)."""

    def namespace(self, url: StoreURL, name: str) -> StoreURL:
        """``url`` with ``schema=<its schema>_<name>``, a schema nobody else uses."""
        schema = PostgresConfig.from_url(url).schema
        # Keep within PostgreSQL's 63-byte identifiers; the name makes it unique.
        suffix = f"_{name}"
        base = schema.encode()[: 63 - len(suffix.encode())].decode(errors="ignore")
        return replace(url, query={**url.query, "schema": base + suffix})

    def drop_namespace(self, url: StoreURL) -> None:
        """Drop the URL's schema and every table in it."""
        config = PostgresConfig.from_url(url)
        with psycopg.connect(**config.connect_kwargs()) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(config.schema))
            )


backend = PostgresBackend(PostgresQueueStore, PostgresAttemptStore)
"""What the ``postgresql`` and ``postgres`` schemes resolve to."""
