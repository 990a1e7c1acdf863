"""SQLite-specific damage: damaged pages and indexes, impossible rows, a full disk.

The shared conformance suite (``localqueue.testing.damage``) covers the planted
record damage; these tests damage real files the way disks and editors do.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from localqueue._models import MessageState
from localqueue.errors import StoreCorruptedError, StoreError
from localqueue.stores.sqlite import SQLiteQueueStore
from localqueue.testing.campaigns import fill_to_the_last_byte
from localqueue.testing.campaigns.damage import DAMAGE

CODEC = "msgpack"


def fill(store: SQLiteQueueStore, count: int, queue: str = "q") -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 50):
        batch = [f"{i}".encode() for i in range(start, min(count, start + 50))]
        ids += [m.id for m in store.put_many(queue, batch, codec=CODEC)]
    return ids


def drain(store: SQLiteQueueStore, queue: str = "q", limit: int = 10) -> list[str]:
    delivered: list[str] = []
    while leased := store.lease(queue, lease_timeout=60, limit=limit):
        for m in leased:
            assert store.ack(queue, m.id, lease_token=m.lease_token)
            delivered.append(m.id)
    return delivered


def raw(path: Path, sql: str, *params: object) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def seq_of(message_id: str) -> int:
    return int(message_id[:16], 16)


# -- damaged pages (the damage campaign's scribble) ------------------------------


@pytest.mark.parametrize("count", [300, 500, 2000])
def test_scribbled_file_is_reported_and_its_readable_messages_still_delivered(
    tmp_path: Path, count: int, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "q.db"
    store = SQLiteQueueStore(path)
    ids = fill(store, count)
    store.close()
    DAMAGE["scribble"](path)
    store = SQLiteQueueStore(path)
    try:
        problems = store.check_integrity()  # reports, never raises
        assert problems
        delivered: list[str] = []
        losses = 0
        with caplog.at_level(logging.WARNING, logger="localqueue.stores.sqlite"):
            while True:
                try:
                    delivered += drain(store)
                    break
                except StoreCorruptedError as exc:
                    # Rows nothing could read are reported once, then delivery goes on.
                    assert "lost" in str(exc)  # noqa: PT017 - drained again below
                    losses += 1
                    assert losses == 1
        assert any("repair" in r.getMessage() for r in caplog.records)
        # Most pages were intact: their messages come out, in order, once each.
        assert len(delivered) > count // 2
        assert len(set(delivered)) == len(delivered)
        assert set(delivered) <= set(ids)
        assert delivered == sorted(delivered, key=ids.index)
        # What was not delivered is a dead letter saying it was damaged, or reported lost.
        dead = store.dead_letters("q")
        assert all("damaged" in (m.last_error or "") for m in dead)
        assert losses or len(delivered) + len(dead) == count
        assert store.check_integrity() == []
        assert store.stats("q").total == len(dead)
    finally:
        store.close()


def test_a_damaged_index_page_makes_stats_raise_not_lie(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    store = SQLiteQueueStore(path)
    fill(store, 500)
    store.close()
    DAMAGE["scribble"](path)
    store = SQLiteQueueStore(path)
    try:
        with pytest.raises(StoreCorruptedError):
            store.stats("q")
        lines = store.repair()
        assert any("rebuilt" in line for line in lines)
        stats = store.stats("q")
        assert stats.ready == len(drain(store))
        assert store.repair() == []
    finally:
        store.close()


def test_an_index_entry_without_its_row_does_not_pass_for_an_empty_queue(
    tmp_path: Path,
) -> None:
    path = tmp_path / "q.db"
    store = SQLiteQueueStore(path)
    ids = fill(store, 3)
    store.close()
    # Delete the first row behind the delivery index's back, as a damaged table
    # page leaves it: hide the index from the schema, delete, put the index back.
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA writable_schema = ON")
    entry = conn.execute("SELECT * FROM sqlite_master WHERE name = 'messages_available'").fetchone()
    conn.execute("DELETE FROM sqlite_master WHERE name = 'messages_available'")
    conn.commit()
    conn.close()
    raw(path, "DELETE FROM messages WHERE seq = ?", seq_of(ids[0]))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("INSERT INTO sqlite_master VALUES (?, ?, ?, ?, ?)", entry)
    conn.commit()
    conn.close()
    store = SQLiteQueueStore(path)
    try:
        assert any("messages_available" in line for line in store.check_integrity())
        assert drain(store, limit=1) == ids[1:]
        assert store.check_integrity() == []
        # SQLite cannot tell a lost row from an acked one whose index entry
        # outlived it: what the index remembers is kept as a dead letter.
        (dead,) = store.dead_letters("q")
        assert dead.payload == b""
        assert "damaged page" in (dead.last_error or "")
        assert store.stats("q").total == 1
    finally:
        store.close()


# -- impossible rows -------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        ("codec", b"\xa5\xa5", "codec"),
        ("payload", 42, "payload"),
        ("created_at", "yesterday", "created_at"),
        ("attempts", -3, "attempts"),
        ("dedup_key", b"\x00", "dedup_key"),
        ("failed_at", "never", "failed_at"),
    ],
)
def test_a_row_with_an_impossible_field_is_dead_lettered_and_the_lease_goes_on(
    tmp_path: Path, column: str, value: object, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "q.db"
    store = SQLiteQueueStore(path)
    try:
        a, b, c = fill(store, 3)
        raw(path, f"UPDATE messages SET {column} = ? WHERE seq = ?", value, seq_of(b))
        assert any(b in line and said in line for line in store.check_integrity())
        with caplog.at_level(logging.WARNING, logger="localqueue.stores.sqlite"):
            assert [m.id for m in store.lease("q", lease_timeout=60, limit=10)] == [a, c]
        assert any(b in r.getMessage() for r in caplog.records)
        dead = store.inspect("q", b)
        assert dead is not None
        assert dead.state is MessageState.DEAD
        assert dead.last_error is not None
        assert "damaged" in dead.last_error
        assert said in dead.last_error
        assert store.stats("q").dead == 1
        assert store.check_integrity() == []
    finally:
        store.close()


def test_repair_moves_a_row_with_an_impossible_state_aside(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    store = SQLiteQueueStore(path)
    try:
        a, b = fill(store, 2)
        raw(path, "UPDATE messages SET state = 7 WHERE seq = ?", seq_of(b))
        lines = store.repair()
        assert len(lines) == 1
        assert b in lines[0]
        assert "state" in lines[0]
        assert store.repair() == []
        assert [m.id for m in store.dead_letters("q")] == [b]
        assert drain(store) == [a]
    finally:
        store.close()


def test_damage_record_writes_through_sql_what_a_fresh_handle_also_sees(
    tmp_path: Path,
) -> None:
    path = tmp_path / "q.db"
    store = SQLiteQueueStore(path)
    try:
        (m,) = fill(store, 1)
        store.damage_record("q", m, "record")
        other = SQLiteQueueStore(path)
        try:
            assert any(m in line for line in other.check_integrity())
        finally:
            other.close()
    finally:
        store.close()


# -- a full disk -----------------------------------------------------------------


def fill_the_disk(store: SQLiteQueueStore, payload: int) -> list[str]:
    """Put batches until the store refuses one for a full disk; the ids stored."""
    stored: list[str] = []
    while True:
        try:
            batch = store.put_many("q", [b"x" * payload] * 10, codec=CODEC)
        except StoreError as exc:
            assert "disk is full" in str(exc)  # noqa: PT017 - the loop needs the except
            return stored
        stored += [m.id for m in batch]


@pytest.mark.parametrize(
    ("queue_fills_it", "disk_size", "payload"),
    [(True, "4m", 2000), (True, "16m", 60000), (True, "16m", 300), (False, "4m", 2000)],
    ids=["queue-filled", "queue-filled-big-values", "queue-filled-small-values", "other-filled"],
)
def test_a_completely_full_disk_can_be_drained(
    tmp_path: Path,
    queue_fills_it: bool,
    disk_size: str,
    payload: int,
    small_disk: Callable[[str], AbstractContextManager[Path]],
) -> None:
    with small_disk(disk_size) as disk:
        path = disk / "q.db"
        producer = SQLiteQueueStore(path)
        stored: list[str] = []
        try:
            stored = fill_the_disk(producer, payload) if queue_fills_it else fill(producer, 20)
            fill_to_the_last_byte(disk)
            assert os.statvfs(disk).f_bavail == 0
        finally:
            producer.close()
        assert stored
        consumer = SQLiteQueueStore(path)
        try:
            assert drain(consumer) == stored
            assert consumer.stats("q").total == 0
        finally:
            consumer.close()
