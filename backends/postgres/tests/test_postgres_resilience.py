"""PostgreSQL under rapid session kills, text PostgreSQL cannot hold, damaged rows."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
import pytest
from localqueue_postgres import PostgresAttemptStore, PostgresQueueStore
from localqueue_postgres._session import RECONNECT_ATTEMPTS

from localqueue.errors import MessageNotFoundError, StoreError, ValidationError
from localqueue.protocols import AttemptStore, QueueStore
from localqueue.registry import open_attempt_store, open_queue_store
from localqueue.validation import storable_text

pytestmark = pytest.mark.services

SchemaURL = Callable[..., str]
BASE_URL = os.environ.get("LOCALQUEUE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

Q = "jobs"
T = TypeVar("T")
KILL_SECONDS = 10.0
SLOWEST_CALL = 4.0
"""The longest one store call may take while its sessions are killed.

A call retries a lost connection at most ``RECONNECT_ATTEMPTS`` (8) times,
sleeping a random 0 to 5 ms doubling up to 250 ms between tries (at most
0.6 s in all); each try waits for a new connection (a few ms on loopback)
and runs one short statement. 4 s leaves room for a loaded 2-core machine
and stays well below the 10 s pool timeout that calls used to reach.
"""


@pytest.fixture
def opened() -> Iterator[Callable[[str], QueueStore]]:
    stores: list[QueueStore] = []

    def make(url: str) -> QueueStore:
        stores.append(open_queue_store(url))
        return stores[-1]

    yield make
    for store in stores:
        store.close()


class Killer(threading.Thread):
    """Terminates every session named ``application_name`` every 10 to 150 ms."""

    def __init__(self, application_name: str) -> None:
        super().__init__(daemon=True)
        self.application_name = application_name
        self.stopped = threading.Event()
        self.kills = 0

    def run(self) -> None:
        with psycopg.connect(BASE_URL, autocommit=True) as conn:
            while not self.stopped.wait(random.uniform(0.01, 0.15)):
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                    "FROM pg_stat_activity WHERE application_name = %s "
                    "AND pid <> pg_backend_pid()",
                    [self.application_name],
                ).fetchone()
                self.kills += row[0] if row else 0


class Timed:
    """Runs store calls, keeping the slowest duration and the errors raised."""

    def __init__(self) -> None:
        self.slowest = 0.0
        self.slowest_call = ""
        self.errors: Counter[str] = Counter()
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        started = time.monotonic()
        try:
            return call(*args, **kwargs)
        except StoreError:
            with self._lock:
                self.errors[call.__name__] += 1
            raise
        finally:
            took = time.monotonic() - started
            with self._lock:
                self.calls += 1
                if took > self.slowest:
                    self.slowest, self.slowest_call = took, call.__name__


class Campaign:
    """A producer and a consumer, each on its own store handle, logging what they saw."""

    def __init__(self, producer: QueueStore, consumer: QueueStore) -> None:
        self.producer, self.consumer = producer, consumer
        self.timed = Timed()
        self.stop = threading.Event()
        self.stored: set[str] = set()  # put returned
        self.maybe: set[str] = set()  # put raised StoreError: may or may not be stored
        self.acked: Counter[str] = Counter()
        self.unconfirmed: set[str] = set()  # ack raised or returned False
        self.leased_after_ack: list[str] = []
        self.failures: list[BaseException] = []

    def produce(self) -> None:
        n = 0
        while not self.stop.is_set():
            payload = f"m-{n}"
            n += 1
            try:
                self.timed(self.producer.put, Q, payload.encode(), codec="msgpack")
                self.stored.add(payload)
            except StoreError:
                self.maybe.add(payload)

    def consume_once(self) -> int:
        """One lease of up to 5 messages, each acked; how many were leased."""
        leased = self.timed(self.consumer.lease, Q, lease_timeout=1.0, limit=5)
        for message in leased:
            payload = message.payload.decode()
            if self.acked[payload]:
                self.leased_after_ack.append(payload)
            try:
                done = self.timed(self.consumer.ack, Q, message.id, lease_token=message.lease_token)
            except StoreError:
                done = False
            if done:
                self.acked[payload] += 1
            else:
                self.unconfirmed.add(payload)
        return len(leased)

    def consume(self) -> None:
        while not self.stop.is_set():
            try:
                if not self.consume_once():
                    self.timed(self.consumer.wait, Q, 0.2)
            except StoreError:
                pass

    def guarded(self, target: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # reported by the main thread
                self.failures.append(exc)

        return threading.Thread(target=run, daemon=True)

    def drain(self, seconds: float) -> None:
        """Consume until the queue is empty; lost leases come back after their 1 s."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.consume_once() and self.consumer.stats(Q).total == 0:
                return
            time.sleep(0.01)


def test_store_calls_stay_quick_and_exact_under_rapid_session_kills(
    schema_url: SchemaURL, opened: Callable[[str], QueueStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """A producer and a consumer run while every session is killed every 10-150 ms.

    Nothing put is lost, nothing is acked twice or delivered after its ack, no
    call blocks longer than SLOWEST_CALL, and every error is a StoreError.
    """
    app = f"lq_kills_{uuid.uuid4().hex[:8]}"
    url = schema_url(application_name=app)
    run = Campaign(opened(url), opened(url))
    killer = Killer(app)
    threads = [run.guarded(run.produce), run.guarded(run.consume)]
    killer.start()
    for thread in threads:
        thread.start()
    time.sleep(KILL_SECONDS)
    killer.stopped.set()
    killer.join()
    run.stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not run.failures, run.failures
    run.drain(30)

    acked = run.acked
    lost = run.stored - set(acked) - run.unconfirmed
    unconfirmed_gone = (run.stored | run.maybe) - set(acked)
    timed = run.timed
    with capsys.disabled():  # the figures docs/backends/postgresql.md quotes, in every CI log
        print(
            f"\npostgresql kills: {killer.kills} kills in {KILL_SECONDS:.0f} s, "
            f"{timed.calls} calls, "
            f"{len(run.stored)} stored, {len(run.maybe)} puts failed, {acked.total()} acked, "
            f"lost {len(lost)}, double-acked {sum(1 for c in acked.values() if c > 1)}, "
            f"leased after ack {len(run.leased_after_ack)}, ack-unconfirmed "
            f"{len(unconfirmed_gone & run.unconfirmed)}, errors {dict(timed.errors)}, "
            f"slowest call {timed.slowest:.2f} s ({timed.slowest_call})"
        )
    assert killer.kills >= 20, "the killer must have cut sessions repeatedly"
    assert timed.slowest < SLOWEST_CALL, (timed.slowest_call, timed.slowest)
    assert run.consumer.stats(Q).total == 0, "messages left behind"
    assert not lost, f"{len(lost)} stored messages were never acked"
    assert set(acked) <= run.stored | run.maybe, "acked something never put"
    assert max(acked.values()) == 1, "a message was acked twice"
    assert not run.leased_after_ack, "a message was delivered again after its ack"
    # Most calls get through by retrying; a StoreError is the exception.
    assert timed.errors.total() < timed.calls / 20, timed.errors


def test_a_call_that_keeps_losing_its_connection_raises_store_error_quickly(
    schema_url: SchemaURL, opened: Callable[[str], QueueStore]
) -> None:
    app = f"lq_kills_{uuid.uuid4().hex[:8]}"
    store = opened(schema_url(application_name=app))
    store.put(Q, b"x", codec="msgpack")
    # Every UPDATE of the messages table terminates its own session.
    schema = _schema(store)
    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        admin.execute(
            f'CREATE FUNCTION "{schema}".suicide() RETURNS trigger LANGUAGE plpgsql AS '
            "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$"
        )
        admin.execute(
            f'CREATE TRIGGER suicide BEFORE UPDATE ON "{schema}".lq_messages '
            f'FOR EACH ROW EXECUTE FUNCTION "{schema}".suicide()'
        )
    started = time.monotonic()
    with pytest.raises(StoreError, match=f"lost {RECONNECT_ATTEMPTS} times"):
        store.lease(Q, lease_timeout=30)
    assert time.monotonic() - started < SLOWEST_CALL
    # A release without a token is not safe to run twice: one loss, one error.
    started = time.monotonic()
    message_id = store.peek(Q)
    assert message_id is not None
    with pytest.raises(StoreError, match="may or may not have taken effect"):
        store.release(Q, message_id.id)
    assert time.monotonic() - started < 1.0


# -- text PostgreSQL cannot hold ------------------------------------------------------


@pytest.fixture
def pg_store(schema_url: SchemaURL) -> Iterator[PostgresQueueStore]:
    store = open_queue_store(schema_url())
    assert isinstance(store, PostgresQueueStore)
    yield store
    store.close()


@pytest.fixture
def pg_attempts(schema_url: SchemaURL) -> Iterator[AttemptStore]:
    store = open_attempt_store(schema_url())
    assert isinstance(store, PostgresAttemptStore)
    yield store
    store.close()


def _schema(store: QueueStore) -> str:
    name: str = store._session.tables.schema_name  # type: ignore[attr-defined]
    return name


def _snapshot(store: QueueStore) -> list[tuple[object, ...]]:
    """Every stored row, read past the store."""
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        return conn.execute(
            f"SELECT id, state, attempts, available_at, leased_by, lease_token, last_error, "
            f'dedup_key FROM "{_schema(store)}".lq_messages ORDER BY id'
        ).fetchall()


@pytest.mark.parametrize("text", ["a\x00b", "\x00", "lone\ud800"])
def test_identifiers_postgres_cannot_hold_are_refused_and_change_nothing(
    pg_store: PostgresQueueStore, text: str
) -> None:
    kept = pg_store.put(Q, b"kept", codec="msgpack", dedup_key="k")
    before = _snapshot(pg_store)
    with pytest.raises(ValidationError):
        pg_store.put(Q, b"x", codec="msgpack", dedup_key=text)
    with pytest.raises(ValidationError):
        pg_store.lease(Q, lease_timeout=30, leased_by=text)
    assert _snapshot(pg_store) == before
    # An id or token no message can have names nothing: the unknown-id answers.
    leased = pg_store.lease(Q, lease_timeout=30)[0]
    assert leased.id == kept.id
    assert pg_store.ack(Q, text) is False
    assert pg_store.ack(Q, kept.id, lease_token=text) is False
    assert pg_store.ack_many(Q, [(text, None), (kept.id, text)]) == 0
    assert pg_store.extend(Q, kept.id, lease_token=text, lease_timeout=60) is False
    assert pg_store.release(Q, text) is False
    assert pg_store.release(Q, kept.id, lease_token=text) is False
    assert pg_store.dead_letter(Q, text, error="e") is False
    assert pg_store.dead_letter(Q, kept.id, lease_token=text) is False
    assert pg_store.requeue_dead(Q, [text]) == 0
    assert pg_store.inspect(Q, text) is None
    after = pg_store.inspect(Q, kept.id)
    assert after is not None
    assert (after.attempts, after.leased_by, after.last_error) == (1, None, None)


@pytest.mark.parametrize("text", ["boom\x00here", "\x00", "lone\udc80"])
def test_error_texts_with_nul_are_stored_escaped(
    pg_store: PostgresQueueStore, pg_attempts: AttemptStore, text: str
) -> None:
    released = pg_store.put(Q, b"r", codec="msgpack")
    dead = pg_store.put(Q, b"d", codec="msgpack")
    leased = pg_store.lease(Q, lease_timeout=30)[0]
    assert leased.id == released.id
    assert pg_store.release(Q, leased.id, lease_token=leased.lease_token, delay=60, error=text)
    assert pg_store.dead_letter(Q, dead.id, error=text)
    expected = storable_text(text)
    assert "\x00" not in expected
    for message_id in (released.id, dead.id):
        stored = pg_store.inspect(Q, message_id)
        assert stored is not None
        assert stored.last_error == expected
    pg_attempts.begin_attempt("k")
    record = pg_attempts.record_failure("k", text)
    assert record is not None
    assert record.last_error == expected


@pytest.mark.parametrize("text", ["a\x00b", "lone\ud800"])
def test_retry_keys_postgres_cannot_hold_are_refused(pg_attempts: AttemptStore, text: str) -> None:
    pg_attempts.begin_attempt("kept")
    for call in (
        lambda: pg_attempts.begin_attempt(text),
        lambda: pg_attempts.get_record(text),
        lambda: pg_attempts.record_failure(text, "e"),
        lambda: pg_attempts.reset(text),
    ):
        with pytest.raises(ValidationError):
            call()
    record = pg_attempts.get_record("kept")
    assert record is not None
    assert record.attempts == 1


def test_kill_connections_ends_this_schemas_sessions_only(
    schema_url: SchemaURL, opened: Callable[[str], QueueStore]
) -> None:
    app = f"lq_kills_{uuid.uuid4().hex[:8]}"
    store = opened(schema_url(application_name=app))
    other = opened(schema_url(application_name=app))
    for s in (store, other):
        s.put(Q, b"x", codec="msgpack")
        s.wait(Q, 0)  # a listening session too
    assert isinstance(store, PostgresQueueStore)
    assert store.kill_connections() >= 2
    assert store.kill_connections() == 0, "nothing of this schema is left to end"
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [app]
        ).fetchone()
    assert row is not None
    assert row[0] >= 1, "the other schema's sessions stay"
    # Both handles go on working.
    assert store.stats(Q).ready == 1
    assert other.stats(Q).ready == 1


# -- damaged rows -----------------------------------------------------------------------


def test_a_schema_without_the_damage_index_leases_as_before(schema_url: SchemaURL) -> None:
    """Schemas made before the index existed: leases skip the (then costly) search."""
    url = schema_url()
    first = open_queue_store(url)
    assert isinstance(first, PostgresQueueStore)
    try:
        ids = [first.put(Q, p, codec="msgpack").id for p in (b"a", b"b")]
        with psycopg.connect(BASE_URL, autocommit=True) as conn:
            conn.execute(f'DROP INDEX "{_schema(first)}".lq_messages_damaged')
    finally:
        first.close()
    store = open_queue_store(url)
    assert isinstance(store, PostgresQueueStore)
    try:
        store.damage_record(Q, ids[1], "record")
        assert [m.id for m in store.lease(Q, lease_timeout=30, limit=10)] == ids[:1]
        assert any(ids[1] in line for line in store.check_integrity())
        assert any(ids[1] in line for line in store.repair())
        assert store.check_integrity() == []
        dead = store.inspect(Q, ids[1])
        assert dead is not None
        assert dead.last_error is not None
        assert "damaged" in dead.last_error
    finally:
        store.close()


def test_damage_record_of_an_unknown_message_raises(pg_store: PostgresQueueStore) -> None:
    with pytest.raises(MessageNotFoundError):
        pg_store.damage_record(Q, "no-such-id", "record")
