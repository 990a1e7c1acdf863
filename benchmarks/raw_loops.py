"""The engines' own limits: plain sqlite3 and lmdb loops doing a queue's writes.

Each function runs one access pattern on a fresh database under ``workdir``
and returns the seconds its timed part took for ``count`` messages. They are
the ceilings ``compare.py`` divides localqueue's rates by, so they do the
least a durable queue must do: no ids, no codecs, no validation.

SQLite runs in WAL mode with ``PRAGMA synchronous`` set from ``durability``
(``normal`` or ``full``); LMDB opens with ``sync`` on or off.
"""

from __future__ import annotations

import sqlite3
import struct
import time
from pathlib import Path
from typing import Any

__all__ = [
    "SQLITE_SYNCHRONOUS",
    "lmdb_claim_ack",
    "lmdb_put_batches",
    "lmdb_put_per_txn",
    "sqlite_executemany",
    "sqlite_insert_commit",
    "sqlite_lease_delete",
    "sqlite_lease_delete_batch",
]

SQLITE_SYNCHRONOUS = {"off": 0, "normal": 1, "full": 2}
"""``durability`` name -> ``PRAGMA synchronous`` value."""

_LEASE_SECONDS = 30.0


def _sqlite(workdir: Path, durability: str) -> sqlite3.Connection:
    conn = sqlite3.connect(workdir / "raw.sqlite3", isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS[durability]}")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS q (id INTEGER PRIMARY KEY, payload BLOB NOT NULL,"
        " available_at REAL NOT NULL)"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS q_available ON q (available_at, id)")
    return conn


def _fill(conn: sqlite3.Connection, count: int, payload: bytes) -> None:
    now = time.time()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO q (payload, available_at) VALUES (?, ?)",
        ((payload, now) for _ in range(count)),
    )
    conn.execute("COMMIT")


def sqlite_insert_commit(workdir: Path, count: int, payload: bytes, durability: str) -> float:
    """One INSERT and one COMMIT per message (autocommit)."""
    conn = _sqlite(workdir, durability)
    try:
        start = time.perf_counter()
        for _ in range(count):
            conn.execute(
                "INSERT INTO q (payload, available_at) VALUES (?, ?)", (payload, time.time())
            )
        return time.perf_counter() - start
    finally:
        conn.close()


def sqlite_executemany(
    workdir: Path, count: int, payload: bytes, durability: str, batch: int
) -> float:
    """``executemany`` of ``batch`` rows in one transaction, repeated."""
    conn = _sqlite(workdir, durability)
    try:
        start = time.perf_counter()
        for first in range(0, count, batch):
            now = time.time()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO q (payload, available_at) VALUES (?, ?)",
                ((payload, now) for _ in range(min(batch, count - first))),
            )
            conn.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        conn.close()


_LEASE_SQL = (
    "UPDATE q SET available_at = ? WHERE id IN (SELECT id FROM q WHERE available_at <= ?"
    " ORDER BY available_at, id LIMIT ?) RETURNING id, payload"
)


def sqlite_lease_delete(workdir: Path, count: int, payload: bytes, durability: str) -> float:
    """Lease one row (UPDATE ... RETURNING, commit), then DELETE it (commit)."""
    return sqlite_lease_delete_batch(workdir, count, payload, durability, 1)


def sqlite_lease_delete_batch(
    workdir: Path, count: int, payload: bytes, durability: str, batch: int
) -> float:
    """Lease ``batch`` rows in one transaction, then delete them in a second one."""
    conn = _sqlite(workdir, durability)
    try:
        _fill(conn, count, payload)
        done = 0
        start = time.perf_counter()
        while done < count:
            now = time.time()
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(_LEASE_SQL, (now + _LEASE_SECONDS, now, batch)).fetchall()
            conn.execute("COMMIT")
            if not rows:
                raise RuntimeError("raw sqlite lease found no row")
            if batch == 1:
                conn.execute("DELETE FROM q WHERE id = ?", (rows[0][0],))
            else:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("DELETE FROM q WHERE id = ?", ((row[0],) for row in rows))
                conn.execute("COMMIT")
            done += len(rows)
        return time.perf_counter() - start
    finally:
        conn.close()


def _lmdb(workdir: Path, count: int, payload: bytes, durability: str) -> Any:
    import lmdb

    map_size = max(64 << 20, 4 * count * (len(payload) + 64))
    return lmdb.open(
        str(workdir / "raw.lmdb"),
        map_size=map_size,
        max_dbs=2,
        sync=durability == "sync",
        metasync=durability == "sync",
    )


def _key(number: int) -> bytes:
    return struct.pack(">Q", number)


def lmdb_put_per_txn(workdir: Path, count: int, payload: bytes, durability: str) -> float:
    """One put per write transaction."""
    env = _lmdb(workdir, count, payload, durability)
    try:
        start = time.perf_counter()
        for number in range(count):
            with env.begin(write=True) as txn:
                txn.put(_key(number), payload)
        return time.perf_counter() - start
    finally:
        env.close()


def lmdb_put_batches(
    workdir: Path, count: int, payload: bytes, durability: str, batch: int
) -> float:
    """``batch`` puts per write transaction (``batch >= count``: all in one)."""
    env = _lmdb(workdir, count, payload, durability)
    try:
        start = time.perf_counter()
        for first in range(0, count, batch):
            with env.begin(write=True) as txn:
                for number in range(first, min(first + batch, count)):
                    txn.put(_key(number), payload)
        return time.perf_counter() - start
    finally:
        env.close()


def lmdb_claim_ack(workdir: Path, count: int, payload: bytes, durability: str) -> float:
    """Claim (move the first ready key to an in-flight table, commit), then ack (delete, commit)."""
    env = _lmdb(workdir, count, payload, durability)
    try:
        ready = env.open_db(b"ready")
        inflight = env.open_db(b"inflight")
        with env.begin(write=True, db=ready) as txn:
            for number in range(count):
                txn.put(_key(number), payload)
        lease = struct.pack(">d", time.time() + _LEASE_SECONDS)
        start = time.perf_counter()
        for _ in range(count):
            with env.begin(write=True) as txn:
                cursor = txn.cursor(db=ready)
                if not cursor.first():
                    raise RuntimeError("raw lmdb claim found no key")
                key, value = cursor.item()
                cursor.delete()
                txn.put(key, lease + value, db=inflight)
            with env.begin(write=True) as txn:
                txn.delete(key, db=inflight)
        return time.perf_counter() - start
    finally:
        env.close()
