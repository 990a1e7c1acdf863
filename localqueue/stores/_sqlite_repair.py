"""Damage handling of the SQLite store: row checks, setting damaged rows aside, salvage.

Two kinds of damage are told apart:

* **Impossible rows**: SQLite reads the row, but a field holds what localqueue
  never writes (a state other than 0/1/2, a codec that is not text, a payload
  that is not a blob, ...). Such a row is rewritten in place as a dead letter
  whose ``last_error`` says what was wrong; its bytes are kept.
* **Engine damage**: ``PRAGMA integrity_check`` reports damaged pages, or an
  index entry points at a row the table does not hold. Indexes cannot be
  rebuilt in place then (``REINDEX`` and ``DROP`` must read the damaged pages
  to free them), so :func:`salvage` reads every row the table still yields
  through a second connection, while the store's connection holds the write
  lock, and replaces both tables with fresh ones holding those rows, in one
  transaction. ``VACUUM`` afterwards gives back the pages of the old trees.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

logger: Final = logging.getLogger("localqueue.stores.sqlite")
"""The SQLite store's logger: every damage found or repaired is a WARNING on it."""

ROW_COLUMNS: Final = (
    "seq",
    "nonce",
    "queue",
    "state",
    "priority",
    "available_at",
    "created_at",
    "attempts",
    "leased_by",
    "lease_token",
    "last_error",
    "failed_at",
    "dedup_key",
    "codec",
    "payload",
)
"""Every column of ``messages``, in the order salvage reads and writes them."""

LEASED_COLUMNS: Final = (
    "seq",
    "nonce",
    "state",
    "priority",
    "available_at",
    "created_at",
    "attempts",
    "leased_by",
    "last_error",
    "failed_at",
    "dedup_key",
    "codec",
    "payload",
)
"""The columns of the store's message-reading statements (its ``_COLUMNS``)."""

_ROW_SQL: Final = ", ".join(ROW_COLUMNS)
_RECORD_COLUMNS: Final = (
    "rowid, key, attempts, first_attempt_at, last_attempt_at, exhausted, last_error"
)
_ABSURD_ROWID: Final = 2**62
_PROBE_WINDOW: Final = 1_000_000


def _is_number(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]


def _describe(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"a {len(value)}-byte blob"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_RULES: Final[dict[str, tuple[Callable[[Any], bool], str]]] = {
    "seq": (lambda v: type(v) is int and v > 0, "a positive integer"),
    "nonce": (lambda v: type(v) is int and v >= 0, "an integer"),
    "queue": (lambda v: type(v) is str and v != "", "text"),
    "state": (lambda v: type(v) is int and v in (0, 1, 2), "0, 1 or 2"),
    "priority": (lambda v: type(v) is int, "an integer"),
    "available_at": (_is_number, "a number"),
    "created_at": (_is_number, "a number"),
    "attempts": (lambda v: type(v) is int and v >= 0, "an integer >= 0"),
    "leased_by": (lambda v: v is None or type(v) is str, "text or NULL"),
    "lease_token": (lambda v: v is None or type(v) is str, "text or NULL"),
    "last_error": (lambda v: v is None or type(v) is str, "text or NULL"),
    "failed_at": (lambda v: v is None or _is_number(v), "a number or NULL"),
    "dedup_key": (lambda v: v is None or type(v) is str, "text or NULL"),
    "codec": (lambda v: type(v) is str and v != "", "a codec name"),
    "payload": (lambda v: type(v) is bytes, "a blob"),
}


_NUMBER: Final = (int, float)


def _leased_row_ok(row: Sequence[Any]) -> bool:
    """:func:`row_problem` is ``None`` for a :data:`LEASED_COLUMNS` row; the leasing hot path."""
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
    return (
        type(payload) is bytes
        and type(codec) is str
        and codec != ""
        and type(state) is int
        and 0 <= state <= 2
        and type(seq) is int
        and seq > 0
        and type(nonce) is int
        and nonce >= 0
        and type(priority) is int
        and type(attempts) is int
        and attempts >= 0
        # x - x == 0 holds for every finite number and fails for inf.
        and type(available_at) in _NUMBER
        and available_at - available_at == 0
        and type(created_at) in _NUMBER
        and created_at - created_at == 0
        and (failed_at is None or (type(failed_at) in _NUMBER and failed_at - failed_at == 0))
        and (leased_by is None or type(leased_by) is str)
        and (last_error is None or type(last_error) is str)
        and (dedup_key is None or type(dedup_key) is str)
    )


def row_problem(row: Sequence[Any], columns: Sequence[str] = LEASED_COLUMNS) -> str | None:
    """What is impossible about a row's fields, or ``None`` when every field is possible."""
    if columns is LEASED_COLUMNS and _leased_row_ok(row):
        return None
    problems = [
        f"{name} is {_describe(value)}, not {expected}"
        for name, value in zip(columns, row, strict=True)
        for check, expected in (_RULES[name],)
        if not check(value)
    ]
    return "; ".join(problems) or None


def set_aside(row: Sequence[Any], problem: str, now: float, new_nonce: int) -> tuple[Any, ...]:
    """A full row (:data:`ROW_COLUMNS`) rewritten as a readable dead letter.

    Fields that can be kept are kept (the payload's bytes whenever there are
    any); impossible ones get neutral values, and ``last_error`` records what
    each held.
    """
    values = dict(zip(ROW_COLUMNS, row, strict=True))
    good = {name: _RULES[name][0](value) for name, value in values.items()}
    payload = values["payload"]
    if not good["payload"]:
        payload = b"" if payload is None else str(payload).encode("utf-8", "backslashreplace")
    return (
        values["seq"],
        values["nonce"] if good["nonce"] else new_nonce,
        values["queue"],
        2,
        values["priority"] if good["priority"] else 0,
        values["available_at"] if good["available_at"] else now,
        values["created_at"] if good["created_at"] else now,
        values["attempts"] if good["attempts"] else 0,
        values["leased_by"] if good["leased_by"] else None,
        None,
        f"damaged record set aside by localqueue: {problem}",
        now,
        values["dedup_key"] if good["dedup_key"] else None,
        values["codec"] if good["codec"] else "damaged",
        payload,
    )


SET_ASIDE_SQL: Final = (
    "UPDATE messages SET ("
    + ", ".join(ROW_COLUMNS[1:])
    + ") = ("
    + ", ".join("?" * (len(ROW_COLUMNS) - 1))
    + ") WHERE seq = ?"
)
"""Rewrites one row in place: the values of :func:`set_aside` after the first, then seq."""

READ_ROW_SQL: Final = f"SELECT {_ROW_SQL} FROM messages WHERE seq = ?"
SCAN_ROWS_SQL: Final = f"SELECT {_ROW_SQL} FROM messages NOT INDEXED"


def readable_rows(
    conn: sqlite3.Connection, table: str, columns: str, lost: list[str]
) -> Iterator[tuple[Any, ...]]:
    """Every row of ``table`` SQLite can still read, in rowid order (rowid first).

    A scan that meets a damaged page is resumed past it by looking rowids up
    one by one until one reads; rows that cannot be read are gone, and a line
    per unreadable stretch is appended to ``lost``.
    """
    try:
        bound = conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]
    except sqlite3.DatabaseError:
        bound = None
    if not isinstance(bound, int) or bound > _ABSURD_ROWID:
        bound = None
    after = 0
    while True:
        try:
            cursor = conn.execute(
                f"SELECT {columns} FROM {table} NOT INDEXED WHERE rowid > ? ORDER BY rowid",
                (after,),
            )
            for row in cursor:
                if bound is not None and row[0] > bound:
                    continue  # a rowid from damaged bytes, past every real one
                after = max(after, row[0])
                yield row
            return
        except sqlite3.DatabaseError as exc:
            failed_at = after
            limit = bound if bound is not None else after + _PROBE_WINDOW
            found = None
            probe = after + 1
            while probe <= limit and found is None:
                try:
                    found = conn.execute(
                        f"SELECT {columns} FROM {table} WHERE rowid = ?", (probe,)
                    ).fetchone()
                except sqlite3.DatabaseError:
                    found = None
                probe += 1
            last = probe - 1 if found is None else probe - 2
            lost.append(
                f"sqlite: {table} rows after rowid {failed_at} up to {last} could not be "
                f"read ({exc}) and are lost"
            )
            if found is None:
                return
            after = found[0]
            yield found


_INDEX_SCANS: Final = tuple(
    "SELECT seq, queue, priority, available_at FROM messages INDEXED BY messages_available "
    f"WHERE queue IS NOT NULL AND state < 2 ORDER BY queue {way}, priority {back}, "
    f"available_at {way}, seq {way}"
    for way, back in (("ASC", "DESC"), ("DESC", "ASC"))
)


def indexed_entries(conn: sqlite3.Connection) -> dict[int, tuple[Any, ...]]:
    """What the delivery index still says about each message: seq -> (queue, priority,
    available_at). Read forwards and then backwards, so a damaged page hides only
    the entries between the two places it stops each scan."""
    entries: dict[int, tuple[Any, ...]] = {}
    for sql in _INDEX_SCANS:
        # A missing or unreadable index leaves what was read; the table is the source.
        with contextlib.suppress(sqlite3.DatabaseError):
            for seq, *rest in conn.execute(sql):
                entries.setdefault(seq, tuple(rest))
    return entries


def integrity_problems(conn: sqlite3.Connection) -> list[str]:
    """What ``PRAGMA integrity_check`` reports, as lines; an unreadable file is one line."""
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return [f"sqlite: integrity_check stopped: {exc}"]
    return [
        f"sqlite: {line}"
        for (text,) in rows
        if text != "ok"
        for line in str(text).splitlines()
        if line and not line.startswith("***")
    ]


def _salvaged_rows(
    reader: sqlite3.Connection,
    format_id: Callable[[int, int], str],
    now: float,
    new_nonce: Callable[[], int],
    lines: list[str],
    lost: list[str],
) -> list[tuple[Any, ...]]:
    """The rows to write back: readable ones, damaged ones set aside, index-only ones."""
    messages = list(readable_rows(reader, "messages", _ROW_SQL, lost))
    indexed = indexed_entries(reader)
    kept: list[tuple[Any, ...]] = []
    for seq in sorted(indexed.keys() - {row[0] for row in messages}):
        # Only the index entry survived: keep that the message existed, and where,
        # as a dead letter without its value rather than forget it.
        queue, priority, available_at = indexed[seq]
        why = "its row was on a damaged page; its value and id nonce are lost"
        gone = (seq, None, queue, 2, priority, available_at, *(None,) * 9)
        placeholder = set_aside(gone, why, now, new_nonce())
        if row_problem(placeholder, ROW_COLUMNS) is None:
            kept.append(placeholder)
            lines.append(
                f"{queue}: message {format_id(seq, placeholder[1])} (rowid {seq}) is "
                f"damaged ({why}); kept as a dead letter"
            )
    for row in messages:
        problem = row_problem(row, ROW_COLUMNS)
        if problem is None:
            kept.append(row)
        elif type(row[2]) is not str or not row[2]:
            lost.append(f"sqlite: row {row[0]} is unreadable ({problem}) and was dropped")
        else:
            fixed = set_aside(row, problem, now, new_nonce())
            kept.append(fixed)
            lines.append(
                f"{fixed[2]}: message {format_id(fixed[0], fixed[1])} is damaged "
                f"({problem}); kept as a dead letter"
            )
    return kept


def salvage(
    conn: sqlite3.Connection,
    path: str,
    schema: Sequence[str],
    format_id: Callable[[int, int], str],
    now: float,
    new_nonce: Callable[[], int],
) -> tuple[list[str], list[str]]:
    """Replace ``messages`` and ``retry_records`` by fresh tables of their readable rows.

    ``conn`` must have no transaction open. Rows with impossible fields are
    written back as dead letters (see :func:`set_aside`), as are messages only
    the delivery index still remembers. Returns the lines of every repair and,
    separately, those about rows that could not be read at all and are gone.
    """
    lines: list[str] = []
    lost: list[str] = []
    conn.execute("PRAGMA writable_schema = ON")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # A read that fails on a damaged page can leave its connection unable
            # to write, so the rows are read through a second one. Under this
            # connection's write lock it sees exactly what this one would.
            reader = sqlite3.connect(path, isolation_level=None)
            try:
                kept = _salvaged_rows(reader, format_id, now, new_nonce, lines, lost)
                records = list(readable_rows(reader, "retry_records", _RECORD_COLUMNS, lost))
            finally:
                reader.close()
            # Forget the damaged trees without reading them; VACUUM frees their pages.
            conn.execute(
                "DELETE FROM sqlite_master WHERE tbl_name IN ('messages', 'retry_records')"
            )
            conn.execute("PRAGMA writable_schema = RESET")
            for statement in schema:
                conn.execute(statement)
            conn.executemany(
                f"INSERT OR IGNORE INTO messages ({_ROW_SQL}) "
                f"VALUES ({', '.join('?' * len(ROW_COLUMNS))})",
                kept,
            )
            conn.executemany(
                "INSERT OR IGNORE INTO retry_records "
                "(key, attempts, first_attempt_at, last_attempt_at, exhausted, last_error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [record[1:] for record in records],
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA writable_schema = OFF")
    lines += lost
    lines.append(
        f"sqlite: rebuilt tables and indexes from {len(kept)} messages "
        f"and {len(records)} retry records"
    )
    try:
        conn.execute("VACUUM")
    except sqlite3.Error as exc:
        lines.append(f"sqlite: VACUUM failed ({exc}); the old pages stay unused until it runs")
    for line in lines:
        logger.warning("%s: %s", path, line)
    return lines, lost
