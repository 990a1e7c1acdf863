"""Files written by localqueue 0.2.0 open with their data or not at all (issue 13 item 3).

The fixtures are real 0.2.0 files (tests/fixtures/legacy_0_2_0/README.md says
how they were made); every test works on copies in ``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

import localqueue
from localqueue import (
    Empty,
    LegacyStoreError,
    PersistentQueue,
    SchemaVersionError,
    StoreError,
    migrate_legacy,
)
from localqueue.stores import _legacy_0_2_0
from localqueue.stores._sqlite_db import SCHEMA_STATEMENTS
from localqueue.stores.lmdb import LMDBAttemptStore, LMDBQueueStore
from localqueue.stores.sqlite import SQLiteAttemptStore, SQLiteQueueStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "legacy_0_2_0"

# The ready values of queue "emails", in the order 0.2.0 delivers them; the
# leased message's lease has run out, so it comes back after them.
EMAILS = [
    {"to": "user@example.com", "tags": ["a", "b"]},
    "plain text é",
    42,
    3.5,
    True,
    None,
    [1, "two", {"three": 3}],
    {"leased": True},
]
REPORTS = [{"report": 1}, {"report": 2}]
COUNTS = {
    "emails": {"ready": 7, "delayed": 1, "inflight": 1, "dead": 1},
    "reports": {"ready": 2, "delayed": 0, "inflight": 0, "dead": 0},
}


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """A copy of the fixture files."""
    target = tmp_path / "legacy"
    shutil.copytree(FIXTURES, target, ignore=shutil.ignore_patterns("README.md"))
    return target


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


def _legacy_rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM queue_messages ORDER BY queue, id").fetchall()
    finally:
        conn.close()


# -- refusal ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("store", "name"),
    [(SQLiteQueueStore, "queue.sqlite"), (SQLiteAttemptStore, "retries.sqlite")],
)
def test_sqlite_stores_refuse_a_0_2_0_file_naming_the_migrate_command(
    legacy: Path, store: type[SQLiteQueueStore] | type[SQLiteAttemptStore], name: str
) -> None:
    path = legacy / name
    before = _tables(path)
    with pytest.raises(LegacyStoreError) as caught:
        store(path)
    error = caught.value
    assert isinstance(error, SchemaVersionError)
    assert f"`localqueue migrate {path}`" in str(error)
    assert "localqueue 0.2.0" in str(error)
    assert error.path == str(path)
    # Nothing was created beside the old tables.
    assert _tables(path) == before
    assert not os.path.exists(f"{path}{_legacy_0_2_0.BACKUP_SUFFIX}")


def test_the_queue_refuses_a_0_2_0_file_through_its_url(legacy: Path) -> None:
    with pytest.raises(LegacyStoreError, match="localqueue migrate"):
        PersistentQueue("emails", f"sqlite:///{legacy / 'queue.sqlite'}")


def test_a_0_2_0_file_an_earlier_release_opened_is_refused_and_migrated(legacy: Path) -> None:
    # This project's first releases created their empty tables beside 0.2.0's.
    path = legacy / "queue.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in SCHEMA_STATEMENTS:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with pytest.raises(LegacyStoreError):
        SQLiteQueueStore(path)
    report = migrate_legacy(path)
    assert report.messages == COUNTS
    with SQLiteQueueStore(path) as store:
        assert store.stats("emails").total == 10


@pytest.mark.parametrize(
    ("store", "name"), [(LMDBQueueStore, "queue.lmdb"), (LMDBAttemptStore, "retries.lmdb")]
)
def test_lmdb_stores_refuse_a_0_2_0_environment(
    legacy: Path, store: type[LMDBQueueStore] | type[LMDBAttemptStore], name: str
) -> None:
    data = (legacy / name / "data.mdb").read_bytes()
    with pytest.raises(LegacyStoreError, match=r"localqueue 0\.2\.0") as caught:
        store(legacy / name)
    assert "LMDB" in str(caught.value)
    assert (legacy / name / "data.mdb").read_bytes() == data


def test_migrate_refuses_an_lmdb_environment(legacy: Path) -> None:
    with pytest.raises(StoreError, match="SQLite files only"):
        migrate_legacy(legacy / "queue.lmdb")


# -- migration -------------------------------------------------------------------------


def test_migrating_the_queue_file_keeps_every_message(legacy: Path) -> None:
    path = legacy / "queue.sqlite"
    original = _legacy_rows(path)
    report = migrate_legacy(path)
    assert report.migrated
    assert report.messages == COUNTS
    assert (report.retry_records, report.exhausted) == (0, 0)
    assert report.backup == f"{path}.bak-0.2.0"
    # The backup is the 0.2.0 file as it was.
    assert _legacy_rows(Path(report.backup)) == original
    assert _tables(path) == {"messages", "retry_records"}

    with SQLiteQueueStore(path) as store:
        stats = store.stats("emails")
        # The leased message's lease ran out long ago: it is ready again.
        assert (stats.ready, stats.delayed, stats.inflight, stats.dead) == (8, 1, 0, 1)
        assert store.stats("reports").ready == 2
        assert sorted(store.queues()) == ["emails", "reports"]
        (dead,) = store.dead_letters("emails")
        assert dead.codec == "json"
        assert dead.last_error == "ValueError: bad address"
        assert dead.failed_at is not None
        assert dead.attempts == 1
        assert store.check_integrity() == []

    conn = sqlite3.connect(path)
    leased = conn.execute(
        "SELECT state, attempts, leased_by, lease_token FROM messages WHERE leased_by IS NOT NULL"
    ).fetchall()
    conn.close()
    assert len(leased) == 1
    state, attempts, leased_by, token = leased[0]
    assert (state, attempts, leased_by) == (1, 1, "worker-1")  # 1: leased
    assert token

    url = f"sqlite:///{path}"
    for name, expected in (("emails", EMAILS), ("reports", REPORTS)):
        with PersistentQueue(name, url) as queue:
            delivered = []
            while True:
                try:
                    message = queue.get_message(block=False)
                except Empty:
                    break
                delivered.append(message.value)
                queue.ack(message)
            assert delivered == expected
    with PersistentQueue("emails", url) as queue:
        stats = queue.stats()
        assert (stats.ready, stats.delayed, stats.dead) == (0, 1, 1)
        (dead,) = queue.dead_letters()
        assert dead.value == {"dead": True}


def test_migrating_the_retry_file_keeps_every_budget(legacy: Path) -> None:
    path = legacy / "retries.sqlite"
    conn = sqlite3.connect(path)
    first = dict(
        conn.execute(
            "SELECT key, json_extract(record_json, '$.first_attempt_at') FROM retry_records"
        )
    )
    conn.close()
    report = migrate_legacy(path)
    assert (report.retry_records, report.exhausted, report.messages) == (3, 1, {})
    with SQLiteAttemptStore(path) as store:
        records = {key: store.get_record(key) for key in ("job-1", "job-2", "job-3")}
        assert store.get_record("job-4") is None
    assert {k: (r.attempts, r.exhausted) for k, r in records.items() if r} == {
        "job-1": (1, False),
        "job-2": (3, False),
        "job-3": (5, True),
    }
    for key, record in records.items():
        assert record is not None
        assert record.first_attempt_at == first[key]
        assert record.last_attempt_at == first[key]
        assert record.last_error is None


def test_a_second_migration_has_nothing_to_do(legacy: Path) -> None:
    path = legacy / "queue.sqlite"
    migrate_legacy(path)
    backup = Path(f"{path}.bak-0.2.0").read_bytes()
    again = migrate_legacy(path)
    assert not again.migrated
    assert again.backup is None
    assert again.messages == {}
    assert Path(f"{path}.bak-0.2.0").read_bytes() == backup
    with SQLiteQueueStore(path) as store:
        assert store.stats("emails").total == 10


def test_a_file_of_this_release_has_nothing_to_migrate(tmp_path: Path) -> None:
    path = tmp_path / "ours.sqlite3"
    with PersistentQueue("q", f"sqlite:///{path}") as queue:
        queue.put("x")
    report = migrate_legacy(path)
    assert not report.migrated
    assert not os.path.exists(f"{path}.bak-0.2.0")


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store file"):
        migrate_legacy(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()


def test_the_api_is_exported() -> None:
    assert localqueue.migrate_legacy is _legacy_0_2_0.migrate_legacy
    assert localqueue.LegacyMigration is _legacy_0_2_0.LegacyMigration


# -- failed migrations change nothing --------------------------------------------------


def _assert_untouched(path: Path, rows: list[tuple[object, ...]]) -> None:
    assert _tables(path) == {"queue_messages", "queue_sequences"}
    assert _legacy_rows(path) == rows
    assert not os.path.exists(f"{path}.bak-0.2.0")
    with pytest.raises(LegacyStoreError):
        SQLiteQueueStore(path)


def test_an_existing_backup_is_never_overwritten(legacy: Path) -> None:
    path = legacy / "queue.sqlite"
    rows = _legacy_rows(path)
    Path(f"{path}.bak-0.2.0").write_bytes(b"someone's file")
    with pytest.raises(StoreError, match="already exists"):
        migrate_legacy(path)
    assert Path(f"{path}.bak-0.2.0").read_bytes() == b"someone's file"
    os.unlink(f"{path}.bak-0.2.0")
    _assert_untouched(path, rows)


def test_a_bad_row_stops_the_migration_before_anything_changes(legacy: Path) -> None:
    path = legacy / "queue.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO queue_messages VALUES ('emails', 'broken', 'not json', 'ready', 0, NULL, 99)"
    )
    conn.commit()
    conn.close()
    rows = _legacy_rows(path)
    with pytest.raises(
        StoreError, match=r"message 'broken' of queue 'emails'.*nothing was changed"
    ):
        migrate_legacy(path)
    _assert_untouched(path, rows)


def test_a_bad_retry_record_stops_the_migration(legacy: Path) -> None:
    path = legacy / "retries.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO retry_records VALUES ('job-9', '{\"attempts\": -1}')")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="retry record 'job-9'"):
        migrate_legacy(path)
    assert not os.path.exists(f"{path}.bak-0.2.0")
    with pytest.raises(LegacyStoreError):
        SQLiteAttemptStore(path)


def test_a_failure_inside_the_transaction_rolls_everything_back(
    legacy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = legacy / "queue.sqlite"
    rows = _legacy_rows(path)
    # The schema is created, then a statement fails: the DDL must roll back too.
    monkeypatch.setattr(
        _legacy_0_2_0, "SCHEMA_STATEMENTS", (*SCHEMA_STATEMENTS, "CREATE TABLE messages (x)")
    )
    with pytest.raises(StoreError, match="migration failed, nothing was changed"):
        migrate_legacy(path)
    _assert_untouched(path, rows)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_changes_nothing(legacy: Path) -> None:
    path = legacy / "queue.sqlite"
    rows = _legacy_rows(path)
    legacy.chmod(0o555)
    try:
        with pytest.raises(StoreError):
            migrate_legacy(path)
    finally:
        legacy.chmod(0o755)
    _assert_untouched(path, rows)


def test_a_backup_that_cannot_be_written_changes_nothing(legacy: Path) -> None:
    path = legacy / "queue.sqlite"
    rows = _legacy_rows(path)
    # Works as root too: the temporary copy's name is taken by a directory.
    blocker = Path(f"{path}.bak-0.2.0.tmp-{os.getpid()}")
    blocker.mkdir()
    with pytest.raises(StoreError, match="cannot write the backup copy"):
        migrate_legacy(path)
    blocker.rmdir()
    _assert_untouched(path, rows)
