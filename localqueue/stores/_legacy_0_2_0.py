"""Files written by localqueue 0.2.0: recognising them and migrating SQLite ones.

localqueue 0.2.0 kept a SQLite queue in a ``queue_messages`` table (one JSON
record per message) beside ``queue_sequences``, and SQLite retry budgets in a
``retry_records`` table of ``(key, record_json)``, with no schema version in
``PRAGMA user_version``. Its LMDB stores kept ``queue:<name>:...`` keys (and
plain retry keys) in the environment's main database.

The stores call :func:`sqlite_legacy_layout` / :func:`lmdb_legacy_layout` when
they open a file and refuse it with :class:`~localqueue.errors.LegacyStoreError`
instead of showing an empty queue beside the old data. :func:`migrate_legacy`
converts a SQLite file in place: it copies it to ``PATH.bak-0.2.0`` first, then
rewrites the rows into this release's schema in one transaction.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, Final

from localqueue.errors import StoreError
from localqueue.stores._sqlite_db import SCHEMA_STATEMENTS, SCHEMA_VERSION

__all__ = [
    "BACKUP_SUFFIX",
    "LMDB_HINT",
    "LegacyMigration",
    "lmdb_legacy_layout",
    "migrate_legacy",
    "sqlite_legacy_layout",
]

BACKUP_SUFFIX: Final = ".bak-0.2.0"
"""Appended to a file's path for the copy kept by :func:`migrate_legacy`."""

LMDB_HINT: Final = (
    "converting LMDB stores is not supported yet: keep running localqueue 0.2.0 on it "
    "until it is drained, or read its messages with 0.2.0 and put them into a new store"
)
"""How a store opening a 0.2.0 LMDB environment says what to do."""

_STATES: Final = {"ready": 0, "inflight": 1, "dead": 2}
_RECORD_VERSION: Final = 1  # the only record version 0.2.0 wrote
_LMDB_DBS: Final = frozenset({b"meta", b"messages", b"ready", b"dead", b"dedup", b"retry"})


# -- recognising -----------------------------------------------------------------------


def sqlite_legacy_layout(conn: sqlite3.Connection) -> str | None:
    """What 0.2.0 left in an open SQLite file (``None``: nothing).

    A ``queue_messages`` table is 0.2.0 data whatever the schema version (this
    project's first releases created their tables beside it); a ``retry_records``
    table with a ``record_json`` column is 0.2.0's attempt store.
    """
    tables = {
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name IN ('queue_messages', 'retry_records')"
        )
    }
    found = []
    if "queue_messages" in tables:
        found.append("queue_messages table")
    if "retry_records" in tables and _is_legacy_retry_table(conn):
        found.append("retry_records table with record_json")
    return " and ".join(found) or None


def _is_legacy_retry_table(conn: sqlite3.Connection) -> bool:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(retry_records)")}
    return "record_json" in columns


def lmdb_legacy_layout(env: Any, txn: Any) -> str | None:
    """What 0.2.0 left in an LMDB environment's main database (``None``: nothing).

    This release keeps only its named databases' entries there; 0.2.0 kept its
    queue (``queue:<name>:...``) or retry keys there.
    """
    with txn.cursor() as cursor:
        for key in cursor.iternext(keys=True, values=False):
            if bytes(key) not in _LMDB_DBS:
                kind = "queue" if bytes(key).startswith(b"queue:") else "retry"
                return f"{kind} keys in the LMDB main database"
    return None


# -- migrating -------------------------------------------------------------------------


@dataclass(frozen=True)
class LegacyMigration:
    """What :func:`migrate_legacy` did.

    Attributes:
        path: The migrated file.
        backup: The copy made before migrating (``None`` when nothing was migrated).
        messages: Migrated messages per queue and state (``ready``, ``delayed``,
            ``inflight``, ``dead``).
        retry_records: Migrated retry records.
        exhausted: How many of them had an exhausted budget.
    """

    path: str
    backup: str | None = None
    messages: dict[str, dict[str, int]] = field(default_factory=dict)
    retry_records: int = 0
    exhausted: int = 0

    @property
    def migrated(self) -> bool:
        """Whether anything was converted (a second run converts nothing)."""
        return self.backup is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "migrated": self.migrated,
            "backup": self.backup,
            "messages": self.messages,
            "retry_records": self.retry_records,
            "exhausted": self.exhausted,
        }


def migrate_legacy(path: str | os.PathLike[str]) -> LegacyMigration:
    """Convert a SQLite file written by localqueue 0.2.0 into this release's schema, in place.

    The file is first copied to ``PATH.bak-0.2.0`` (refused if that exists);
    then every 0.2.0 message and retry record is rewritten in one transaction,
    so either all of them move or none does (the copy is removed again when the
    migration fails). Message values were JSON in 0.2.0 and keep the ``json``
    codec; message ids change (0.2.0's were UUIDs). Retry records keep their
    attempts, first attempt time (also used as the last attempt time, which
    0.2.0 did not record) and exhaustion. A file with nothing from 0.2.0 is
    left alone and reported as such.

    Raises:
        StoreError: the file is missing or not SQLite, the backup exists or
            cannot be written, a row cannot be converted (nothing is changed).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "data.mdb")):
            raise StoreError(
                f"{path} is an LMDB environment; `localqueue migrate` converts SQLite files "
                f"only (for one written by localqueue 0.2.0: {LMDB_HINT})"
            )
        raise StoreError(f"{path} is a directory, not a SQLite store file")
    if not os.path.isfile(path):
        raise StoreError(f"no store file at {path}")
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from exc
    try:
        return _migrate(conn, path)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: migration failed, nothing was changed ({exc})") from exc
    finally:
        conn.close()


def _migrate(conn: sqlite3.Connection, path: str) -> LegacyMigration:
    try:
        layout = sqlite_legacy_layout(conn)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a SQLite database ({exc})") from exc
    if layout is None:
        return LegacyMigration(path)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path} has schema version {version}, newer than this release")
    backup = path + BACKUP_SUFFIX
    # The write lock is held from the first read to the commit, so no 0.2.0
    # worker can write a row in between that the migration would then drop.
    conn.execute("BEGIN IMMEDIATE")
    made_backup = False
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        # Every row is read and converted before anything is written, so a bad
        # row stops the migration before the backup is even made.
        now = time.time()
        messages = _converted_messages(conn, path, now) if "queue_messages" in tables else []
        legacy_retry = "retry_records" in tables and _is_legacy_retry_table(conn)
        records = _converted_records(conn, path) if legacy_retry else []
        _backup(path, backup)
        made_backup = True
        if legacy_retry:
            conn.execute("ALTER TABLE retry_records RENAME TO legacy_retry_records")
        for statement in SCHEMA_STATEMENTS:
            conn.execute(statement)
        conn.executemany(_INSERT_MESSAGE, [row for row, _ in messages])
        conn.executemany(_INSERT_RECORD, records)
        for table in ("queue_messages", "queue_sequences", "legacy_retry_records"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        if made_backup:
            with contextlib.suppress(OSError):
                os.unlink(backup)
        raise
    with contextlib.suppress(sqlite3.Error):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    counts: dict[str, dict[str, int]] = {}
    for row, kind in messages:
        per_queue = counts.setdefault(
            row[1], dict.fromkeys(("ready", "delayed", "inflight", "dead"), 0)
        )
        per_queue[kind] += 1
    return LegacyMigration(
        path,
        backup,
        counts,
        len(records),
        sum(1 for record in records if record[4]),
    )


def _backup(path: str, backup: str) -> None:
    """Copy the database (WAL included) to ``backup``, atomically; refuse if it exists."""
    if os.path.lexists(backup):
        raise StoreError(
            f"{backup} already exists; move it away to migrate {path} again "
            "(it may be the copy an earlier migration kept)"
        )
    temporary = f"{backup}.tmp-{os.getpid()}"
    try:
        # A second connection reads what is committed: the caller holds the write
        # lock (which still lets readers in) and has written nothing yet.
        source = sqlite3.connect(path, timeout=30)
        try:
            target = sqlite3.connect(temporary)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
        fd = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        # link() fails if the name appeared meanwhile: the copy is there whole or not at all.
        os.link(temporary, backup)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(
            f"cannot write the backup copy {backup} ({exc}); nothing was changed"
        ) from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


_INSERT_MESSAGE: Final = (
    "INSERT INTO messages (nonce, queue, state, priority, available_at, created_at, attempts, "
    "leased_by, lease_token, last_error, failed_at, dedup_key, codec, payload) "
    "VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, NULL, 'json', ?)"
)
_INSERT_RECORD: Final = (
    "INSERT INTO retry_records (key, attempts, first_attempt_at, last_attempt_at, exhausted, "
    "last_error) VALUES (?, ?, ?, ?, ?, NULL)"
)


def _converted_messages(
    conn: sqlite3.Connection, path: str, now: float
) -> list[tuple[tuple[Any, ...], str]]:
    """Every 0.2.0 message as an ``_INSERT_MESSAGE`` row and its state, in delivery order."""
    rows = conn.execute(
        "SELECT queue, id, record_json FROM queue_messages ORDER BY queue, available_at, sequence"
    ).fetchall()
    converted = []
    for queue, message_id, raw in rows:
        try:
            converted.append(_convert_message(queue, raw, now))
        except (TypeError, ValueError, KeyError) as exc:
            raise StoreError(
                f"{path}: message {message_id!r} of queue {queue!r} cannot be migrated "
                f"({type(exc).__name__}: {exc}); nothing was changed"
            ) from None
    return converted


def _number(value: Any, name: str) -> float:
    if type(value) not in (int, float) or value - value != 0:
        raise ValueError(f"{name} is {value!r}, not a finite number")
    return float(value)


def _convert_message(queue: Any, raw: Any, now: float) -> tuple[tuple[Any, ...], str]:
    record = json.loads(raw)
    if not isinstance(record, dict):
        raise ValueError("the record is not a JSON object")
    if record.get("version") != _RECORD_VERSION:
        raise ValueError(f"unknown record version {record.get('version')!r}")
    if not isinstance(queue, str) or record.get("queue") != queue:
        raise ValueError(f"the record names queue {record.get('queue')!r}")
    state = _STATES.get(record["state"])
    if state is None:
        raise ValueError(f"unknown state {record['state']!r}")
    attempts = record["attempts"]
    if type(attempts) is not int or attempts < 0:
        raise ValueError(f"attempts is {attempts!r}")
    available_at = _number(record["available_at"], "available_at")
    created_at = _number(record["created_at"], "created_at")
    failed_at = record.get("failed_at")
    if failed_at is not None:
        failed_at = _number(failed_at, "failed_at")
    leased_by = record.get("leased_by")
    if leased_by is not None and not isinstance(leased_by, str):
        raise ValueError(f"leased_by is {leased_by!r}")
    token = None
    if state == 1:
        # A leased message's available_at holds its lease deadline here.
        available_at = _number(record["leased_until"], "leased_until")
        token = "%016x" % random.getrandbits(63)  # noqa: UP031
    payload = json.dumps(record["value"], ensure_ascii=False, separators=(",", ":")).encode()
    kind = {0: "delayed" if available_at > now else "ready", 1: "inflight", 2: "dead"}[state]
    row = (
        random.getrandbits(63),
        queue,
        state,
        available_at,
        created_at,
        attempts,
        leased_by,
        token,
        _error_text(record.get("last_error")),
        failed_at,
        payload,
    )
    return row, kind


def _error_text(error: Any) -> str | None:
    """0.2.0's ``last_error`` object (type, module, message, ...) as this release's text."""
    if error is None:
        return None
    if not isinstance(error, dict):
        return str(error)
    message = str(error.get("message", ""))
    text = f"{error['type']}: {message}" if error.get("type") else message
    extra = {k: v for k, v in error.items() if k not in ("type", "module", "message")}
    if extra:
        text += " " + json.dumps(extra, ensure_ascii=False, sort_keys=True)
    return text


def _converted_records(
    conn: sqlite3.Connection, path: str
) -> list[tuple[str, int, float, float, int]]:
    converted = []
    for key, raw in conn.execute("SELECT key, record_json FROM retry_records ORDER BY key"):
        try:
            record = json.loads(raw)
            attempts = record["attempts"]
            if type(attempts) is not int or attempts < 0:
                raise ValueError(f"attempts is {attempts!r}")
            first = _number(record["first_attempt_at"], "first_attempt_at")
            exhausted = record.get("exhausted", False)
            if type(exhausted) is not bool:
                raise ValueError(f"exhausted is {exhausted!r}")
            if not isinstance(key, str):
                raise ValueError("the key is not text")
        except (TypeError, ValueError, KeyError) as exc:
            raise StoreError(
                f"{path}: retry record {key!r} cannot be migrated "
                f"({type(exc).__name__}: {exc}); nothing was changed"
            ) from None
        converted.append((key, attempts, first, first, int(exhausted)))
    return converted
