"""Behaviour only the SQLite stores have: URL forms, options, file damage, locking, waking."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localqueue.errors import (
    AttemptStoreLockedError,
    ConfigurationError,
    InvalidOptionError,
    QueueStoreLockedError,
    SchemaVersionError,
    StoreCorruptedError,
    StoreError,
)
from localqueue.registry import open_attempt_store, open_queue_store
from localqueue.stores.sqlite import SCHEMA_VERSION, SQLiteAttemptStore, SQLiteQueueStore
from localqueue.testing.plugin import skip_or_fail_unreachable

CODEC = "msgpack"
# Generous bound for "returns early": far below the wait's own timeout, far above any
# scheduling hiccup on a loaded machine.
PROMPTLY = 15.0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "queue.db"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteQueueStore]:
    handle = SQLiteQueueStore(db)
    yield handle
    handle.close()


# -- URLs and options ----------------------------------------------------------


def test_three_slashes_name_a_path_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_queue_store("sqlite:///jobs.db")
    try:
        store.put("q", b"\x01", codec=CODEC)
    finally:
        store.close()
    assert (tmp_path / "jobs.db").is_file()


def test_four_slashes_a_plain_path_and_a_pathlike_open_the_same_file(db: Path) -> None:
    first = open_queue_store(f"sqlite:///{db}")  # db is absolute: four slashes in all
    try:
        message = first.put("q", b"\x01", codec=CODEC)
    finally:
        first.close()
    for url in (str(db), db):
        other = open_queue_store(url)
        try:
            assert isinstance(other, SQLiteQueueStore)
            found = other.inspect("q", message.id)
            assert found is not None
            assert found.payload == b"\x01"
        finally:
            other.close()


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///", "sqlite://server/jobs.db", "sqlite:///:memory:"]
)
def test_urls_without_a_usable_file_path_are_rejected(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_queue_store(url)


@pytest.mark.parametrize(
    "query",
    [
        "journal=wal",
        "durability=paranoid",
        "timeout=-1",
        "timeout=soon",
        "poll_interval=0",
        "poll_interval=inf",
        "serializer=pickle",
    ],
)
def test_bad_options_raise_invalid_option_error(db: Path, query: str) -> None:
    with pytest.raises(InvalidOptionError):
        open_queue_store(f"sqlite:///{db}?{query}")
    with pytest.raises(InvalidOptionError):
        open_attempt_store(f"sqlite:///{db}?{query}")
    assert not db.exists()


@pytest.mark.parametrize(
    "kwargs",
    [{"durability": "FULL!"}, {"timeout": -1.0}, {"poll_interval": 0.0}, {"timeout": True}],
)
def test_bad_constructor_arguments_raise_configuration_error(
    db: Path, kwargs: dict[str, object]
) -> None:
    with pytest.raises(ConfigurationError):
        SQLiteQueueStore(db, **kwargs)  # type: ignore[arg-type]


def test_options_reach_the_store(db: Path) -> None:
    # ?serializer= is the queue's: checked, then kept from the store.
    store = open_queue_store(f"sqlite:///{db}?serializer=json&durability=normal&timeout=2.5")
    try:
        assert isinstance(store, SQLiteQueueStore)
        assert not hasattr(store, "serializer")
        assert store.durability == "normal"
        assert store.timeout == 2.5
    finally:
        store.close()


@pytest.mark.parametrize(("durability", "synchronous"), [("full", 2), ("normal", 1), ("off", 0)])
def test_durability_sets_pragma_synchronous(db: Path, durability: str, synchronous: int) -> None:
    store = open_queue_store(f"sqlite:///{db}?durability={durability}")
    try:
        # synchronous is a per-connection setting: only the store's own connection shows it.
        conn = store._db.conn  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == synchronous
    finally:
        store.close()


def test_default_durability_is_full(store: SQLiteQueueStore) -> None:
    assert store.durability == "full"


def test_the_file_is_in_wal_mode_with_the_schema_version_recorded(
    store: SQLiteQueueStore, db: Path
) -> None:
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()


def test_queue_and_attempt_stores_share_one_file(db: Path) -> None:
    queue = open_queue_store(db)
    attempts = open_attempt_store(db)
    try:
        assert isinstance(attempts, SQLiteAttemptStore)
        message = queue.put("q", b"\x01", codec=CODEC)
        assert attempts.begin_attempt(message.id).attempts == 1
        assert queue.stats("q").ready == 1
        assert attempts.begin_attempt(message.id).attempts == 2
    finally:
        queue.close()
        attempts.close()


# -- damaged and foreign files -------------------------------------------------


def test_a_newer_schema_version_is_refused_and_left_alone(db: Path) -> None:
    raw = sqlite3.connect(db)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    before = db.read_bytes()
    with pytest.raises(SchemaVersionError) as info:
        SQLiteQueueStore(db)
    assert info.value.found == SCHEMA_VERSION + 1
    assert info.value.supported == SCHEMA_VERSION
    with pytest.raises(SchemaVersionError):
        SQLiteAttemptStore(db)
    assert db.read_bytes() == before


def test_a_file_that_is_not_a_database_is_reported_corrupted(db: Path) -> None:
    garbage = b"this is not a database, just some text " * 200
    db.write_bytes(garbage)
    with pytest.raises(StoreCorruptedError, match="not a SQLite database"):
        SQLiteQueueStore(db)
    assert db.read_bytes() == garbage


def test_a_truncated_database_is_reported_corrupted(db: Path) -> None:
    store = SQLiteQueueStore(db)
    store.put_many("q", [os.urandom(3000) for _ in range(200)], codec=CODEC)
    store.close()
    with db.open("r+b") as f:
        f.truncate(db.stat().st_size // 2)
    # SQLite notices the missing pages when it reads the schema, at open.
    with pytest.raises(StoreCorruptedError):
        SQLiteQueueStore(db)


def test_a_foreign_sqlite_database_is_not_taken_over(db: Path) -> None:
    raw = sqlite3.connect(db)
    raw.execute("CREATE TABLE messages (body TEXT)")
    raw.commit()
    raw.close()
    with pytest.raises(StoreCorruptedError, match="not a localqueue store"):
        SQLiteQueueStore(db)


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open"):
        SQLiteQueueStore(tmp_path / "missing" / "queue.db")


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable: chmod for a normal user, the immutable flag for root."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], check=False).returncode:
        skip_or_fail_unreachable("running as root and cannot set the immutable flag")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


def test_a_read_only_file_can_be_read_but_writes_raise_store_error(db: Path) -> None:
    store = SQLiteQueueStore(db)
    kept = store.put("q", b"\x01", codec=CODEC)
    store.close()
    with _read_only(db):
        store = SQLiteQueueStore(db)
        try:
            assert store.stats("q").ready == 1
            with pytest.raises(StoreError, match="read-only"):
                store.put("q", b"\x02", codec=CODEC)
            found = store.inspect("q", kept.id)
            assert found is not None
            assert found.payload == b"\x01"
        finally:
            store.close()


_FILL_DISK = """
import json, sys
from localqueue.errors import StoreError, StoreCorruptedError
from localqueue.stores.sqlite import SQLiteQueueStore
store = SQLiteQueueStore(sys.argv[1])
stored, error = 0, None
try:
    while True:
        store.put("q", b"x" * 65536, codec="msgpack")
        stored += 1
except StoreError as exc:
    error = exc
print(json.dumps({
    "stored": stored,
    "error": str(error),
    "corrupted": isinstance(error, StoreCorruptedError),
    "ready": store.stats("q").ready,
}))
"""


def test_a_full_disk_raises_store_error_and_keeps_what_was_stored(tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    if unshare is None or sys.platform != "linux":
        skip_or_fail_unreachable("needs unshare(1) to mount a small private tmpfs")
    mount = tmp_path / "small"
    mount.mkdir()
    # A private mount namespace: the 1 MiB tmpfs vanishes with the child process.
    script = (
        f"mount -t tmpfs -o size=1m tmpfs {mount} || exit 77; "
        f'exec {sys.executable} -c "$0" {mount}/queue.db'
    )
    result = subprocess.run(
        [unshare, "-Urm", "sh", "-c", script, _FILL_DISK],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    if result.returncode in (1, 77) and "Traceback" not in result.stderr:
        skip_or_fail_unreachable(f"cannot mount a private tmpfs here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["stored"] > 0
    assert "disk is full" in outcome["error"]
    assert not outcome["corrupted"]
    assert outcome["ready"] == outcome["stored"]


# -- locking -------------------------------------------------------------------


def _hold_write_lock(db: Path, seconds: float) -> threading.Thread:
    """Take the database's write lock from a raw connection and keep it for ``seconds``."""
    taken = threading.Event()

    def hold() -> None:
        raw = sqlite3.connect(db, isolation_level=None)
        raw.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        raw.execute("COMMIT")
        raw.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(30)
    return thread


def test_lock_contention_within_the_timeout_is_waited_out(db: Path) -> None:
    store = SQLiteQueueStore(db, timeout=30)
    attempts = SQLiteAttemptStore(db, timeout=30)
    try:
        holder = _hold_write_lock(db, 0.3)
        message = store.put("q", b"\x01", codec=CODEC)
        leased = store.lease("q", lease_timeout=30)
        assert [m.id for m in leased] == [message.id]
        holder.join()
        holder = _hold_write_lock(db, 0.3)
        assert attempts.begin_attempt("k").attempts == 1
        assert store.ack("q", message.id, lease_token=leased[0].lease_token)
        holder.join()
    finally:
        store.close()
        attempts.close()


def test_lock_held_past_the_timeout_raises_locked_errors_and_stores_nothing(db: Path) -> None:
    store = SQLiteQueueStore(db, timeout=0.1)
    attempts = SQLiteAttemptStore(db, timeout=0.1)
    try:
        holder = _hold_write_lock(db, 2.0)
        with pytest.raises(QueueStoreLockedError, match="timeout"):
            store.put("q", b"\x01", codec=CODEC)
        with pytest.raises(QueueStoreLockedError):
            store.put_many("q", [b"\x01", b"\x02"], codec=CODEC)
        with pytest.raises(AttemptStoreLockedError):
            attempts.begin_attempt("k")
        holder.join()
        assert store.stats("q").total == 0
        assert attempts.get_record("k") is None
    finally:
        store.close()
        attempts.close()


# -- waiting -------------------------------------------------------------------


def test_wait_wakes_when_another_store_in_this_process_puts(db: Path) -> None:
    waiter = SQLiteQueueStore(db)
    producer = SQLiteQueueStore(db)
    try:
        timer = threading.Timer(0.2, lambda: producer.put("q", b"\x01", codec=CODEC))
        started = time.monotonic()
        timer.start()
        waiter.wait("q", 60)
        timer.join()
        assert time.monotonic() - started < PROMPTLY
        assert len(waiter.lease("q", lease_timeout=30)) == 1
    finally:
        waiter.close()
        producer.close()


_PUT_LATER = """
import sys, time
from localqueue.stores.sqlite import SQLiteQueueStore
store = SQLiteQueueStore(sys.argv[1])
time.sleep(0.3)
store.put("q", b"\\x01", codec="msgpack")
store.close()
"""


def test_wait_wakes_when_another_process_puts(db: Path) -> None:
    waiter = SQLiteQueueStore(db, poll_interval=0.01)
    try:
        started = time.monotonic()
        child = subprocess.Popen([sys.executable, "-c", _PUT_LATER, str(db)])
        try:
            while waiter.stats("q").total == 0 and time.monotonic() - started < 60:
                waiter.wait("q", 60)
        finally:
            assert child.wait(timeout=120) == 0
        # Returning at all before 60 s shows the other process's write was noticed.
        assert time.monotonic() - started < 60
        assert waiter.stats("q").ready == 1
    finally:
        waiter.close()


def test_wait_returns_when_a_delayed_message_becomes_due(store: SQLiteQueueStore) -> None:
    store.put("q", b"\x01", codec=CODEC, delay=0.3)
    started = time.monotonic()
    store.wait("q", 60)
    assert time.monotonic() - started < PROMPTLY
    while not store.lease("q", lease_timeout=30):
        assert time.monotonic() - started < PROMPTLY
        store.wait("q", 1)


def test_wait_returns_at_once_when_a_message_is_available(store: SQLiteQueueStore) -> None:
    store.put("q", b"\x01", codec=CODEC)
    started = time.monotonic()
    store.wait("q", 60)
    assert time.monotonic() - started < PROMPTLY


def test_wait_ends_when_the_store_is_closed(db: Path) -> None:
    store = SQLiteQueueStore(db)
    timer = threading.Timer(0.2, store.close)
    started = time.monotonic()
    timer.start()
    store.wait("q", 60)
    timer.join()
    assert time.monotonic() - started < PROMPTLY


# -- many processes ------------------------------------------------------------

_OPEN_AND_PUT = """
import sys
from localqueue.stores.sqlite import SQLiteQueueStore
store = SQLiteQueueStore(sys.argv[1], timeout=60)
store.put("q", sys.argv[2].encode(), codec="msgpack")
store.close()
"""


def test_processes_creating_the_same_new_file_at_once_all_succeed(db: Path) -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AND_PUT, str(db), str(n)], stderr=subprocess.PIPE
        )
        for n in range(4)
    ]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode()
    store = SQLiteQueueStore(db)
    try:
        payloads = sorted(m.payload for m in store.lease("q", lease_timeout=60, limit=10))
    finally:
        store.close()
    assert payloads == [b"0", b"1", b"2", b"3"]


_WORKER = """
import sys
from localqueue.stores.sqlite import SQLiteQueueStore
path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = SQLiteQueueStore(path, durability="normal", timeout=60)
acked = []
for i in range(count):
    if i % 10 == 0:
        store.put_many("q", [f"{name}-{i}-{j}".encode() for j in range(5)], codec="msgpack")
    else:
        store.put("q", f"{name}-{i}".encode(), codec="msgpack")
    for message in store.lease("q", lease_timeout=60, leased_by=name, limit=2):
        if store.ack("q", message.id, lease_token=message.lease_token):
            acked.append(message.payload.decode())
store.close()
print("\\n".join(acked))
"""


def test_several_processes_mixing_puts_leases_and_acks_lose_and_repeat_nothing(
    db: Path,
) -> None:
    SQLiteQueueStore(db).close()
    workers = 4
    count = 60
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(db), f"w{n}", str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(workers)
    ]
    acked: list[str] = []
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        acked.extend(line for line in out.splitlines() if line)
    store = SQLiteQueueStore(db)
    try:
        left = store.lease("q", lease_timeout=60, limit=1000)
    finally:
        store.close()
    delivered = acked + [m.payload.decode() for m in left]
    expected = {
        f"w{n}-{i}-{j}" if i % 10 == 0 else f"w{n}-{i}"
        for n in range(workers)
        for i in range(count)
        for j in (range(5) if i % 10 == 0 else [0])
    }
    assert len(delivered) == len(set(delivered)), "a message was acked twice"
    assert set(delivered) == expected
