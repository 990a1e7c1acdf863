"""Behaviour specific to the PostgreSQL backend: URLs, schema, locks, notifications, restarts."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import localqueue_postgres
import psycopg
import pytest
from localqueue_postgres import PostgresAttemptStore, PostgresQueueStore
from localqueue_postgres._config import PostgresConfig
from psycopg import sql

from localqueue import registry
from localqueue.errors import (
    AttemptStoreLockedError,
    ConfigurationError,
    InvalidOptionError,
    QueueStoreLockedError,
    SchemaVersionError,
    StoreCorruptedError,
    StoreError,
)
from localqueue.protocols import AttemptStore, QueueStore
from localqueue.queue import PersistentQueue
from localqueue.registry import open_attempt_store, open_queue_store
from localqueue.urls import StoreURL

pytestmark = pytest.mark.services

SchemaURL = Callable[..., str]
SECRET = "hunter2-do-not-print"
BASE_URL = os.environ.get("LOCALQUEUE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def open_store() -> Iterator[Callable[[str], QueueStore]]:
    """Opens queue stores that are closed after the test."""
    opened: list[QueueStore] = []

    def make(url: str) -> QueueStore:
        opened.append(open_queue_store(url))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


def admin_connect() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(BASE_URL, autocommit=True, connect_timeout=3)


def schema_of(url: str) -> str:
    return StoreURL.parse(url).query["schema"]


def with_password(url: str, password: str = SECRET) -> str:
    return url.replace("://postgres@", f"://postgres:{password}@", 1)


# -- registration and URLs ------------------------------------------------------------


def test_both_schemes_resolve_through_the_entry_point() -> None:
    ours: object = localqueue_postgres.backend
    assert registry.get_backend("postgresql") is ours
    assert registry.get_backend("postgres") is ours
    assert "postgresql" in registry.available_schemes()


def test_postgres_scheme_opens_the_same_tables(
    schema_url: SchemaURL, open_store: Callable[[str], QueueStore]
) -> None:
    url = schema_url()
    open_store(url).put("jobs", b"a", codec="msgpack")
    other = open_store(url.replace("postgresql://", "postgres://", 1))
    assert isinstance(other, PostgresQueueStore)
    assert other.stats("jobs").ready == 1


def test_unknown_option_is_rejected_before_connecting() -> None:
    with pytest.raises(InvalidOptionError, match="shema"):
        open_queue_store("postgresql://postgres@127.0.0.1:1/test?shema=x")


def test_pool_bounds_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="pool_max_size"):
        open_queue_store("postgresql://h/db?pool_min_size=5&pool_max_size=2")


_CONFIG_URL = StoreURL.parse("postgresql://127.0.0.1:1/test")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("schema", ""),
        ("schema", "x" * 64),
        ("schema", "a\x00b"),
        ("schema", 5),
        ("pool_min_size", -1),
        ("pool_min_size", 1.5),
        ("pool_min_size", True),
        ("pool_min_size", "1"),
        ("pool_max_size", 0),
        ("connect_timeout", 0.5),
        ("connect_timeout", float("inf")),
        ("connect_timeout", "10"),
        ("connect_timeout", True),
        ("lock_timeout", 0),
        ("lock_timeout", float("nan")),
        ("poll_interval", 0.001),
        ("poll_interval", None),
        ("application_name", "a\nb"),
        ("application_name", "x" * 64),
        ("application_name", 1),
        ("sslmode", "bogus"),
        ("sslmode", "PREFER"),
        ("sslmode", None),
    ],
)
def test_a_bad_config_argument_is_refused_as_in_the_url(name: str, value: object) -> None:
    config = PostgresConfig.from_url(_CONFIG_URL)
    with pytest.raises(ConfigurationError, match=name):
        dataclasses.replace(config, **{name: cast(Any, value)})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("schema", "queues"),
        ("pool_min_size", 0),
        ("pool_max_size", 3),
        ("connect_timeout", 2),
        ("lock_timeout", 0.001),
        ("poll_interval", 0.5),
        ("application_name", ""),
        ("sslmode", "disable"),
    ],
)
def test_a_config_argument_the_url_would_accept_is_accepted(name: str, value: object) -> None:
    config = dataclasses.replace(PostgresConfig.from_url(_CONFIG_URL), **{name: cast(Any, value)})
    assert getattr(config, name) == value
    # The same as the URL gives for the value's text.
    as_text = dataclasses.replace(_CONFIG_URL, query={name: str(value)})
    assert PostgresConfig.from_url(as_text) == dataclasses.replace(config, url=as_text)


def test_a_config_is_checked_whole_not_only_from_a_url() -> None:
    config = PostgresConfig.from_url(_CONFIG_URL)
    with pytest.raises(ConfigurationError, match="pool_max_size"):
        dataclasses.replace(config, pool_min_size=5, pool_max_size=2)
    with pytest.raises(ConfigurationError, match="not a PostgreSQL URL"):
        dataclasses.replace(config, url=StoreURL.parse("redis://127.0.0.1:1/0"))
    with pytest.raises(ConfigurationError, match="StoreURL"):
        dataclasses.replace(config, url=cast(Any, "postgresql://127.0.0.1:1/test"))


@pytest.mark.parametrize("store", [PostgresQueueStore, PostgresAttemptStore])
def test_the_store_constructors_take_only_a_config(
    store: Callable[[PostgresConfig], object],
) -> None:
    with pytest.raises(ConfigurationError, match="PostgresConfig"):
        store(cast(Any, "postgresql://127.0.0.1:1/test"))


def test_an_injected_clock_is_refused_because_time_is_the_servers() -> None:
    url = StoreURL.parse("postgresql://127.0.0.1:1/test")
    with pytest.raises(ConfigurationError, match="server's clock"):
        PostgresQueueStore.from_url(url, clock=time.time)


# -- credentials ----------------------------------------------------------------------


def test_password_never_appears_in_repr(
    schema_url: SchemaURL, open_store: Callable[[str], QueueStore]
) -> None:
    url = with_password(schema_url())
    store = open_store(url)
    attempts = open_attempt_store(url)
    try:
        for text in (repr(store), str(store), repr(attempts)):
            assert SECRET not in text
            assert "***" in text
    finally:
        attempts.close()


@pytest.mark.parametrize(
    "make_url",
    [
        pytest.param(lambda: f"postgresql://postgres:{SECRET}@127.0.0.1:1/test", id="refused"),
        pytest.param(
            lambda: (
                f"postgresql://postgres:{SECRET}@127.0.0.1:5432/no_such_db_{uuid.uuid4().hex[:8]}"
            ),
            id="unknown-database",
        ),
    ],
)
def test_password_never_appears_in_connection_errors(
    postgres_server: str, make_url: Callable[[], str]
) -> None:
    url = make_url()
    with pytest.raises(StoreError) as caught:
        open_queue_store(url)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)
    assert "***" in str(caught.value)
    assert isinstance(caught.value.__cause__, psycopg.Error)


def test_password_never_appears_in_option_errors() -> None:
    with pytest.raises(InvalidOptionError) as caught:
        open_queue_store(f"postgresql://postgres:{SECRET}@127.0.0.1/test?pool_max_size=zero")
    assert SECRET not in str(caught.value)


# -- schema -----------------------------------------------------------------------------


def test_tables_live_in_the_configured_schema(
    schema_url: SchemaURL, open_store: Callable[[str], QueueStore]
) -> None:
    url = schema_url()
    open_store(url)
    with admin_connect() as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                [schema_of(url)],
            )
        }
    assert tables == {"lq_meta", "lq_messages", "lq_attempts"}


def test_schemas_isolate_applications(
    schema_url: SchemaURL, open_store: Callable[[str], QueueStore]
) -> None:
    first, second = open_store(schema_url()), open_store(schema_url())
    first.put("jobs", b"a", codec="msgpack")
    assert second.stats("jobs").total == 0
    assert second.queues() == []


def test_odd_schema_names_are_quoted_not_interpolated(
    postgres_server: str, open_store: Callable[[str], QueueStore]
) -> None:
    schema = f'lq test"; DROP TABLE x; --{uuid.uuid4().hex[:6]}'
    url = f"{postgres_server}?schema={schema.replace(' ', '%20').replace(';', '%3B')}"
    try:
        store = open_store(url)
        store.put("jobs", b"a", codec="msgpack")
        assert store.stats("jobs").ready == 1
    finally:
        with admin_connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _set_version(url: str, value: str) -> None:
    with admin_connect() as conn:
        conn.execute(
            sql.SQL("UPDATE {} SET value = %s WHERE key = 'schema_version'").format(
                sql.Identifier(schema_of(url), "lq_meta")
            ),
            [value],
        )


def test_schema_version_is_recorded(
    schema_url: SchemaURL, open_store: Callable[[str], QueueStore]
) -> None:
    url = schema_url()
    open_store(url)
    with admin_connect() as conn:
        row = conn.execute(
            sql.SQL("SELECT value FROM {} WHERE key = 'schema_version'").format(
                sql.Identifier(schema_of(url), "lq_meta")
            )
        ).fetchone()
    assert row == (str(localqueue_postgres.SCHEMA_VERSION),)


def test_newer_schema_version_is_refused(
    schema_url: SchemaURL, open_store: Callable[[str], QueueStore]
) -> None:
    url = schema_url()
    open_store(url).put("jobs", b"kept", codec="msgpack")
    _set_version(url, str(localqueue_postgres.SCHEMA_VERSION + 1))
    with pytest.raises(SchemaVersionError) as caught:
        open_queue_store(url)
    assert caught.value.found == localqueue_postgres.SCHEMA_VERSION + 1
    with pytest.raises(SchemaVersionError):
        open_attempt_store(url)
    _set_version(url, str(localqueue_postgres.SCHEMA_VERSION))
    assert open_store(url).stats("jobs").ready == 1


def test_unreadable_schema_version_is_reported(
    schema_url: SchemaURL, open_store: Callable[[str], QueueStore]
) -> None:
    url = schema_url()
    open_store(url)
    _set_version(url, "banana")
    with pytest.raises(StoreCorruptedError, match="banana"):
        open_queue_store(url)


# -- locks ------------------------------------------------------------------------------


def test_a_row_locked_past_lock_timeout_raises_queue_store_locked(
    schema_url: SchemaURL, open_store: Callable[[str], QueueStore]
) -> None:
    url = schema_url(lock_timeout="0.2")
    store = open_store(url)
    m = store.put("jobs", b"a", codec="msgpack")
    table = sql.Identifier(schema_of(url), "lq_messages")
    with admin_connect() as conn, conn.transaction():
        conn.execute(sql.SQL("SELECT 1 FROM {} WHERE id = %s FOR UPDATE").format(table), [m.id])
        with pytest.raises(QueueStoreLockedError) as caught:
            store.ack("jobs", m.id)
        assert isinstance(caught.value.__cause__, psycopg.Error)
        # SKIP LOCKED: a lease never waits for the locked row; it just does not get it.
        assert store.lease("jobs", lease_timeout=5) == []
    assert store.ack("jobs", m.id)


def test_a_row_locked_past_lock_timeout_raises_attempt_store_locked(schema_url: SchemaURL) -> None:
    url = schema_url(lock_timeout="0.2")
    store: AttemptStore = open_attempt_store(url)
    try:
        store.begin_attempt("k")
        table = sql.Identifier(schema_of(url), "lq_attempts")
        with admin_connect() as conn, conn.transaction():
            conn.execute(sql.SQL("SELECT 1 FROM {} WHERE key = 'k' FOR UPDATE").format(table))
            with pytest.raises(AttemptStoreLockedError):
                store.begin_attempt("k")
        record = store.begin_attempt("k")
        assert record.attempts == 2
    finally:
        store.close()


# -- notifications and server time -------------------------------------------------------


def test_wait_is_woken_by_a_put_from_another_handle(
    schema_url: SchemaURL, open_store: Callable[[str], QueueStore]
) -> None:
    url = schema_url()
    waiter, producer = open_store(url), open_store(url)
    waiter.stats("jobs")  # connected before the clock starts
    returned = threading.Event()

    def wait() -> None:
        waiter.wait("jobs", 30.0)
        returned.set()

    thread = threading.Thread(target=wait)
    thread.start()
    try:
        time.sleep(0.3)
        producer.put("jobs", b"wake up", codec="msgpack")
        # Far below the 30 s timeout: only the NOTIFY can have ended the wait.
        assert returned.wait(10.0), "wait() was not woken by NOTIFY"
    finally:
        thread.join(35)


def test_wait_is_woken_by_a_release(
    schema_url: SchemaURL, open_store: Callable[[str], QueueStore]
) -> None:
    url = schema_url()
    waiter, worker = open_store(url), open_store(url)
    worker.put("jobs", b"a", codec="msgpack")
    m = worker.lease("jobs", lease_timeout=3600)[0]
    returned = threading.Event()

    def wait() -> None:
        waiter.wait("jobs", 30.0)
        returned.set()

    thread = threading.Thread(target=wait)
    thread.start()
    try:
        time.sleep(0.3)
        assert worker.release("jobs", m.id, lease_token=m.lease_token)
        assert returned.wait(10.0), "wait() was not woken by the release's NOTIFY"
    finally:
        thread.join(35)


def test_more_waiters_than_listening_connections_poll_instead_of_failing(
    schema_url: SchemaURL, open_store: Callable[[str], QueueStore]
) -> None:
    store = open_store(schema_url(pool_max_size="1"))
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            store.wait("jobs", 0.5)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=wait) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []


def test_times_come_from_the_server_clock(
    schema_url: SchemaURL, open_store: Callable[[str], QueueStore]
) -> None:
    store = open_store(schema_url())
    with admin_connect() as conn:
        row = conn.execute("SELECT extract(epoch from now())::float8").fetchone()
    assert row is not None
    m = store.put("jobs", b"a", codec="msgpack", delay=30)
    assert m.created_at == pytest.approx(row[0], abs=5)
    assert m.available_at == pytest.approx(m.created_at + 30)


def test_persistent_queue_blocking_get_over_postgres(
    schema_url: SchemaURL, open_store: Callable[[str], QueueStore]
) -> None:
    url = schema_url()
    queue = PersistentQueue("emails", store=url)
    try:
        threading.Timer(
            0.3, lambda: open_store(url).put("emails", b"\xa2hi", codec="msgpack")
        ).start()
        assert queue.get(timeout=20) == "hi"
    finally:
        queue.close()


# -- connection restarts -----------------------------------------------------------------


def _terminate(application_name: str) -> int:
    with admin_connect() as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            [application_name],
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


def test_store_recovers_after_its_sessions_are_terminated(schema_url: SchemaURL) -> None:
    app = f"lq_restart_{uuid.uuid4().hex[:8]}"
    url = schema_url(application_name=app)
    store = open_queue_store(url)
    attempts = open_attempt_store(url)
    try:
        store.put_many("jobs", [str(i).encode() for i in range(20)], codec="msgpack")
        attempts.begin_attempt("k")
        store.wait("jobs", 0)  # opens a listening connection too
        assert _terminate(app) >= 2
        # Idle pooled connections were killed; the pool's check replaces them.
        first = store.lease("jobs", lease_timeout=60, limit=10)
        assert len(first) == 10
        assert store.ack_many("jobs", [(m.id, m.lease_token) for m in first]) == 10
        assert attempts.begin_attempt("k").attempts == 2
        store.wait("jobs", 0.1)
        store.put("jobs", b"after", codec="msgpack")
        assert store.stats("jobs").ready == 11
    finally:
        store.close()
        attempts.close()


def test_two_consumer_processes_survive_repeated_session_kills(
    schema_url: SchemaURL, tmp_path: Path
) -> None:
    """Two "hosts" consume one queue while the server kills their sessions three times."""
    app = f"lq_restart_{uuid.uuid4().hex[:8]}"
    url = schema_url(application_name=app)
    total = 600
    produced = {f"m-{i}" for i in range(total)}
    store = open_queue_store(url)
    consumer = Path(__file__).with_name("_consumer.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        store.put_many("jobs", sorted(p.encode() for p in produced), codec="msgpack")
        procs = [
            subprocess.Popen(
                [sys.executable, str(consumer), url, str(tmp_path), f"host{k}", "180"], env=env
            )
            for k in (1, 2)
        ]
        killed = 0
        for threshold in (100, 250, 400):
            deadline = time.monotonic() + 120
            while _count_lines(tmp_path, "acked") < threshold and time.monotonic() < deadline:
                time.sleep(0.05)
            killed += _terminate(app)
        assert killed > 0
        for proc in procs:
            assert proc.wait(timeout=200) == 0
        leased = Counter(_lines(tmp_path, "leased"))
        acked = Counter(_lines(tmp_path, "acked"))
        assert set(leased) == produced, "a message was never delivered"
        assert max(acked.values()) == 1, "a message was acked twice"
        # The parent's own handle had its sessions killed too, and recovers.
        assert store.stats("jobs").total == 0, "messages left behind"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        store.close()


def _lines(folder: Path, kind: str) -> list[str]:
    return [line for p in folder.glob(f"*.{kind}") for line in p.read_text().splitlines()]


def _count_lines(folder: Path, kind: str) -> int:
    return len(_lines(folder, kind))


def test_attempt_store_repr_and_isinstance(schema_url: SchemaURL) -> None:
    store = open_attempt_store(schema_url())
    try:
        assert isinstance(store, PostgresAttemptStore)
        assert isinstance(store, AttemptStore)
    finally:
        store.close()
