"""Damaged files, full disks, read-only disks and newer schemas give typed errors,
and the messages that were not damaged stay deliverable."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from localqueue import PersistentQueue
from localqueue.errors import (
    SchemaVersionError,
    StoreCorruptedError,
    StoreError,
)
from localqueue.protocols import IntegrityCheckable
from localqueue.registry import open_queue_store
from localqueue.testing.campaigns import DAMAGE, run_damage, run_disk_full
from localqueue.testing.plugin import skip_or_fail_unreachable

ENGINES = ["sqlite", "lmdb"]


def url_for(engine: str, folder: Path) -> str:
    if engine == "sqlite":
        return f"sqlite:///{folder}/q.sqlite3"
    return f"lmdb:///{folder}/q-lmdb?map_size=1048576"


def data_file(engine: str, folder: Path) -> Path:
    return folder / "q.sqlite3" if engine == "sqlite" else folder / "q-lmdb" / "data.mdb"


@pytest.mark.parametrize("engine", ENGINES)
def test_garbled_file_is_reported_as_corrupted(engine: str, tmp_path: Path) -> None:
    url = url_for(engine, tmp_path)
    open_queue_store(url).close()
    path = data_file(engine, tmp_path)
    path.write_bytes(b"this is not a database at all" * 300)
    with pytest.raises(StoreCorruptedError):
        open_queue_store(url).stats("q")


@pytest.mark.parametrize("engine", ENGINES)
def test_truncated_file_is_a_typed_error(engine: str, tmp_path: Path) -> None:
    # No LMDB disk reserve: a third of the file must cut into pages in use.
    url = url_for(engine, tmp_path) + ("&disk_reserve=0" if engine == "lmdb" else "")
    queue = PersistentQueue("q", url)
    queue.put_many(list(range(500)))
    queue.close()
    path = data_file(engine, tmp_path)
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 3)
    with pytest.raises(StoreError):
        drain(url)


def drain(url: str) -> None:
    store = open_queue_store(url)
    try:
        for _ in range(600):
            for m in store.lease("q", lease_timeout=60, limit=10):
                store.ack("q", m.id, lease_token=m.lease_token)
    finally:
        store.close()


def fill(queue: PersistentQueue, value: object) -> None:
    for _ in range(200):
        queue.put_many([value] * 50)


def put_one(url: str) -> None:
    store = open_queue_store(url)
    try:
        store.put("q", b"new", codec="msgpack")
    finally:
        store.close()


def test_newer_sqlite_schema_is_refused_untouched(tmp_path: Path) -> None:
    url = url_for("sqlite", tmp_path)
    PersistentQueue("q", url).put("keep")
    path = data_file("sqlite", tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError) as info:
        open_queue_store(url).stats("q")
    assert info.value.found == 999
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (999,)
    conn.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_full_disk_is_a_typed_error_and_keeps_what_was_stored(
    engine: str, tmp_path: Path, small_disk: Callable[[str], AbstractContextManager[Path]]
) -> None:
    with small_disk("1m") as disk:
        url = url_for(engine, disk)
        queue = PersistentQueue("q", url)
        kept = [queue.put({"n": i}).id for i in range(20)]
        with pytest.raises(StoreError):
            fill(queue, "x" * 4096)
        stored = queue.stats().total
        # The messages from before the disk filled up are intact and deliverable.
        for message_id in kept:
            assert queue.inspect(message_id).value is not None
        delivered = queue.get_messages(20)
        assert [m.id for m in delivered] == kept
        assert queue.ack_many(delivered) == 20
        assert queue.stats().total == stored - 20
        queue.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_read_only_disk_refuses_writes_and_keeps_messages(
    engine: str, tmp_path: Path, small_disk: Callable[[str], AbstractContextManager[Path]]
) -> None:
    with small_disk("8m") as disk:
        url = url_for(engine, disk)
        queue = PersistentQueue("q", url)
        kept = queue.put("keep").id
        queue.close()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        with pytest.raises(StoreError):
            put_one(url)
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        with PersistentQueue("q", url) as again:
            assert again.inspect(kept).value == "keep"
            assert again.stats().total == 1


def test_sqlite_integrity_check_reports_an_impossible_row(tmp_path: Path) -> None:
    url = url_for("sqlite", tmp_path)
    queue = PersistentQueue("q", url)
    bad = queue.put("bad").id
    good = queue.put("good").id
    assert isinstance(queue.store, IntegrityCheckable)
    assert queue.store.check_integrity() == []
    conn = sqlite3.connect(data_file("sqlite", tmp_path))
    conn.execute("UPDATE messages SET state = 7 WHERE seq = ?", (int(bad[:16], 16),))
    conn.commit()
    conn.close()
    problems = queue.store.check_integrity()
    assert len(problems) == 1
    assert bad in problems[0]
    assert queue.inspect(good).value == "good"
    queue.close()


def test_lmdb_integrity_check_reports_a_stray_index_entry(tmp_path: Path) -> None:
    import lmdb

    url = url_for("lmdb", tmp_path)
    queue = PersistentQueue("q", url)
    queue.put("good")
    assert isinstance(queue.store, IntegrityCheckable)
    assert queue.store.check_integrity() == []
    queue.close()
    env = lmdb.open(str(tmp_path / "q-lmdb"), max_dbs=8, subdir=True)
    with env.begin(write=True) as txn:
        ready = env.open_db(b"ready", txn=txn)
        txn.put(b"q\0" + b"\xff" * 20, b"\x00no-such-message", db=ready)
    env.close()
    with PersistentQueue("q", url) as again:
        assert isinstance(again.store, IntegrityCheckable)
        problems = again.store.check_integrity()
        assert any("missing" in p for p in problems), problems
        assert again.get_nowait() == "good"


@pytest.mark.parametrize("engine", ENGINES)
def test_damage_campaign_gives_only_typed_errors(
    engine: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_damage(url_for(engine, tmp_path), messages=300)
    with capsys.disabled():
        print("\n" + report.line())
    assert report.skipped is None
    # Every file damage, and both kinds of record damage the store plants on itself.
    assert report.extra["cases"] == len(DAMAGE) + {"sqlite": 1, "lmdb": 2}[engine]
    assert report.errors == 0, report.problems
    assert report.blocked == 0, report.problems
    assert report.extra["dead-damaged"] >= 30  # the damaged records were kept as dead letters
    assert not report.failed, report.problems
    assert not any(tmp_path.iterdir())  # the campaign damaged copies, never the URL's files


@pytest.mark.parametrize("engine", ENGINES)
def test_disk_full_campaign_drains_a_disk_full_to_the_last_byte(
    engine: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The map is far larger than the disk, so it is the disk that fills up.
    url = url_for(engine, tmp_path).replace("map_size=1048576", "map_size=67108864")
    report = run_disk_full(url, size="2m")
    with capsys.disabled():
        print("\n" + report.line())
    if report.skipped is not None:
        skip_or_fail_unreachable(report.skipped)
    assert report.extra["stored"] > 100
    assert report.extra["delivered"] == report.extra["stored"]
    assert not report.failed, report.problems
