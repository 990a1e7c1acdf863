"""A minimal stand-in for the liteq single-file queue (github.com/unkloud/liteq).

liteq is not on PyPI and its repository states no licence, so none of its code
is copied here. This module re-implements, in a few lines of our own, the parts
of its design that decide its speed, as read from its published source:

* a new ``sqlite3`` connection for every call, which sets ``PRAGMA synchronous``
  (liteq hard-codes ``NORMAL``; here it is a parameter so runs at ``FULL`` compare
  like with like) and the database in WAL mode;
* one ``liteq_messages`` table keyed by a UUIDv7 text id, with an index on
  ``(queue_name, visible_after, created_at)``, times in whole seconds;
* ``put``: one INSERT in autocommit; ``put_batch``: up to 50 rows in one transaction;
* ``pop``: ``BEGIN IMMEDIATE``, SELECT the oldest visible row, UPDATE its
  ``visible_after`` and ``retry_count``, COMMIT; polling every 50 ms when asked
  to wait (its default ``pause_on_empty_fetch``);
* ``delete`` (the ack): one DELETE in autocommit.

Left out because a benchmark never reaches them: the dead-letter table and the
retry-on-id-collision loop.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from dataclasses import dataclass

__all__ = ["MAX_BATCH", "LiteqEquivalent", "LiteqMessage"]

MAX_BATCH = 50
"""liteq refuses batches larger than this."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS liteq_messages (
    id TEXT PRIMARY KEY,
    queue_name TEXT NOT NULL DEFAULT 'default',
    data BLOB NOT NULL,
    visible_after INTEGER,
    retry_count INTEGER DEFAULT 0,
    created_at INTEGER
);
CREATE INDEX IF NOT EXISTS idx_pop ON liteq_messages (queue_name, visible_after, created_at);
"""


def _uuid7() -> str:
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis << 80) | (0x7 << 76) | (rand & ((1 << 76) - 1))
    value = (value & ~(0xC << 60)) | (0x8 << 60)  # RFC 4122 variant bits
    return str(uuid.UUID(int=value))


@dataclass(frozen=True)
class LiteqMessage:
    """A popped message."""

    id: str
    data: bytes
    retry_count: int


class LiteqEquivalent:
    """liteq's access pattern over one SQLite file.

    Args:
        filename: The database file.
        synchronous: ``PRAGMA synchronous`` set on every connection (liteq: ``NORMAL``).
    """

    def __init__(self, filename: str, synchronous: str = "NORMAL") -> None:
        self.filename = filename
        self.synchronous = synchronous
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.filename, timeout=5, isolation_level=None)
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn

    def put(self, data: bytes, qname: str = "default") -> str:
        """Insert one message in its own transaction."""
        now = int(time.time())
        msg_id = _uuid7()
        conn = self._connect()
        try:
            conn.execute(
                "INSERT INTO liteq_messages (id, queue_name, data, visible_after, retry_count,"
                " created_at) VALUES (?, ?, ?, ?, 0, ?)",
                (msg_id, qname, data, now, now),
            )
        finally:
            conn.close()
        return msg_id

    def put_batch(self, messages: list[bytes], qname: str = "default") -> list[str]:
        """Insert up to :data:`MAX_BATCH` messages in one transaction."""
        if len(messages) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} messages per batch")
        now = int(time.time())
        ids = [_uuid7() for _ in messages]
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO liteq_messages (id, queue_name, data, visible_after, retry_count,"
                " created_at) VALUES (?, ?, ?, ?, 0, ?)",
                [(i, qname, d, now, now) for i, d in zip(ids, messages, strict=True)],
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        return ids

    def pop(
        self, qname: str = "default", invisible_seconds: int = 60, wait_seconds: float = 0
    ) -> LiteqMessage | None:
        """Lease the oldest visible message, polling every 50 ms up to ``wait_seconds``."""
        deadline = time.monotonic() + wait_seconds
        conn = self._connect()
        try:
            while True:
                message = self._try_pop(conn, qname, invisible_seconds)
                if message is not None or time.monotonic() >= deadline:
                    return message
                time.sleep(0.05)
        finally:
            conn.close()

    @staticmethod
    def _try_pop(
        conn: sqlite3.Connection, qname: str, invisible_seconds: int
    ) -> LiteqMessage | None:
        now = int(time.time())
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT id, data, retry_count FROM liteq_messages WHERE queue_name = ?"
                " AND visible_after <= ? ORDER BY created_at LIMIT 1",
                (qname, now),
            ).fetchone()
            if row is None:
                conn.execute("ROLLBACK")
                return None
            conn.execute(
                "UPDATE liteq_messages SET visible_after = ?, retry_count = retry_count + 1"
                " WHERE id = ?",
                (now + invisible_seconds, row[0]),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return LiteqMessage(row[0], row[1], row[2])

    def delete(self, msg_id: str) -> None:
        """Ack: delete the message in its own transaction."""
        conn = self._connect()
        try:
            conn.execute("DELETE FROM liteq_messages WHERE id = ?", (msg_id,))
        finally:
            conn.close()
