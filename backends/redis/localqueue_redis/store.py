"""Redis stores: a queue store and an attempt store over one Redis server.

URL: ``redis://[[user]:password@]host[:port][/db][?option=value&...]``, or
``rediss://`` for TLS; the options are declared in :data:`OPTIONS`.

Every state change is one Lua script, so it is atomic on the server; the key
layout is drawn in :mod:`localqueue_redis._scripts`. Time comes from the
server's ``TIME`` unless a clock is injected, so hosts whose clocks disagree
still agree on when a delay or a lease ends.

Durability is the server's: with ``appendonly yes`` and ``appendfsync always``
a returned ``put`` survives a crash of the server; ``everysec`` may lose the
last second; without AOF, whatever happened since the last RDB snapshot.

The client underneath (connection pools, retries, TLS) is engine plumbing and
lives in ``_client``, the scripts and their loading in ``_scripts``; this
module is the queue and attempt semantics over them.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Self

import redis

from localqueue import validation
from localqueue.errors import (
    AttemptStoreLockedError,
    ConfigurationError,
    Full,
    MessageNotFoundError,
    QueueStoreLockedError,
    StoreClosedError,
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
    new_lease_token,
    new_message_ids,
    ready_message,
    translating,
)
from localqueue.protocols import Clock, Damage, PurgeTarget
from localqueue.registry import ClassBackend
from localqueue.urls import Option, StoreURL
from localqueue_redis._client import connect, describe, kill_named
from localqueue_redis._scripts import (
    ATTEMPT_SCRIPTS,
    QUEUE_SCRIPTS,
    error_arg,
    register,
    token_arg,
)

__all__ = ["OPTIONS", "RedisAttemptStore", "RedisBackend", "RedisQueueStore", "backend"]

DEFAULT_PREFIX = "localqueue"

logger = logging.getLogger(__name__)

_CAPABILITIES = frozenset(
    {Capability.PERSISTENT, Capability.MULTI_PROCESS, Capability.INJECTABLE_CLOCK}
)
# Shortest BLPOP wait: Redis counts its timeout in milliseconds and reads 0 as "forever".
_MIN_BLOCK = 0.01


# -- options ---------------------------------------------------------------------------

_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _parse_prefix(text: str) -> str:
    # No ':' so that no prefix's keys can be mistaken for another prefix's.
    if _PREFIX_PATTERN.fullmatch(text) is None:
        raise ValueError("use 1-64 letters, digits, '_', '.' or '-'")
    return text


OPTIONS: dict[str, Option[Any]] = {
    "prefix": Option(
        _parse_prefix,
        DEFAULT_PREFIX,
        "namespace of every key this store writes, so applications can share a server",
    ),
    "socket_timeout": Option.number(
        10.0, "seconds to wait for a reply before the call fails", minimum=0.1
    ),
    "connect_timeout": Option.number(5.0, "seconds to wait for a connection", minimum=0.1),
    "retries": Option.integer(
        5, "reconnect attempts after a dropped connection or a timeout", minimum=0
    ),
    "max_connections": Option.integer(
        64, "largest number of connections one store keeps open", minimum=1
    ),
    "ssl_cert_reqs": Option.choice(
        "required", ("required", "optional", "none"), "rediss://: server certificate check"
    ),
    "ssl_ca_certs": Option.text("", "rediss://: CA bundle file to verify the server against"),
}
"""The query-string options of ``redis://`` and ``rediss://`` URLs."""

# The constructors check their arguments with these same options, so a value is
# accepted as an argument exactly when it would be as URL text; these say why not.
_BAD_ARGUMENT = {
    "prefix": "invalid Redis key prefix {value!r}: use 1-64 letters, digits, '_', '.' or '-'",
}


def _check_argument(name: str, value: object) -> None:
    check_argument(OPTIONS[name], value, _BAD_ARGUMENT[name])


def _check_redis_url(url: StoreURL) -> dict[str, Any]:
    """The URL's options, checked.

    Raises:
        ConfigurationError: The scheme, the database number or an option is invalid.
    """
    if url.scheme not in ("redis", "rediss"):
        raise ConfigurationError(f"not a Redis URL: {url.redacted()!r}")
    options = url.options(OPTIONS)
    if url.path and not url.path.isdigit():
        raise ConfigurationError(f"the path of a Redis URL is a database number, got {url.path!r}")
    return options


# -- error translation -----------------------------------------------------------------


def _error_rules(where: str, locked: type[StoreLockedError]) -> list[ErrorRule]:
    """How redis-py's exceptions map onto localqueue's tree.

    Args:
        where: The store's redacted URL, named in the messages (never a password).
        locked: The error for a server that stays busy or silent past the timeout.
    """

    def unreachable(e: BaseException) -> StoreError:
        if "No connection available" in str(e):  # the blocking pool's wait timed out
            return locked(f"{where}: every connection stayed busy ({e})")
        return StoreError(f"{where}: cannot reach Redis ({e})")

    def refused(e: BaseException) -> StoreError:
        text = str(e)
        if text.startswith("BUSY"):
            return locked(f"{where}: Redis is busy running a script ({e})")
        if "WRONGTYPE" in text:
            return StoreCorruptedError(
                f"{where}: a key under this prefix holds data localqueue did not write ({e})"
            )
        return StoreError(f"{where}: Redis error ({e})")

    return [
        (redis.TimeoutError, lambda e: locked(f"{where}: no reply from Redis in time ({e})")),
        (
            redis.BusyLoadingError,
            lambda e: locked(f"{where}: Redis is still loading its data ({e})"),
        ),
        (
            redis.AuthenticationError,
            lambda e: StoreError(f"{where}: Redis refused the credentials ({e})"),
        ),
        (redis.ConnectionError, unreachable),
        (redis.ResponseError, refused),
        (redis.RedisError, lambda e: StoreError(f"{where}: Redis error ({e})")),
    ]


# -- engine handle ---------------------------------------------------------------------


class _RedisHandle(ClosingContext):
    """What both stores share: the client, the clock, the scripts and error mapping."""

    _locked_error: type[StoreLockedError] = StoreLockedError
    _kind = "store"

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        clock: Clock | None,
        scripts: dict[str, str],
    ) -> None:
        _check_argument("prefix", prefix)
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ConfigurationError("the Redis client must not use decode_responses=True")
        self._redis = client
        self._prefix = prefix
        self._clock = clock
        self._owns_client = False
        self._where = describe(client)
        self._rules = _error_rules(self._where, self._locked_error)
        self._closed = False
        self._close_lock = threading.Lock()
        timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
        # A blocking read must end before the socket timeout would call it a failure.
        self._block_slice = 60.0 if timeout is None else max(_MIN_BLOCK, float(timeout) / 2)
        self._scripts = register(client, scripts)

    @classmethod
    def _connect(cls, url: StoreURL) -> tuple[redis.Redis, dict[str, Any]]:
        """A new client for the store ``url`` names, and the URL's options."""
        options = _check_redis_url(url)
        return connect(url, options), options

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._where!r}, prefix={self._prefix!r})"

    def _now(self) -> str:
        # '' tells the script to read the server's clock.
        return "" if self._clock is None else repr(float(self._clock()))

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"the Redis {self._kind} ({self._where}) is closed")

    def _run(self, name: str, *args: str | bytes | int | float) -> Any:
        self._check_open()
        with translating(self._rules):
            return self._scripts[name](args=[self._now(), *args])

    def _call(self, command: str, *args: str | bytes | int | float) -> Any:
        self._check_open()
        with translating(self._rules):
            return self._redis.execute_command(command, *args)  # type: ignore[no-untyped-call]

    def _adopt(self, url: StoreURL) -> Self:
        """Take ownership of a client built from ``url`` and check the server answers."""
        self._owns_client = True
        self._where = url.redacted()
        self._rules = _error_rules(self._where, self._locked_error)
        try:
            self.ping()
        except BaseException:
            self.close()
            raise
        return self

    def ping(self) -> None:
        """Check that the server answers.

        Raises:
            StoreError: It does not, or it refuses the credentials.
        """
        self._call("PING")

    def close(self) -> None:
        """Release the connections; later calls raise ``StoreClosedError``. Idempotent.

        A client passed to the constructor is left open for its owner.
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        if self._owns_client:
            self._redis.close()
            # A client given a pool leaves the pool open; this one is ours too.
            self._redis.connection_pool.disconnect()


# -- message building ------------------------------------------------------------------

_STORED = {b"r": StoredState.READY, b"i": StoredState.INFLIGHT, b"d": StoredState.DEAD}
"""The state codes the scripts write, as the kit's :class:`StoredState`."""


def _fields(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _message(
    where: str, queue: str, flat: Sequence[bytes], now: float, *, with_token: bool = False
) -> QueueMessage:
    """The :class:`QueueMessage` a message hash (as a flat reply) stands for at ``now``."""
    h = _fields(flat)
    try:
        available_at = float(h[b"aa"])
        stored = _STORED.get(h[b"st"], StoredState.READY)
        state, leased_until = effective_state(stored, available_at, now)
        failed_at = h.get(b"fa")
        return build_message(
            {
                "id": h[b"id"].decode(),
                "queue": queue,
                "state": state,
                "payload": h[b"p"],
                "codec": h[b"c"].decode(),
                "attempts": int(h[b"a"]),
                "created_at": float(h[b"ca"]),
                "available_at": available_at,
                "priority": int(h[b"pr"]),
                "leased_until": leased_until,
                "leased_by": _text(h.get(b"lb")),
                "lease_token": _text(h.get(b"tok")) if with_token else None,
                "last_error": _text(h.get(b"le")),
                "failed_at": None if failed_at is None else float(failed_at),
                "dedup_key": _text(h.get(b"dk")),
            }
        )
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise StoreCorruptedError(
            f"{where}: queue {queue!r} holds a malformed message record "
            f"{h.get(b'id', b'?')!r}: {exc!r}"
        ) from exc


def _retry_record(where: str, key: str, flat: Sequence[bytes]) -> RetryRecord:
    """The :class:`RetryRecord` a retry hash (as a flat reply) holds."""
    h = _fields(flat)
    try:
        return RetryRecord(
            key=key,
            attempts=int(h[b"n"]),
            first_attempt_at=float(h[b"first"]),
            last_attempt_at=float(h[b"last"]),
            exhausted=h.get(b"x") == b"1",
            last_error=_text(h.get(b"err")),
        )
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise StoreCorruptedError(
            f"{where}: the retry record of {key!r} is malformed: {exc!r}"
        ) from exc


# -- queue store -----------------------------------------------------------------------

# How many record ids one integrity-check script call examines, so a large
# store is checked in many short scripts rather than one long one.
_CHECK_BATCH = 500
# A message id is 32 hex digits, so neither ':' nor '}' can end up in it.
_RECORD_KEY = re.compile(r"(.*)\}:m:([0-9a-f]{32})")
_INDEX_SUFFIXES = ("}:ready", "}:delayed", "}:leased", "}:dead", "}:dedup", "}:notify")


class RedisQueueStore(_RedisHandle):
    """A queue store in Redis, shared by every process that opens the same URL.

    Args:
        client: A redis-py client (``decode_responses`` must be off). It stays
            open after :meth:`close`; stores opened from a URL own theirs.
        prefix: Namespace of every key; letters, digits, ``_ . -``.
        clock: Time source for tests; by default the Redis server's clock.
    """

    capabilities = _CAPABILITIES
    damages: frozenset[Damage] = frozenset({"record", "missing"})
    """Damage :meth:`damage_record` can plant (the ``DamageInjectable`` test hook)."""
    _locked_error = QueueStoreLockedError
    _kind = "queue store"

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(client, prefix=prefix, clock=clock, scripts=QUEUE_SCRIPTS)
        self._global = f"{prefix}:"

    @classmethod
    def from_url(cls, url: StoreURL, *, clock: Clock | None = None) -> Self:
        """Open ``redis://[:password@]host:port/db?prefix=...`` (or ``rediss://``).

        Raises:
            ConfigurationError: An option or the database number is invalid.
            StoreError: The server does not answer.
        """
        client, options = cls._connect(url)
        store = cls(client, prefix=options["prefix"], clock=clock)
        return store._adopt(url)

    # -- helpers -------------------------------------------------------------------

    def _qb(self, queue: str) -> str:
        return f"{self._prefix}:q:{{{queue}}}:"

    def _report(self, queue: str, events: Sequence[bytes]) -> None:
        """Log the damage a script met: (id, what was wrong) pairs."""
        for raw_id, raw_reason in zip(events[::2], events[1::2], strict=True):
            message_id = raw_id.decode(errors="backslashreplace")
            reason = raw_reason.decode(errors="backslashreplace")
            if reason == "missing":
                logger.warning(
                    "%s: queue %r: message %s has index entries but no record; dropped the entries",
                    self._where,
                    queue,
                    message_id,
                )
            else:
                logger.warning(
                    "%s: queue %r: message %s moved to the dead letters: %s",
                    self._where,
                    queue,
                    message_id,
                    reason,
                )

    def _put(
        self,
        queue: str,
        payloads: list[bytes],
        codec: str,
        delay: float,
        priority: int,
        dedup_key: str | None,
        max_size: int | None = None,
    ) -> list[QueueMessage]:
        ids = new_message_ids(len(payloads))
        reply = self._run(
            "put",
            self._qb(queue),
            self._global,
            queue,
            codec,
            repr(delay),
            str(priority),
            dedup_key or "",
            len(payloads),
            *ids,
            *payloads,
            "" if max_size is None else str(max_size),
        )
        if len(reply) > 2:
            raise Full(f"queue {queue!r} holds {reply[2]} of at most {max_size} messages")
        created_raw, existing = reply
        created_at = float(created_raw)
        if existing:
            return [_message(self._where, queue, existing, created_at)]
        available_at = created_at + delay
        return [
            ready_message(
                message_id, queue, payload, codec, created_at, available_at, priority, dedup_key
            )
            for message_id, payload in zip(ids, payloads, strict=True)
        ]

    # -- QueueStore ----------------------------------------------------------------

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
        return self._put(queue, [payload], codec, delay, priority, dedup_key, max_size)[0]

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
        """Store several messages atomically, in one script call."""
        items, delay = validation.check_put_many(queue, payloads, delay, priority)
        if max_size is not None:
            validation.check_max_size(max_size)
        if not items:
            self._check_open()
            return []
        return self._put(queue, items, codec, delay, priority, None, max_size)

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
        reply = self._run(
            "lease",
            self._qb(queue),
            repr(lease_timeout),
            leased_by or "",
            limit,
            new_lease_token(),
            self._global,
            queue,
            "" if max_deliveries is None else max_deliveries,
            "" if max_deliveries is None else max_deliveries_error(max_deliveries),
        )
        now = float(reply[0])
        self._report(queue, reply[1])
        return [_message(self._where, queue, flat, now, with_token=True) for flat in reply[2:]]

    def wait(self, queue: str, timeout: float) -> None:
        """Block on the queue's wake-up list (``BLPOP``), never longer than the next due time."""
        validation.check_queue_name(queue)
        timeout = validation.check_timeout(timeout)
        due = float(self._run("next_due", self._qb(queue)))
        if due == 0.0:
            return
        block = timeout if due < 0 else min(timeout, due)
        if block <= 0:
            return
        key = self._qb(queue) + "notify"
        end = time.monotonic() + max(block, _MIN_BLOCK)
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            chunk = round(max(_MIN_BLOCK, min(remaining, self._block_slice)), 3)
            if self._call("BLPOP", key, chunk) is not None:
                return

    def ack(self, queue: str, message_id: str, *, lease_token: str | None = None) -> bool:
        """Delete a message (through :meth:`ack_many`, which checks the arguments).

        redis-py reruns the script after a lost connection; a rerun finding the
        message already deleted by the lost try returns ``False`` (the message
        is gone as asked).
        """
        return bool(self.ack_many(queue, [(message_id, lease_token)]))

    def ack_many(self, queue: str, leases: Sequence[tuple[str, str | None]]) -> int:
        """Delete several messages atomically, in one script call."""
        validation.check_queue_name(queue)
        validation.check_leases(leases)
        if len(leases) == 0:
            self._check_open()
            return 0
        args: list[str] = []
        for message_id, token in leases:
            args += [message_id, token_arg(token)]
        return int(self._run("ack", self._qb(queue), self._global, queue, *args))

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
        done, events = self._run(
            "release",
            self._qb(queue),
            message_id,
            token_arg(lease_token),
            repr(delay),
            error_arg(error),
        )
        self._report(queue, events)
        return bool(done)

    def extend(
        self, queue: str, message_id: str, *, lease_token: str, lease_timeout: float
    ) -> bool:
        """Move the end of a held lease to ``lease_timeout`` seconds from now."""
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        lease_timeout = validation.check_lease_timeout(lease_timeout)
        reply = self._run("extend", self._qb(queue), message_id, lease_token, repr(lease_timeout))
        return bool(reply)

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
        done, events = self._run(
            "dead_letter", self._qb(queue), message_id, token_arg(lease_token), error_arg(error)
        )
        self._report(queue, events)
        return bool(done)

    def requeue_dead(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        """Return dead letters to the ready state."""
        validation.check_queue_name(queue)
        ids: list[str] = []
        if message_ids is not None:
            ids = list(dict.fromkeys(validation.check_message_ids(message_ids)))
            if not ids:
                self._check_open()
                return 0
        count, events = self._run("requeue_dead", self._qb(queue), *ids)
        self._report(queue, events)
        return int(count)

    def purge(self, queue: str, target: PurgeTarget = "ready") -> int:
        """Delete ready, dead or all messages."""
        validation.check_queue_name(queue)
        validation.check_purge_target(target)
        return int(self._run("purge", self._qb(queue), self._global, queue, target))

    def peek(self, queue: str) -> QueueMessage | None:
        """The next message ``lease`` would return, not leased."""
        validation.check_queue_name(queue)
        now, flat, events = self._run("peek", self._qb(queue), self._global, queue)
        self._report(queue, events)
        return _message(self._where, queue, flat, float(now)) if flat else None

    def inspect(self, queue: str, message_id: str) -> QueueMessage | None:
        """One message by id."""
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        now, flat, events = self._run("inspect", self._qb(queue), message_id)
        self._report(queue, events)
        return _message(self._where, queue, flat, float(now)) if flat else None

    def dead_letters(self, queue: str, *, limit: int | None = None) -> list[QueueMessage]:
        """Dead letters, oldest failure first."""
        validation.check_queue_name(queue)
        if limit is not None:
            validation.check_limit(limit)
        reply = self._run(
            "dead_letters",
            self._qb(queue),
            -1 if limit is None else limit - 1,
            self._global,
            queue,
        )
        now = float(reply[0])
        self._report(queue, reply[1])
        return [_message(self._where, queue, flat, now) for flat in reply[2:]]

    def stats(self, queue: str) -> QueueStats:
        """Counts by effective state."""
        validation.check_queue_name(queue)
        ready, delayed, inflight, dead = self._run("stats", self._qb(queue))
        return QueueStats(
            ready=int(ready), delayed=int(delayed), inflight=int(inflight), dead=int(dead)
        )

    def queues(self) -> list[str]:
        """Queues holding at least one message."""
        names = self._call("SMEMBERS", self._global + "queues")
        return sorted(name.decode() for name in names)

    # -- integrity -----------------------------------------------------------------

    def _records_by_queue(self) -> dict[str, list[str]]:
        """Every queue under the prefix (by ``SCAN``), with the ids of its record hashes."""
        found: dict[str, list[str]] = {
            name.decode(): [] for name in self._call("SMEMBERS", self._global + "queues")
        }
        head = f"{self._prefix}:q:{{"
        cursor: int | bytes = 0
        while True:
            cursor, keys = self._call("SCAN", cursor, "MATCH", head + "*", "COUNT", 1000)
            for raw in keys:
                name = raw.decode(errors="surrogateescape")[len(head) :]
                match = _RECORD_KEY.fullmatch(name)
                if match is not None:
                    found.setdefault(match[1], []).append(match[2])
                    continue
                for suffix in _INDEX_SUFFIXES:
                    if name.endswith(suffix):
                        found.setdefault(name[: -len(suffix)], [])
                        break
            if int(cursor) == 0:
                return found

    def _audit(self, indexes: str, records: str, *, mend: bool) -> list[str]:
        """Run a pair of per-queue scripts over every queue; their lines, labelled."""
        lines: list[str] = []
        for queue, ids in sorted(self._records_by_queue().items()):
            qb = self._qb(queue)
            # Mending scripts may add or forget the queue's name, so they need both.
            args = [self._global, queue] if mend else []
            found = list(self._run(indexes, qb, *args))
            for start in range(0, len(ids), _CHECK_BATCH):
                found += self._run(records, qb, *args, *ids[start : start + _CHECK_BATCH])
            lines += [
                f"{self._where}: queue {queue!r}: {line.decode(errors='backslashreplace')}"
                for line in found
            ]
        return lines

    def check_integrity(self) -> list[str]:
        """Audit every queue under this prefix without changing anything.

        ``SCAN`` walks the prefix's keys; short read-only scripts then check that
        every index entry has its record and every record is readable and
        indexed. Each script is atomic, so concurrent work is never reported as
        damage.

        Returns:
            One line per problem, naming the queue and the message id; ``[]``
            when the store is healthy.
        """
        return self._audit("check_indexes", "check_records", mend=False)

    def repair(self) -> list[str]:
        """Mend what :meth:`check_integrity` finds, in short atomic scripts.

        Index entries whose record is gone are dropped; damaged records become
        dead letters whose ``last_error`` says what was wrong; records in no
        index are indexed again by their state. Intact messages are unchanged.

        Returns:
            One line per repair, naming the queue and the message id; ``[]``
            when nothing needed it.
        """
        lines = self._audit("repair_indexes", "repair_records", mend=True)
        for line in lines:
            logger.warning("repaired: %s", line)
        return lines

    def damage_record(self, queue: str, message_id: str, how: Damage) -> None:
        """Damage one message's hash on purpose (the ``DamageInjectable`` test hook).

        ``"record"`` writes values no reader accepts into its priority, created-at
        and attempts fields; ``"missing"`` deletes the hash and keeps its index
        entries. Never called by localqueue itself.

        Raises:
            ConfigurationError: ``how`` is not in :attr:`damages`.
            MessageNotFoundError: The queue holds no such message.
        """
        if how not in self.damages:
            raise ConfigurationError(
                f"unknown damage {how!r}; this store plants {sorted(self.damages)}"
            )
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        key = self._qb(queue) + "m:" + message_id
        if not self._call("EXISTS", key):
            raise MessageNotFoundError(queue, message_id)
        if how == "record":
            self._call("HSET", key, "pr", "banana", "ca", b"\xff\xfe-garbage", "a", "-x")
        else:
            self._call("DEL", key)

    def kill_connections(self) -> int:
        """Have Redis close every client connection of this prefix (``ConnectionKillable``).

        Stores opened from a URL name their connections ``localqueue:PREFIX``;
        every such connection, from any process, is killed with ``CLIENT KILL``,
        over a connection of the hook's own that is closed afterwards. A test
        hook for the connection-kill campaign; never called by localqueue itself.
        """
        self._check_open()
        return kill_named(self._redis, f"localqueue:{self._prefix}".encode(), self._rules)


# -- attempt store ---------------------------------------------------------------------


class RedisAttemptStore(_RedisHandle):
    """An attempt store in Redis: one hash per retry key.

    Args:
        client: A redis-py client (``decode_responses`` must be off). It stays
            open after :meth:`close`; stores opened from a URL own theirs.
        prefix: Namespace of every key; letters, digits, ``_ . -``.
        clock: Time source for tests; by default the Redis server's clock.
    """

    capabilities = _CAPABILITIES
    _locked_error = AttemptStoreLockedError
    _kind = "attempt store"

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(client, prefix=prefix, clock=clock, scripts=ATTEMPT_SCRIPTS)

    @classmethod
    def from_url(cls, url: StoreURL, *, clock: Clock | None = None) -> Self:
        """Open ``redis://[:password@]host:port/db?prefix=...`` (or ``rediss://``).

        Raises:
            ConfigurationError: An option or the database number is invalid.
            StoreError: The server does not answer.
        """
        client, options = cls._connect(url)
        return cls(client, prefix=options["prefix"], clock=clock)._adopt(url)

    def _key(self, key: str) -> str:
        return f"{self._prefix}:attempt:{key}"

    def get_record(self, key: str) -> RetryRecord | None:
        """The record of ``key``, if any."""
        validation.check_retry_key(key)
        flat = self._call("HGETALL", self._key(key))
        # redis-py turns HGETALL into a dict; scripts return the flat list.
        items = [part for pair in flat.items() for part in pair] if isinstance(flat, dict) else flat
        return _retry_record(self._where, key, items) if items else None

    def begin_attempt(self, key: str) -> RetryRecord:
        """Count one more attempt for ``key``, atomically."""
        validation.check_retry_key(key)
        return _retry_record(self._where, key, self._run("begin_attempt", self._key(key)))

    def record_failure(
        self, key: str, error: str | None, *, exhausted: bool = False
    ) -> RetryRecord | None:
        """Record the latest failure of ``key``."""
        validation.check_retry_key(key)
        error = validation.check_error(error)
        flat = self._run(
            "record_failure", self._key(key), error_arg(error), "1" if exhausted else "0"
        )
        return _retry_record(self._where, key, flat) if flat else None

    def reset(self, key: str) -> bool:
        """Forget ``key``."""
        validation.check_retry_key(key)
        return bool(self._call("DEL", self._key(key)))


# -- backend ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisBackend(ClassBackend):
    """The Redis backend: namespaces are key prefixes (``NamespacedBackend``)."""

    def namespace(self, url: StoreURL, name: str) -> StoreURL:
        """``url`` with ``prefix=<its prefix>-<name>``, a prefix nobody else uses."""
        prefix = _check_redis_url(url)["prefix"]
        suffix = f"-{name}"
        return replace(url, query={**url.query, "prefix": prefix[: 64 - len(suffix)] + suffix})

    def drop_namespace(self, url: StoreURL) -> None:
        """Delete every key under the URL's prefix."""
        options = _check_redis_url(url)
        client = connect(url, options)
        try:
            # Prefixes hold no ':', so this pattern matches this prefix's keys only.
            keys = list(client.scan_iter(match=f"{options['prefix']}:*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
        finally:
            client.close()
            # The client was given its pool, so close() leaves the pool's sockets open.
            client.connection_pool.disconnect()


backend = RedisBackend(RedisQueueStore, RedisAttemptStore)
"""What the ``redis`` and ``rediss`` schemes resolve to."""
