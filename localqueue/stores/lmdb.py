"""LMDB stores: memory-mapped B+trees for high-rate local queues.

URL: ``lmdb:///relative/dir`` or ``lmdb:////absolute/dir`` (the directory is
created if missing). Options: ``durability`` (``sync`` or
``nosync``), ``map_size`` (bytes), ``max_readers`` and ``disk_reserve``
(bytes). See ``docs/stores/lmdb.md``.

Layout: one LMDB environment per directory, holding named databases:

* ``messages``: message id -> record (a msgpack list, see ``_F_*``);
* ``ready``: the delivery index of ready and leased messages, keyed so that a
  queue's keys sort in delivery order: ``queue NUL ~priority time seq``, where
  ``time`` is ``available_at`` (or, while leased, the lease deadline, so an
  expired lease becomes available through the same index);
* ``dead``: dead letters, ``queue NUL failed_at seq`` -> id;
* ``dedup``: ``queue NUL hash(dedup key)`` -> id;
* ``retry``: the attempt store's records;
* ``meta``: the schema version and the put sequence counter.

Every operation is one LMDB transaction, so it is atomic and, with
``durability=sync``, durable when it returns. LMDB serialises writers with a
process-shared mutex: writers queue instead of failing, so there is no busy
timeout to configure. An environment may only be opened once per process, so
handles on the same directory share one, and nothing opened before a
``fork()`` is usable in the child.

The environment underneath (sharing it per directory, fork safety, map growth,
the disk reserve) is engine plumbing and lives in ``_lmdb_env``; this module
is the queue and attempt semantics over it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Self, TypeAlias, TypeVar, cast

import lmdb
import msgpack

from localqueue import validation
from localqueue.errors import (
    AttemptStoreLockedError,
    ConfigurationError,
    Full,
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
    new_message_id,
    new_message_ids,
    next_attempt,
    ready_message,
    translating,
    with_failure,
)
from localqueue.protocols import Clock, Damage, Fault, FaultKind, PurgeTarget
from localqueue.registry import PathBackend
from localqueue.stores._lmdb_env import (
    SCHEMA_VERSION,
    Environment,
    FaultyTxn,
    Txn,
    acquire,
    release,
)
from localqueue.urls import Option, StoreURL
from localqueue.validation import MAX_PRIORITY

__all__ = [
    "DAMAGED_ERROR",
    "OPTIONS",
    "ORPHAN_QUEUE",
    "SCHEMA_VERSION",
    "LMDBAttemptStore",
    "LMDBQueueStore",
    "backend",
]

DEFAULT_MAP_SIZE = 1 << 30
"""1 GiB: the file is sparse, so this reserves address space, not disk."""

DEFAULT_DISK_RESERVE = 4 << 20
"""4 MiB of ``data.mdb`` kept allocated past its last page, for drains on a full disk.

Capped at an eighth of the filesystem, so that a small one still takes messages.
"""

logger = logging.getLogger(__name__)

_POLL_INTERVAL = 0.005  # cross-process wake-up latency bound of wait()

T = TypeVar("T")
Record = list[Any]


# -- options ---------------------------------------------------------------------------

OPTIONS: dict[str, Option[Any]] = {
    "durability": Option.choice(
        "sync",
        ("sync", "nosync"),
        "sync: flushed to disk on every commit; nosync: survives a process crash, not a power loss",
    ),
    "map_size": Option.integer(
        DEFAULT_MAP_SIZE, "initial map size in bytes; grows when full", minimum=1 << 20
    ),
    "max_readers": Option.integer(
        126, "reader slots shared by every process (set by the first opener)", minimum=1
    ),
    "disk_reserve": Option.integer(
        DEFAULT_DISK_RESERVE,
        "bytes of disk kept allocated past the data so consumers can drain a full disk",
        minimum=0,
    ),
}
"""The query-string options of ``lmdb://`` URLs."""

# The constructors check their arguments with these same options, so a value is
# accepted as an argument exactly when it would be as URL text; these say why not.
_BAD_ARGUMENT = {
    "durability": "durability must be 'sync' or 'nosync', not {value!r}",
    "map_size": "map_size must be an int of at least 1 MiB",
    "max_readers": "max_readers must be a positive int",
    "disk_reserve": "disk_reserve must be an int of at least 0",
}


def _check_argument(name: str, value: object) -> None:
    check_argument(OPTIONS[name], value, _BAD_ARGUMENT[name])


def _check_lmdb_url(url: StoreURL) -> dict[str, Any]:
    if url.host:
        raise ConfigurationError(
            "lmdb URLs take no host: use lmdb:///relative/dir or lmdb:////absolute/dir"
        )
    if not url.path:
        raise ConfigurationError(
            "an lmdb URL needs a directory: lmdb:///relative/dir or lmdb:////absolute/dir"
        )
    return url.options(OPTIONS)


# -- error translation -----------------------------------------------------------------

_LOCKED = (lmdb.LockError, lmdb.ReadersFullError, lmdb.BadRslotError)
_CORRUPT = (
    lmdb.CorruptedError,
    lmdb.InvalidError,
    lmdb.PageNotFoundError,
    lmdb.VersionMismatchError,
    lmdb.PanicError,
    lmdb.IncompatibleError,
)


def _error_rules(locked: type[StoreLockedError], path: str) -> list[ErrorRule]:
    """How py-lmdb's exceptions on the store at ``path`` map onto localqueue's tree."""
    where = f"LMDB store {path!r}"
    return [
        (_LOCKED, lambda e: locked(f"{where} is locked or out of reader slots: {e}")),
        (_CORRUPT, lambda e: StoreCorruptedError(f"{where} is damaged or not LMDB: {e}")),
        (
            lmdb.MapFullError,
            lambda e: StoreError(
                f"{where} is full and could not grow its map: {e}; "
                "raise the map_size option or free disk space"
            ),
        ),
        ((lmdb.Error, OSError), lambda e: StoreError(f"{where}: {type(e).__name__}: {e}")),
    ]


def _disk_full(exc: BaseException) -> bool:
    """Whether a StoreError came from a write the disk had no room for."""
    cause = exc.__cause__
    # LMDB reports a short page write as EIO, a failed one as ENOSPC (DiskError).
    return isinstance(cause, lmdb.DiskError) or (
        isinstance(cause, lmdb.Error) and "Input/output error" in str(cause)
    )


# -- engine handle ---------------------------------------------------------------------

LMDB_FAULTS: frozenset[FaultKind] = frozenset({"engine_error"})
"""The faults the LMDB stores simulate. Not ``locked``: LMDB writers queue on
a mutex without a timeout, so there is no lock timeout to exercise."""


class _LMDBHandle(ClosingContext):
    """What both stores share: opening, closing and running transactions."""

    _locked_error: type[StoreLockedError] = StoreLockedError
    _kind = "store"
    faults = LMDB_FAULTS
    """Faults :meth:`inject_fault` simulates (see ``localqueue.protocols.FaultInjectable``)."""
    _fault_after: int | None = None

    def __init__(
        self,
        path: str | os.PathLike[str],
        durability: str,
        map_size: int,
        max_readers: int,
        clock: Clock | None,
        disk_reserve: int = DEFAULT_DISK_RESERVE,
    ) -> None:
        _check_argument("durability", durability)
        _check_argument("map_size", map_size)
        _check_argument("max_readers", max_readers)
        _check_argument("disk_reserve", disk_reserve)
        self.path = os.fspath(path)
        self.durability = durability
        self._clock: Clock = clock or time.time
        self._rules = _error_rules(self._locked_error, self.path)
        with translating(self._rules):
            self._env: Environment | None = acquire(
                self.path, durability, map_size, max_readers, disk_reserve
            )

    def _shared(self) -> Environment:
        shared = self._env
        if shared is None:
            raise StoreClosedError(f"the LMDB {self._kind} {self.path!r} is closed")
        if shared.forked:
            raise StoreError(
                f"the LMDB {self._kind} {self.path!r} was opened before fork(); "
                "open a new store in the child process"
            )
        return shared

    def _write(self, fn: Callable[[Environment, Txn], T]) -> T:
        shared = self._shared()
        after = self._fault_after
        with translating(self._rules):
            if after is not None:
                return shared.run(True, lambda txn: fn(shared, cast(Txn, FaultyTxn(txn, after))))
            return shared.run(True, lambda txn: fn(shared, txn))

    @contextlib.contextmanager
    def inject_fault(self, fault: Fault) -> Iterator[None]:
        """Test hook: fail this handle's write transactions as ``fault`` says.

        Only ``engine_error``: each write transaction raises ``lmdb.TxnFullError``
        at its write after ``fault.after`` ones (puts, deletes, each item of a
        ``putmulti``), so the real transaction aborts what it wrote. See
        ``localqueue.protocols.FaultInjectable``.
        """
        if fault.kind not in self.faults:
            raise ConfigurationError(f"LMDB stores cannot simulate a {fault.kind!r} fault")
        self._fault_after = int(fault.after)
        try:
            yield
        finally:
            self._fault_after = None

    def _read(self, fn: Callable[[Environment, Txn], T]) -> T:
        shared = self._shared()
        with translating(self._rules):
            return shared.run(False, lambda txn: fn(shared, txn))

    def close(self) -> None:
        """Release this handle; the environment closes with its last handle. Idempotent."""
        shared, self._env = self._env, None
        if shared is not None:
            with translating(self._rules):
                release(shared)


# -- message building ------------------------------------------------------------------

# Record fields (a msgpack list): short and positional, this is internal metadata.
_F_QUEUE, _F_STATE, _F_PRIORITY, _F_SEQ, _F_CREATED, _F_AVAILABLE = 0, 1, 2, 3, 4, 5
_F_ATTEMPTS, _F_LEASED_BY, _F_TOKEN, _F_ERROR, _F_FAILED, _F_DEDUP = 6, 7, 8, 9, 10, 11
_F_CODEC, _F_PAYLOAD = 12, 13

# Plain ints of the kit's codes: compared on every record, so no enum lookups.
_READY, _INFLIGHT, _DEAD = (int(s) for s in StoredState)
_STATE_BYTE = {_READY: b"\x00", _INFLIGHT: b"\x01"}

_local = threading.local()


def _pack(record: Record) -> bytes:
    # A Packer per thread: building one per call costs as much as the packing.
    packer = getattr(_local, "packer", None)
    if packer is None:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    data: bytes = packer.pack(record)
    return data


def _unpack(value: bytes, what: str) -> Record:
    try:
        record = msgpack.unpackb(value, raw=False, use_list=True)
    except Exception as exc:
        raise StoreCorruptedError(f"LMDB record {what} cannot be decoded: {exc}") from exc
    if not isinstance(record, list):
        raise StoreCorruptedError(f"LMDB record {what} has an unknown shape")
    return record


_OPT_STR = (str, type(None))
_NUM = (int, float)
_OPT_NUM = (int, float, type(None))
_FIELD_TYPES: tuple[type | tuple[type, ...], ...] = (
    str, int, int, int, _NUM, _NUM, int, _OPT_STR, _OPT_STR, _OPT_STR, _OPT_NUM, _OPT_STR,
    str, bytes,
)  # fmt: skip


class _BadRecord:
    """A message record that is gone or cannot be decoded, as a transaction met it."""

    __slots__ = ("id_key", "raw", "reason")

    def __init__(self, id_key: bytes, raw: bytes | None, reason: str) -> None:
        self.id_key = id_key
        self.raw = raw  # None: the record is gone
        self.reason = reason

    @property
    def message_id(self) -> str:
        return self.id_key.decode(errors="backslashreplace")


def _decode(id_key: bytes, raw: bytes | None) -> Record | _BadRecord:
    """The record stored under ``id_key``, or what is wrong with it."""
    if raw is None:
        return _BadRecord(id_key, None, "missing")
    try:
        rec = msgpack.unpackb(raw, raw=False, use_list=True)
    except Exception as exc:
        detail = str(exc) or "malformed"
        return _BadRecord(id_key, bytes(raw), f"not msgpack ({type(exc).__name__}: {detail})")
    if not isinstance(rec, list) or len(rec) != len(_FIELD_TYPES):
        return _BadRecord(id_key, bytes(raw), "not a localqueue message record")
    if not all(map(isinstance, rec, _FIELD_TYPES)):  # one C loop: this is the lease path
        i = next(i for i, v in enumerate(rec) if not isinstance(v, _FIELD_TYPES[i]))
        return _BadRecord(id_key, bytes(raw), f"field {i} holds a {type(rec[i]).__name__}")
    if rec[_F_STATE] not in (_READY, _INFLIGHT, _DEAD):
        return _BadRecord(id_key, bytes(raw), f"unknown state {rec[_F_STATE]!r}")
    return rec


DAMAGED_ERROR = "damaged record"
"""How the ``last_error`` of a record moved aside as a dead letter begins."""

ORPHAN_QUEUE = "localqueue.damaged"
"""Where :meth:`LMDBQueueStore.repair` keeps an undecodable record no index entry places."""

_UNDECODABLE = b"\xc1localqueue: damaged on purpose"  # 0xc1 is never valid msgpack


def _damaged_record(
    queue: str, bad: _BadRecord, now: float, priority: int, seq: int, at: float
) -> Record:
    """The dead letter that stands in for an undecodable record: its bytes are the value."""
    assert bad.raw is not None
    error = f"{DAMAGED_ERROR}: {bad.reason}; moved aside by localqueue, the value is its bytes"
    return [queue, _DEAD, priority, seq, at, at, 0, None, None, error, now, None,
            "msgpack", msgpack.packb(bad.raw, use_bin_type=True)]  # fmt: skip


def _message(rec: Record, message_id: str, now: float, token: str | None = None) -> QueueMessage:
    """The :class:`QueueMessage` a record stands for at ``now``."""
    state = rec[_F_STATE]
    available_at = rec[_F_AVAILABLE]
    effective, leased_until = effective_state(state, available_at, now)
    return build_message(
        {
            "id": message_id,
            "queue": rec[_F_QUEUE],
            "state": effective,
            "payload": rec[_F_PAYLOAD],
            "codec": rec[_F_CODEC],
            "attempts": rec[_F_ATTEMPTS],
            "created_at": rec[_F_CREATED],
            "available_at": available_at,
            "priority": rec[_F_PRIORITY],
            "leased_until": leased_until,
            "leased_by": rec[_F_LEASED_BY],
            "lease_token": token,
            "last_error": rec[_F_ERROR],
            "failed_at": rec[_F_FAILED],
            "dedup_key": rec[_F_DEDUP],
        }
    )


# Retry record fields: key, attempts, first_attempt_at, last_attempt_at, exhausted, last_error.


def _retry_record(raw: bytes, key: str) -> RetryRecord:
    fields = _unpack(raw, f"retry {key!r}")
    try:
        return RetryRecord(key, *fields[1:6])
    except TypeError as exc:
        raise StoreCorruptedError(f"LMDB retry record {key!r} has an unknown shape") from exc


def _retry_value(record: RetryRecord) -> bytes:
    return _pack(
        [
            record.key,
            record.attempts,
            record.first_attempt_at,
            record.last_attempt_at,
            record.exhausted,
            record.last_error,
        ]
    )


# -- queue store -----------------------------------------------------------------------

_TAIL = struct.Struct(">IQQ")  # ~priority, sortable time, seq
_PRIO = struct.Struct(">I")
_DEAD_TAIL = struct.Struct(">QQ")  # sortable failed_at, seq
_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")
_SIGN = 1 << 63
_ALL_BITS = (1 << 64) - 1
_MAX_KEY = 511  # LMDB's default key size limit
_SEQ_KEY = b"seq"


def _sortable(t: float) -> int:
    """Map a float onto an unsigned 64-bit int with the same order (exact, no rounding)."""
    bits: int = _U64.unpack(_F64.pack(t + 0.0))[0]  # + 0.0 turns -0.0 into 0.0
    return bits ^ _SIGN if bits < _SIGN else bits ^ _ALL_BITS


def _unsortable(u: int) -> float:
    bits = u ^ _SIGN if u >= _SIGN else u ^ _ALL_BITS
    (t,) = _F64.unpack(_U64.pack(bits))
    return float(t)


def _hash_key(text: str) -> bytes:
    # Dedup and retry keys may be 512 characters, beyond LMDB's key limit.
    return hashlib.blake2b(text.encode(), digest_size=20).digest()


def _id_key(message_id: object) -> bytes | None:
    if not isinstance(message_id, str):
        return None
    key = message_id.encode()
    return key if 0 < len(key) <= _MAX_KEY else None


def _prefix(queue: str) -> bytes:
    return queue.encode() + b"\0"


def _ready_key(prefix: bytes, record: Record) -> bytes:
    return prefix + _TAIL.pack(
        MAX_PRIORITY - record[_F_PRIORITY], _sortable(record[_F_AVAILABLE]), record[_F_SEQ]
    )


def _dead_key(prefix: bytes, record: Record) -> bytes:
    return prefix + _DEAD_TAIL.pack(_sortable(record[_F_FAILED] or 0.0), record[_F_SEQ])


def _next_seq(shared: Environment, txn: Txn, count: int) -> int:
    """Reserve ``count`` put sequence numbers; returns the first."""
    raw = txn.get(_SEQ_KEY, db=shared.meta)
    first = 0 if raw is None else _U64.unpack(raw)[0]
    txn.put(_SEQ_KEY, _U64.pack(first + count), db=shared.meta)
    return first


def _room_for(payload_bytes: int, count: int) -> int:
    """A generous bound on the file growth a put of ``count`` messages can cause."""
    # Record and index copies, overflow-page rounding, and the B-tree pages the
    # write copies on its way (LMDB copies every page it changes).
    return 2 * payload_bytes + 256 * count + (16 << 12)


def _check_room(
    txn: Txn, ready: Any, prefix: bytes, queue: str, needed: int, max_size: int
) -> None:
    """Raise ``Full`` unless ``needed`` more messages fit (inside the write transaction)."""
    # The delivery index holds exactly the queue's unfinished messages; stop counting
    # at max_size, past which the answer cannot change.
    unfinished = sum(1 for _ in itertools.islice(_scan(txn, ready, prefix), max_size))
    if unfinished + needed > max_size:
        raise Full(f"queue {queue!r} holds {unfinished} of at most {max_size} messages")


def _scan(txn: Txn, db: Any, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    cursor = txn.cursor(db=db)
    if not cursor.set_range(prefix):
        return
    for key, value in cursor.iternext():
        if not key.startswith(prefix):
            return
        yield key, value


def _iter_due(txn: Txn, db: Any, prefix: bytes, now_key: int) -> Iterator[tuple[bytes, bytes]]:
    """The index entries due at ``now``, in delivery order (do not write while iterating).

    Priority is the first sort key, so a not-yet-due entry only ends its own
    priority band: the scan jumps to the next band instead of stopping.
    """
    cursor = txn.cursor(db=db)
    n = len(prefix)
    positioned = cursor.set_range(prefix)
    while positioned:
        key = cursor.key()
        if not key.startswith(prefix):
            break
        inverted, time_key, _ = _TAIL.unpack_from(key, n)
        if time_key <= now_key:
            yield key, cursor.value()
            positioned = cursor.next()
        elif inverted == 0xFFFFFFFF:
            break
        else:
            positioned = cursor.set_range(prefix + _PRIO.pack(inverted + 1))


def _due(txn: Txn, db: Any, prefix: bytes, now_key: int, limit: int) -> list[tuple[bytes, bytes]]:
    """Up to ``limit`` index entries due at ``now``, in delivery order."""
    return list(itertools.islice(_iter_due(txn, db, prefix, now_key), limit))


_Entry: TypeAlias = tuple[Any, bytes]  # (index database, key)


def _entries_of(shared: Environment, txn: Txn, prefix: bytes, id_key: bytes) -> list[_Entry]:
    """A queue's delivery and dead-letter index entries pointing at ``id_key``.

    A scan of the queue's indexes: only for damage, which has no record to
    compute the keys from.
    """
    found: list[_Entry] = [
        (shared.ready, key)
        for key, value in _scan(txn, shared.ready, prefix)
        if value[1:] == id_key
    ]
    found += [
        (shared.dead, key) for key, value in _scan(txn, shared.dead, prefix) if value == id_key
    ]
    return found


def _drop_dedup(shared: Environment, txn: Txn, prefix: bytes, id_key: bytes) -> None:
    """Delete a queue's dedup entries pointing at ``id_key`` (a scan: for damage only)."""
    for key in [k for k, v in _scan(txn, shared.dedup, prefix) if v == id_key]:
        txn.delete(key, db=shared.dedup)


def _next_due_at(txn: Txn, db: Any, prefix: bytes) -> float | None:
    """The earliest ``available_at`` (or lease end) among a queue's indexed messages."""
    cursor = txn.cursor(db=db)
    n = len(prefix)
    earliest: int | None = None
    positioned = cursor.set_range(prefix)
    while positioned:
        key = cursor.key()
        if not key.startswith(prefix):
            break
        inverted, time_key, _ = _TAIL.unpack_from(key, n)
        if earliest is None or time_key < earliest:
            earliest = time_key
        if inverted == 0xFFFFFFFF:
            break
        positioned = cursor.set_range(prefix + _PRIO.pack(inverted + 1))
    return None if earliest is None else _unsortable(earliest)


def _queue_names(txn: Txn, db: Any) -> set[str]:
    names: set[str] = set()
    cursor = txn.cursor(db=db)
    positioned = cursor.first()
    while positioned:
        name = cursor.key().partition(b"\0")[0]
        names.add(name.decode())
        positioned = cursor.set_range(name + b"\x01")  # first key of the next queue
    return names


class LMDBQueueStore(_LMDBHandle):
    """A queue store in an LMDB environment directory.

    Args:
        path: The environment's directory (created if missing).
        durability: ``"sync"`` (default): every commit is flushed to disk before
            returning. ``"nosync"``: commits survive a crash of the process but not
            of the machine.
        map_size: Initial map size in bytes (1 GiB); it doubles when full.
        max_readers: Reader slots of the environment, fixed by its first opener.
        disk_reserve: Bytes of disk kept allocated past the data (4 MiB, at most
            an eighth of the filesystem), so that once the disk is full, puts are
            refused while leases and acks can still drain the store; ``0`` turns
            the reserve off. Set by the first opener in a process.
        clock: Time source; ``time.time`` by default.

    Raises:
        SchemaVersionError: The directory was written by a newer localqueue.
        StoreCorruptedError: The directory holds damaged or non-LMDB files.
        StoreError: The directory cannot be opened.
    """

    capabilities = frozenset(
        {Capability.PERSISTENT, Capability.MULTI_PROCESS, Capability.INJECTABLE_CLOCK}
    )
    _locked_error = QueueStoreLockedError
    _kind = "queue store"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: str = "sync",
        map_size: int = DEFAULT_MAP_SIZE,
        max_readers: int = 126,
        disk_reserve: int = DEFAULT_DISK_RESERVE,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(path, durability, map_size, max_readers, clock, disk_reserve)

    @classmethod
    def from_url(cls, url: StoreURL, *, clock: Clock | None = None) -> Self:
        """Open the store ``lmdb:///dir?durability=...`` names."""
        options = _check_lmdb_url(url)
        return cls(url.path, **options, clock=clock)

    def __repr__(self) -> str:
        return f"LMDBQueueStore({self.path!r}, durability={self.durability!r})"

    def _get(
        self, shared: Environment, txn: Txn, queue: str, id_key: bytes | None
    ) -> Record | None:
        """The record of ``id_key`` in ``queue``, in a write transaction.

        A record found damaged is settled here (see :meth:`_settle`) and ``None``
        returned: the call that meets the damage does not act on the message.
        """
        if id_key is None:
            return None
        found = _decode(id_key, txn.get(id_key, db=shared.messages))
        if isinstance(found, _BadRecord):
            entries = _entries_of(shared, txn, _prefix(queue), id_key)
            if entries:  # otherwise it is not this queue's, or only repair() can place it
                self._settle(shared, txn, queue, found, entries)
            return None
        return found if found[_F_QUEUE] == queue else None

    def _look(
        self, shared: Environment, txn: Txn, queue: str, id_key: bytes | None
    ) -> Record | None:
        """The record of ``id_key`` in ``queue``, in a read transaction.

        A damaged record is returned as the dead letter :meth:`_settle` will make
        of it, without writing; a missing one as ``None``.
        """
        if id_key is None:
            return None
        found = _decode(id_key, txn.get(id_key, db=shared.messages))
        if not isinstance(found, _BadRecord):
            return found if found[_F_QUEUE] == queue else None
        entries = _entries_of(shared, txn, _prefix(queue), id_key)
        if not entries:
            return None
        self._warn(found, queue, "seen")
        if found.raw is None:
            return None
        return self._stand_in(shared, txn, queue, found, entries[0], self._clock())

    def _warn(self, bad: _BadRecord, queue: str, action: str) -> None:
        """Log damage met: ``action`` is ``"settled"``, ``"purged"`` or ``"seen"`` (read only)."""
        if action == "purged":
            done = "purged it"
        elif bad.raw is None:
            done = "skipped it" if action == "seen" else "dropped its index entries"
        elif action == "seen":
            done = "the next lease or repair() that meets it makes it a dead letter"
        else:
            done = "moved it aside as a dead letter"
        logger.warning(
            "LMDB store %r: message %s of queue %r is damaged: its record is %s; %s",
            self.path, bad.message_id, queue, bad.reason, done,
        )  # fmt: skip

    @staticmethod
    def _stand_in(
        shared: Environment, txn: Txn, queue: str, bad: _BadRecord, entry: _Entry, now: float
    ) -> Record:
        """The dead letter replacing ``bad``, with what its index ``entry`` key still tells."""
        db, key = entry
        n = len(_prefix(queue))
        if db is shared.ready:
            inverted, time_key, seq = _TAIL.unpack_from(key, n)
            return _damaged_record(
                queue, bad, now, MAX_PRIORITY - inverted, seq, _unsortable(time_key)
            )
        failed_key, seq = _DEAD_TAIL.unpack_from(key, n)
        return _damaged_record(queue, bad, now, 0, seq, _unsortable(failed_key))

    def _settle(
        self, shared: Environment, txn: Txn, queue: str, bad: _BadRecord, entries: list[_Entry]
    ) -> Record | None:
        """Move a damaged record aside as a dead letter, or drop the entries of a missing one.

        ``entries`` are the queue's index entries pointing at it; all are
        removed, with its dedup entries (its dedup key cannot be read back).
        Returns the dead letter written, if any.
        """
        prefix = _prefix(queue)
        for db, key in entries:
            txn.delete(key, db=db)
        _drop_dedup(shared, txn, prefix, bad.id_key)
        self._warn(bad, queue, "settled")
        if bad.raw is None:
            return None
        rec = self._stand_in(shared, txn, queue, bad, entries[0], self._clock())
        txn.put(bad.id_key, _pack(rec), db=shared.messages)
        self._index(shared, txn, prefix, rec, bad.id_key)
        return rec

    @staticmethod
    def _unindex(shared: Environment, txn: Txn, prefix: bytes, rec: Record) -> None:
        if rec[_F_STATE] == _DEAD:
            txn.delete(_dead_key(prefix, rec), db=shared.dead)
        else:
            txn.delete(_ready_key(prefix, rec), db=shared.ready)

    @staticmethod
    def _index(shared: Environment, txn: Txn, prefix: bytes, rec: Record, id_key: bytes) -> None:
        if rec[_F_STATE] == _DEAD:
            txn.put(_dead_key(prefix, rec), id_key, db=shared.dead)
        else:
            txn.put(_ready_key(prefix, rec), _STATE_BYTE[rec[_F_STATE]] + id_key, db=shared.ready)

    def _remove(
        self, shared: Environment, txn: Txn, prefix: bytes, rec: Record, id_key: bytes
    ) -> None:
        self._unindex(shared, txn, prefix, rec)
        txn.delete(id_key, db=shared.messages)
        if rec[_F_DEDUP] is not None:
            txn.delete(prefix + _hash_key(rec[_F_DEDUP]), db=shared.dedup)

    # -- QueueStore ------------------------------------------------------------------

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
        """Store one message in one write transaction."""
        delay = validation.check_put(queue, payload, delay, priority, dedup_key)
        if max_size is not None:
            validation.check_max_size(max_size)
        prefix = _prefix(queue)

        def put(shared: Environment, txn: Txn) -> tuple[QueueMessage, bool]:
            shared.make_room(_room_for(len(payload), 1))
            now = self._clock()
            if dedup_key is not None:
                dedup_db_key = prefix + _hash_key(dedup_key)
                existing = txn.get(dedup_db_key, db=shared.dedup)
                if existing is not None:
                    rec = self._get(shared, txn, queue, existing)
                    if rec is not None and rec[_F_DEDUP] == dedup_key:
                        return _message(rec, existing.decode(), now), False
            if max_size is not None:
                _check_room(txn, shared.ready, prefix, queue, 1, max_size)
            message_id = new_message_id()
            id_key = message_id.encode()
            rec = [queue, _READY, priority, _next_seq(shared, txn, 1), now, now + delay, 0, None,
                   None, None, None, dedup_key, codec, payload]  # fmt: skip
            txn.put(id_key, _pack(rec), db=shared.messages)
            self._index(shared, txn, prefix, rec, id_key)
            if dedup_key is not None:
                txn.put(dedup_db_key, id_key, db=shared.dedup)
            message = ready_message(
                message_id, queue, payload, codec, now, now + delay, priority, dedup_key
            )
            return message, True

        message, stored = self._write(put)
        if stored:
            self._shared().notify()
        return message

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
        """Store several messages in one write transaction."""
        items, delay = validation.check_put_many(queue, payloads, delay, priority)
        if max_size is not None:
            validation.check_max_size(max_size)
        if not items:
            self._shared()  # raises StoreClosedError once closed
            return []
        prefix = _prefix(queue)
        inverted = MAX_PRIORITY - priority

        def put_many(shared: Environment, txn: Txn) -> list[QueueMessage]:
            shared.make_room(_room_for(sum(map(len, items)), len(items)))
            if max_size is not None:
                _check_room(txn, shared.ready, prefix, queue, len(items), max_size)
            now = self._clock()
            available_at = now + delay
            head = prefix + _PRIO.pack(inverted) + _U64.pack(_sortable(available_at))
            seq = _next_seq(shared, txn, len(items))
            records: list[tuple[bytes, bytes]] = []
            index: list[tuple[bytes, bytes]] = []
            messages: list[QueueMessage] = []
            for message_id, payload in zip(new_message_ids(len(items)), items, strict=True):
                id_key = message_id.encode()
                rec = [queue, _READY, priority, seq, now, available_at, 0, None, None, None,
                       None, None, codec, payload]  # fmt: skip
                records.append((id_key, _pack(rec)))
                index.append((head + _U64.pack(seq), b"\x00" + id_key))
                messages.append(
                    ready_message(message_id, queue, payload, codec, now, available_at, priority)
                )
                seq += 1
            txn.cursor(db=shared.messages).putmulti(records)
            txn.cursor(db=shared.ready).putmulti(index)
            return messages

        messages = self._write(put_many)
        self._shared().notify()
        return messages

    def lease(
        self,
        queue: str,
        *,
        lease_timeout: float,
        leased_by: str | None = None,
        limit: int = 1,
        max_deliveries: int | None = None,
    ) -> list[QueueMessage]:
        """Lease up to ``limit`` available messages in one write transaction."""
        lease_timeout = validation.check_lease(
            queue, lease_timeout, leased_by, limit, max_deliveries
        )
        prefix = _prefix(queue)

        def lease(shared: Environment, txn: Txn, limit: int) -> list[QueueMessage]:
            now = self._clock()
            now_key = _sortable(now)
            leased: list[QueueMessage] = []
            seen: set[bytes] = set()
            # An entry that was not sound is gone from the due set once met, so ask
            # again for what is missing; ``seen`` ends it should a lease end "now"
            # (a lease_timeout below the clock's float resolution).
            while len(leased) < limit:
                due = _due(txn, shared.ready, prefix, now_key, limit - len(leased) + len(seen))
                fresh = [(key, value) for key, value in due if value[1:] not in seen]
                if not fresh:
                    break
                for key, value in fresh[: limit - len(leased)]:
                    seen.add(value[1:])
                    message = self._lease_entry(
                        shared, txn, queue, key, value, now, lease_timeout, leased_by,
                        max_deliveries,
                    )  # fmt: skip
                    if message is not None:
                        leased.append(message)
            return leased

        while True:
            try:
                return self._write(functools.partial(lease, limit=limit))
            except StoreError as exc:
                # On a full disk a smaller lease may fit in the pages left: "up to limit".
                if limit == 1 or not _disk_full(exc):
                    raise
                limit //= 2

    def _lease_entry(
        self,
        shared: Environment,
        txn: Txn,
        queue: str,
        key: bytes,
        value: bytes,
        now: float,
        lease_timeout: float,
        leased_by: str | None,
        max_deliveries: int | None = None,
    ) -> QueueMessage | None:
        """Lease the message of one due delivery-index entry; ``None`` if it was not sound
        or was spent (delivered ``max_deliveries`` times: then it is dead-lettered)."""
        prefix = _prefix(queue)
        id_key = value[1:]
        rec = _decode(id_key, txn.get(id_key, db=shared.messages))
        if isinstance(rec, _BadRecord):
            self._settle(shared, txn, queue, rec, [(shared.ready, key)])
            return None
        inverted, _, seq = _TAIL.unpack_from(key, len(prefix))
        if (
            rec[_F_QUEUE] != queue
            or rec[_F_STATE] == _DEAD
            or seq != rec[_F_SEQ]
            or inverted != MAX_PRIORITY - rec[_F_PRIORITY]
        ):
            # A stale entry: the record says where it belongs, so index it there instead.
            # (The time is not compared: that costs a float conversion per message;
            # check_integrity() and repair() compare whole keys.)
            txn.delete(key, db=shared.ready)
            logger.warning(
                "LMDB store %r: dropped a stale delivery index entry of message %s in queue %r",
                self.path, id_key.decode(errors="backslashreplace"), queue,
            )  # fmt: skip
            self._index(shared, txn, _prefix(rec[_F_QUEUE]), rec, id_key)
            return None
        if max_deliveries is not None and rec[_F_ATTEMPTS] >= max_deliveries:
            self._unindex(shared, txn, prefix, rec)
            rec[_F_STATE] = _DEAD
            rec[_F_TOKEN] = None
            rec[_F_ERROR], rec[_F_FAILED] = max_deliveries_error(max_deliveries), now
            txn.put(id_key, _pack(rec), db=shared.messages)
            self._index(shared, txn, prefix, rec, id_key)
            return None
        txn.delete(key, db=shared.ready)
        token = new_lease_token()
        rec[_F_STATE] = _INFLIGHT
        rec[_F_ATTEMPTS] += 1
        rec[_F_AVAILABLE] = now + lease_timeout
        rec[_F_LEASED_BY] = leased_by
        rec[_F_TOKEN] = token
        txn.put(id_key, _pack(rec), db=shared.messages)
        self._index(shared, txn, prefix, rec, id_key)
        return _message(rec, id_key.decode(), now, token)

    def wait(self, queue: str, timeout: float) -> None:
        """Block until a commit may have made a message available, a timer is due, or timeout.

        Commits in this process wake waiters at once; commits by other processes
        are noticed by polling the environment's last transaction id every 5 ms.
        """
        validation.check_queue_name(queue)
        timeout = validation.check_timeout(timeout)
        prefix = _prefix(queue)
        shared = self._shared()
        deadline = time.monotonic() + timeout

        def snapshot(shared: Environment, txn: Txn) -> tuple[int, bool, float | None]:
            now = self._clock()
            if _due(txn, shared.ready, prefix, _sortable(now), 1):
                return txn.id(), True, None
            due_at = _next_due_at(txn, shared.ready, prefix)
            return txn.id(), False, None if due_at is None else max(0.0, due_at - now)

        with shared.changed:
            shared.waiters += 1
            try:
                seen, available, due_in = self._read(snapshot)
                if available:
                    return
                if due_in is not None:
                    deadline = min(deadline, time.monotonic() + due_in)
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._env is None:
                        return
                    if shared.changed.wait(min(remaining, _POLL_INTERVAL)):
                        return
                    with translating(self._rules):
                        if self._shared().env.info()["last_txnid"] != seen:
                            return
            finally:
                shared.waiters -= 1

    def ack(self, queue: str, message_id: str, *, lease_token: str | None = None) -> bool:
        """Delete a message in one write transaction."""
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        id_key = _id_key(message_id)
        prefix = _prefix(queue)

        def ack(shared: Environment, txn: Txn) -> bool:
            rec = self._get(shared, txn, queue, id_key)
            if rec is None or id_key is None:
                return False
            if lease_token is not None and rec[_F_TOKEN] != lease_token:
                return False
            self._remove(shared, txn, prefix, rec, id_key)
            return True

        return self._write(ack)

    def ack_many(self, queue: str, leases: Sequence[tuple[str, str | None]]) -> int:
        """Delete several messages in one write transaction."""
        validation.check_queue_name(queue)
        validation.check_leases(leases)
        prefix = _prefix(queue)

        def ack_many(shared: Environment, txn: Txn) -> int:
            acked = 0
            for message_id, token in leases:
                id_key = _id_key(message_id)
                rec = self._get(shared, txn, queue, id_key)
                if rec is None or id_key is None:
                    continue
                if token is None or rec[_F_TOKEN] == token:
                    self._remove(shared, txn, prefix, rec, id_key)
                    acked += 1
            return acked

        if not leases:
            self._shared()  # raises StoreClosedError once closed
            return 0
        return self._write(ack_many)

    def _held(
        self, shared: Environment, txn: Txn, queue: str, id_key: bytes | None, token: str | None
    ) -> Record | None:
        rec = self._get(shared, txn, queue, id_key)
        if rec is None or rec[_F_STATE] == _DEAD:
            return None
        if token is not None and rec[_F_TOKEN] != token:
            return None
        return rec

    def release(
        self,
        queue: str,
        message_id: str,
        *,
        lease_token: str | None = None,
        delay: float = 0.0,
        error: str | None = None,
    ) -> bool:
        """Make a message ready again after ``delay``, in one write transaction."""
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        delay = validation.check_delay(delay)
        error = validation.check_error(error)
        id_key = _id_key(message_id)
        prefix = _prefix(queue)

        def release(shared: Environment, txn: Txn) -> bool:
            rec = self._held(shared, txn, queue, id_key, lease_token)
            if rec is None or id_key is None:
                return False
            now = self._clock()
            self._unindex(shared, txn, prefix, rec)
            rec[_F_STATE] = _READY
            rec[_F_AVAILABLE] = now + delay
            rec[_F_TOKEN] = None
            if error is not None:
                rec[_F_ERROR], rec[_F_FAILED] = error, now
            txn.put(id_key, _pack(rec), db=shared.messages)
            self._index(shared, txn, prefix, rec, id_key)
            return True

        released = self._write(release)
        if released:
            self._shared().notify()
        return released

    def extend(
        self, queue: str, message_id: str, *, lease_token: str, lease_timeout: float
    ) -> bool:
        """Move the end of a held lease to ``lease_timeout`` seconds from now."""
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        lease_timeout = validation.check_lease_timeout(lease_timeout)
        id_key = _id_key(message_id)
        prefix = _prefix(queue)

        def extend(shared: Environment, txn: Txn) -> bool:
            rec = self._get(shared, txn, queue, id_key)
            if rec is None or id_key is None:
                return False
            if rec[_F_STATE] != _INFLIGHT or rec[_F_TOKEN] != lease_token:
                return False
            self._unindex(shared, txn, prefix, rec)
            rec[_F_AVAILABLE] = self._clock() + lease_timeout
            txn.put(id_key, _pack(rec), db=shared.messages)
            self._index(shared, txn, prefix, rec, id_key)
            return True

        return self._write(extend)

    def dead_letter(
        self,
        queue: str,
        message_id: str,
        *,
        lease_token: str | None = None,
        error: str | None = None,
    ) -> bool:
        """Move a message to dead-letter storage in one write transaction."""
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        error = validation.check_error(error)
        id_key = _id_key(message_id)
        prefix = _prefix(queue)

        def dead_letter(shared: Environment, txn: Txn) -> bool:
            rec = self._held(shared, txn, queue, id_key, lease_token)
            if rec is None or id_key is None:
                return False
            self._unindex(shared, txn, prefix, rec)
            rec[_F_STATE] = _DEAD
            rec[_F_TOKEN] = None
            rec[_F_ERROR], rec[_F_FAILED] = error, self._clock()
            txn.put(id_key, _pack(rec), db=shared.messages)
            self._index(shared, txn, prefix, rec, id_key)
            return True

        return self._write(dead_letter)

    def requeue_dead(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        """Return dead letters to the ready state in one write transaction."""
        validation.check_queue_name(queue)
        ids = None if message_ids is None else validation.check_message_ids(message_ids)
        prefix = _prefix(queue)

        def requeue(shared: Environment, txn: Txn) -> int:
            now = self._clock()
            if ids is None:
                id_keys: list[bytes | None] = [v for _, v in _scan(txn, shared.dead, prefix)]
            else:
                id_keys = [_id_key(i) for i in dict.fromkeys(ids)]
            count = 0
            for id_key in id_keys:
                rec = self._get(shared, txn, queue, id_key)
                if rec is None or id_key is None or rec[_F_STATE] != _DEAD:
                    continue
                self._unindex(shared, txn, prefix, rec)
                rec[_F_STATE] = _READY
                rec[_F_ATTEMPTS] = 0
                rec[_F_AVAILABLE] = now
                txn.put(id_key, _pack(rec), db=shared.messages)
                self._index(shared, txn, prefix, rec, id_key)
                count += 1
            return count

        count = self._write(requeue)
        if count:
            self._shared().notify()
        return count

    def purge(self, queue: str, target: PurgeTarget = "ready") -> int:
        """Delete ready, dead or all messages in one write transaction."""
        validation.check_queue_name(queue)
        validation.check_purge_target(target)
        prefix = _prefix(queue)
        n = len(prefix)

        def purge(shared: Environment, txn: Txn) -> int:
            now_key = _sortable(self._clock())
            doomed: list[tuple[_Entry, bytes]] = []
            if target in ("ready", "all"):
                for key, value in _scan(txn, shared.ready, prefix):
                    expired = _TAIL.unpack_from(key, n)[1] <= now_key
                    if target == "all" or value[:1] == b"\x00" or expired:
                        doomed.append(((shared.ready, key), value[1:]))
            if target in ("dead", "all"):
                doomed.extend(((shared.dead, k), v) for k, v in _scan(txn, shared.dead, prefix))
            for (db, key), id_key in doomed:
                txn.delete(key, db=db)  # even when the record is damaged or gone
                rec = _decode(id_key, txn.get(id_key, db=shared.messages))
                if isinstance(rec, _BadRecord):
                    txn.delete(id_key, db=shared.messages)
                    _drop_dedup(shared, txn, prefix, id_key)
                    self._warn(rec, queue, "purged")
                elif rec[_F_QUEUE] == queue:
                    self._remove(shared, txn, prefix, rec, id_key)
            return len(doomed)

        return self._write(purge)

    def peek(self, queue: str) -> QueueMessage | None:
        """The next message ``lease`` would return, not leased."""
        validation.check_queue_name(queue)
        prefix = _prefix(queue)

        def peek(shared: Environment, txn: Txn) -> QueueMessage | None:
            now = self._clock()
            for key, value in _iter_due(txn, shared.ready, prefix, _sortable(now)):
                id_key = value[1:]
                rec = _decode(id_key, txn.get(id_key, db=shared.messages))
                if isinstance(rec, _BadRecord):
                    self._warn(rec, queue, "seen")  # lease will settle it and go on, as here
                elif rec[_F_QUEUE] == queue and key == _ready_key(prefix, rec):
                    return _message(rec, id_key.decode(), now)
            return None

        return self._read(peek)

    def inspect(self, queue: str, message_id: str) -> QueueMessage | None:
        """One message by id."""
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        id_key = _id_key(message_id)

        def inspect(shared: Environment, txn: Txn) -> QueueMessage | None:
            rec = self._look(shared, txn, queue, id_key)
            return None if rec is None else _message(rec, message_id, self._clock())

        return self._read(inspect)

    def dead_letters(self, queue: str, *, limit: int | None = None) -> list[QueueMessage]:
        """Dead letters, oldest failure first."""
        validation.check_queue_name(queue)
        if limit is not None:
            validation.check_limit(limit)
        prefix = _prefix(queue)

        def dead_letters(shared: Environment, txn: Txn) -> list[QueueMessage]:
            now = self._clock()
            found: list[QueueMessage] = []
            for key, id_key in _scan(txn, shared.dead, prefix):
                if limit is not None and len(found) >= limit:
                    break
                rec = _decode(id_key, txn.get(id_key, db=shared.messages))
                if isinstance(rec, _BadRecord):
                    self._warn(rec, queue, "seen")
                    if rec.raw is None:
                        continue
                    rec = self._stand_in(shared, txn, queue, rec, (shared.dead, key), now)
                elif rec[_F_QUEUE] != queue:
                    continue
                found.append(_message(rec, id_key.decode(errors="backslashreplace"), now))
            return found

        return self._read(dead_letters)

    def stats(self, queue: str) -> QueueStats:
        """Counts by effective state, from the indexes alone."""
        validation.check_queue_name(queue)
        prefix = _prefix(queue)
        n = len(prefix)

        def stats(shared: Environment, txn: Txn) -> QueueStats:
            now_key = _sortable(self._clock())
            ready = delayed = inflight = 0
            for key, value in _scan(txn, shared.ready, prefix):
                if _TAIL.unpack_from(key, n)[1] <= now_key:
                    ready += 1
                elif value[:1] == b"\x01":
                    inflight += 1
                else:
                    delayed += 1
            dead = sum(1 for _ in _scan(txn, shared.dead, prefix))
            return QueueStats(ready=ready, delayed=delayed, inflight=inflight, dead=dead)

        return self._read(stats)

    def queues(self) -> list[str]:
        """Queues holding at least one message."""

        def queues(shared: Environment, txn: Txn) -> list[str]:
            return sorted(_queue_names(txn, shared.ready) | _queue_names(txn, shared.dead))

        return self._read(queues)

    def check_integrity(self) -> list[str]:
        """Check every record decodes and the delivery, dead-letter and dedup indexes match them.

        One read transaction over the whole environment; each line names the
        message id concerned. See :meth:`repair`.
        """
        from localqueue.stores._lmdb_repair import survey

        return self._read(lambda shared, txn: survey(shared, txn).problems())

    def repair(self) -> list[str]:
        """Rebuild the indexes from the records; move undecodable records aside as dead letters.

        One write transaction over the whole environment, safe while other
        handles and processes use the store. A record that cannot be decoded
        becomes a dead letter of the queue its index entries name (of
        :data:`ORPHAN_QUEUE` when none does), its bytes kept as the value and
        ``last_error`` starting with :data:`DAMAGED_ERROR`; index entries
        pointing at no record, or not where their record belongs, are dropped;
        records missing from an index are indexed again.

        Returns:
            One line per repair, naming the message id; ``[]`` when nothing was
            wrong (a second call returns ``[]``).
        """
        from localqueue.stores._lmdb_repair import survey

        def repair(shared: Environment, txn: Txn) -> list[str]:
            return survey(shared, txn).repair(txn, self._clock())

        done = self._write(repair)
        for line in done:
            logger.warning("LMDB store %r: repair: %s", self.path, line)
        if done:
            self._shared().notify()
        return done

    damages: frozenset[Damage] = frozenset({"record", "missing"})
    """What :meth:`damage_record` plants (see ``localqueue.protocols.DamageInjectable``)."""

    def damage_record(self, queue: str, message_id: str, how: Damage) -> None:
        """Test hook: damage one intact message's record in a real LMDB write transaction.

        ``"record"`` overwrites the record with bytes that are not msgpack;
        ``"missing"`` deletes it. Index entries are left pointing at it either way.

        Raises:
            ConfigurationError: ``how`` is not in :attr:`damages`, or ``queue`` has
                no intact message ``message_id``.
        """
        if how not in self.damages:
            raise ConfigurationError(f"LMDB stores cannot plant {how!r} damage")
        validation.check_queue_name(queue)
        validation.check_message_id(message_id)
        id_key = _id_key(message_id)

        def damage(shared: Environment, txn: Txn) -> None:
            rec = None if id_key is None else _decode(id_key, txn.get(id_key, db=shared.messages))
            if id_key is None or not isinstance(rec, list) or rec[_F_QUEUE] != queue:
                raise ConfigurationError(
                    f"queue {queue!r} has no intact message {message_id!r} to damage"
                )
            if how == "record":
                txn.put(id_key, _UNDECODABLE, db=shared.messages)
            else:
                txn.delete(id_key, db=shared.messages)

        self._write(damage)


# -- attempt store ---------------------------------------------------------------------


class LMDBAttemptStore(_LMDBHandle):
    """An attempt store in an LMDB environment directory (its own ``retry`` database).

    It can share the directory, and the URL, with an :class:`LMDBQueueStore`.

    Args:
        path: The environment's directory (created if missing).
        durability: ``"sync"`` (default) or ``"nosync"``, as for the queue store.
        map_size: Initial map size in bytes (1 GiB); it doubles when full.
        max_readers: Reader slots of the environment, fixed by its first opener.
        disk_reserve: As for the queue store; the attempt store's writes may use it.
        clock: Time source; ``time.time`` by default.
    """

    capabilities = frozenset(
        {Capability.PERSISTENT, Capability.MULTI_PROCESS, Capability.INJECTABLE_CLOCK}
    )
    _locked_error = AttemptStoreLockedError
    _kind = "attempt store"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: str = "sync",
        map_size: int = DEFAULT_MAP_SIZE,
        max_readers: int = 126,
        disk_reserve: int = DEFAULT_DISK_RESERVE,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(path, durability, map_size, max_readers, clock, disk_reserve)

    @classmethod
    def from_url(cls, url: StoreURL, *, clock: Clock | None = None) -> Self:
        """Open the store ``lmdb:///dir`` names."""
        options = _check_lmdb_url(url)
        return cls(url.path, **options, clock=clock)

    def __repr__(self) -> str:
        return f"LMDBAttemptStore({self.path!r}, durability={self.durability!r})"

    def get_record(self, key: str) -> RetryRecord | None:
        """The record of ``key``, if any."""
        validation.check_retry_key(key)

        def get(shared: Environment, txn: Txn) -> RetryRecord | None:
            raw = txn.get(_hash_key(key), db=shared.retry)
            return None if raw is None else _retry_record(raw, key)

        return self._read(get)

    def begin_attempt(self, key: str) -> RetryRecord:
        """Count one more attempt for ``key`` in one write transaction."""
        validation.check_retry_key(key)
        db_key = _hash_key(key)

        def begin(shared: Environment, txn: Txn) -> RetryRecord:
            now = self._clock()
            raw = txn.get(db_key, db=shared.retry)
            record = next_attempt(None if raw is None else _retry_record(raw, key), key, now)
            txn.put(db_key, _retry_value(record), db=shared.retry)
            return record

        return self._write(begin)

    def record_failure(
        self, key: str, error: str | None, *, exhausted: bool = False
    ) -> RetryRecord | None:
        """Record the latest failure of ``key`` in one write transaction."""
        validation.check_retry_key(key)
        error = validation.check_error(error)
        db_key = _hash_key(key)

        def record_failure(shared: Environment, txn: Txn) -> RetryRecord | None:
            raw = txn.get(db_key, db=shared.retry)
            if raw is None:
                return None
            record = with_failure(_retry_record(raw, key), error, exhausted=exhausted)
            txn.put(db_key, _retry_value(record), db=shared.retry)
            return record

        return self._write(record_failure)

    def reset(self, key: str) -> bool:
        """Forget ``key``."""
        validation.check_retry_key(key)
        db_key = _hash_key(key)
        return self._write(lambda shared, txn: txn.delete(db_key, db=shared.retry))


# -- backend ---------------------------------------------------------------------------

backend = PathBackend(LMDBQueueStore, LMDBAttemptStore)
"""What the ``lmdb`` scheme resolves to."""
