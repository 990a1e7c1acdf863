"""Damaged Redis records: met by any script, a bad hash is dead-lettered with its
reason and a missing one's index entries dropped, and nothing is left half done.

The damage is written with a plain client under the store, field by field, to
reach every check the scripts make; the shared ``DamageSuite`` (run through the
conformance file) covers the store's own ``damage_record`` hook.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from localqueue_redis import RedisQueueStore

from localqueue import MessageState, PersistentQueue, Worker
from localqueue.cli import exit_codes
from localqueue.errors import ConfigurationError, MessageNotFoundError

pytestmark = pytest.mark.services

Q = "jobs"
LONG = 3600.0


class Clock:
    """A settable time source, so delays and lease ends pass at once."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(redis_server_url: str, redis_prefix: str, clock: Clock) -> Iterator[RedisQueueStore]:
    client = redis.Redis.from_url(redis_server_url)
    store = RedisQueueStore(client, prefix=redis_prefix, clock=clock)
    yield store
    store.close()
    client.close()


def put(store: RedisQueueStore, payload: bytes, **options: object) -> str:
    return store.put(Q, payload, codec="json", **options).id  # type: ignore[arg-type]


def record_key(prefix: str, message_id: str) -> str:
    return f"{prefix}:q:{{{Q}}}:m:{message_id}"


def drain(store: RedisQueueStore, limit: int = 10) -> list[str]:
    delivered: list[str] = []
    while leased := store.lease(Q, lease_timeout=LONG, limit=limit):
        for m in leased:
            delivered.append(m.id)
            assert store.ack(Q, m.id, lease_token=m.lease_token)
    return delivered


def assert_dead_with_reason(store: RedisQueueStore, message_id: str, *words: str) -> None:
    message = store.inspect(Q, message_id)
    assert message is not None
    assert message.state is MessageState.DEAD
    assert message.last_error is not None
    assert "damaged" in message.last_error
    for word in words:
        assert word in message.last_error
    assert message_id in [m.id for m in store.dead_letters(Q)]
    assert store.stats(Q).dead >= 1


# Each field the scripts or the client decode, with a value neither can read.
BAD_FIELDS: list[tuple[str, bytes | None]] = [
    ("pr", b"banana"),
    ("pr", b"1.5"),
    ("ca", b"\xff\xfe garbage"),
    ("ca", b"nan"),
    ("aa", b"soon"),
    ("a", b"-1"),
    ("k", b"12"),
    ("st", b"z"),
    ("id", b"someone-else"),
    ("c", None),
    ("p", None),
    ("lb", b"\xff worker"),
    ("le", b"\xc3\x28"),
    ("dk", b"\xed\xa0\x80"),
    ("fa", b"yesterday"),
]


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS)
@pytest.mark.parametrize("limit", [1, 10])
def test_a_damaged_field_is_dead_lettered_and_the_lease_goes_on(
    store: RedisQueueStore,
    admin: redis.Redis,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
    field: str,
    value: bytes | None,
    limit: int,
) -> None:
    a, b, c = (put(store, p) for p in (b"1", b"2", b"3"))
    key = record_key(redis_prefix, b)
    if value is None:
        admin.hdel(key, field)
    else:
        admin.hset(key, field, value)
    problems = store.check_integrity()
    assert len(problems) == 1, problems
    assert b in problems[0]
    assert f"{field} is" in problems[0]

    with caplog.at_level(logging.WARNING, logger="localqueue_redis.store"):
        assert drain(store, limit) == [a, c]
    assert any(b in r.getMessage() and "damaged" in r.getMessage() for r in caplog.records)
    assert_dead_with_reason(store, b, f"{field} is")
    stats = store.stats(Q)
    assert (stats.ready, stats.delayed, stats.inflight, stats.dead) == (0, 0, 0, 1)
    assert store.check_integrity() == []
    # Mended, the dead letter can go back to work like any other.
    assert store.requeue_dead(Q) == 1
    assert drain(store) == [b]


def test_a_missing_record_is_dropped_from_its_index_with_a_warning(
    store: RedisQueueStore,
    admin: redis.Redis,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b, c = (put(store, p) for p in (b"1", b"2", b"3"))
    admin.delete(record_key(redis_prefix, b))
    assert any(b in line and "missing" in line for line in store.check_integrity())
    with caplog.at_level(logging.WARNING, logger="localqueue_redis.store"):
        assert drain(store, 1) == [a, c]
    assert any(b in r.getMessage() for r in caplog.records)
    assert store.stats(Q).total == 0
    assert store.check_integrity() == []
    assert Q not in store.queues()


def test_damage_in_the_delayed_and_leased_indexes_is_met_when_they_come_due(
    store: RedisQueueStore, admin: redis.Redis, redis_prefix: str, clock: Clock
) -> None:
    delayed = put(store, b"1", delay=60)
    leased = put(store, b"2")
    gone = put(store, b"3", delay=60)
    good = put(store, b"4", delay=30)
    [held] = store.lease(Q, lease_timeout=10, limit=1)
    assert held.id == leased
    admin.hset(record_key(redis_prefix, delayed), "pr", "banana")
    admin.hset(record_key(redis_prefix, leased), "aa", "later")
    admin.delete(record_key(redis_prefix, gone))
    clock.now += 120
    assert drain(store) == [good]
    assert_dead_with_reason(store, delayed, "pr is 'banana'")
    assert_dead_with_reason(store, leased, "aa is 'later'")
    assert store.stats(Q).dead == 2
    assert store.check_integrity() == []


def test_peek_inspect_and_listings_never_raise_on_damage(
    store: RedisQueueStore, admin: redis.Redis, redis_prefix: str
) -> None:
    dead = put(store, b"0")
    [m] = store.lease(Q, lease_timeout=LONG)
    assert store.dead_letter(Q, dead, lease_token=m.lease_token, error="boom")
    a, b = put(store, b"1"), put(store, b"2")
    admin.hset(record_key(redis_prefix, a), "ca", "\x00")
    admin.hset(record_key(redis_prefix, dead), "k", "x")
    # peek moves the damaged head aside and shows the next one.
    peeked = store.peek(Q)
    assert peeked is not None
    assert peeked.id == b
    assert_dead_with_reason(store, a, "ca is")
    # A damaged dead letter keeps its earlier error next to the new reason.
    assert_dead_with_reason(store, dead, "k is 'x'", "boom")
    admin.delete(record_key(redis_prefix, dead))
    assert {m.id for m in store.dead_letters(Q)} == {a}
    assert store.stats(Q).dead == 1


def test_release_of_a_damaged_lease_dead_letters_it_whole(
    store: RedisQueueStore, admin: redis.Redis, redis_prefix: str
) -> None:
    message_id = put(store, b"1")
    [m] = store.lease(Q, lease_timeout=LONG)
    admin.hset(record_key(redis_prefix, message_id), "pr", "banana")
    assert not store.release(Q, message_id, lease_token=m.lease_token, error="retry")
    assert_dead_with_reason(store, message_id, "pr is 'banana'")
    stats = store.stats(Q)
    assert (stats.ready, stats.delayed, stats.inflight, stats.dead) == (0, 0, 0, 1)
    assert store.check_integrity() == []


def test_dead_letter_of_a_damaged_lease_keeps_the_callers_error(
    store: RedisQueueStore, admin: redis.Redis, redis_prefix: str
) -> None:
    message_id = put(store, b"1")
    [m] = store.lease(Q, lease_timeout=LONG)
    admin.hdel(record_key(redis_prefix, message_id), "k")
    assert store.dead_letter(Q, message_id, lease_token=m.lease_token, error="handler failed")
    assert_dead_with_reason(store, message_id, "k is missing", "handler failed")
    assert store.check_integrity() == []


def test_requeue_dead_checks_every_record_before_requeueing_any(
    store: RedisQueueStore, admin: redis.Redis, redis_prefix: str
) -> None:
    ids = [put(store, p) for p in (b"1", b"2", b"3")]
    for m in store.lease(Q, lease_timeout=LONG, limit=3):
        assert store.dead_letter(Q, m.id, lease_token=m.lease_token, error="x")
    admin.hset(record_key(redis_prefix, ids[1]), "pr", "banana")
    admin.delete(record_key(redis_prefix, ids[2]))
    assert store.requeue_dead(Q) == 2
    assert sorted(drain(store)) == sorted(ids[:2])
    assert store.stats(Q).total == 0
    assert store.check_integrity() == []


def test_acking_a_lease_whose_record_lost_its_sequence_still_deletes_it(
    store: RedisQueueStore, admin: redis.Redis, redis_prefix: str
) -> None:
    message_id = put(store, b"1")
    [m] = store.lease(Q, lease_timeout=LONG)
    admin.hdel(record_key(redis_prefix, message_id), "k")
    assert store.ack(Q, message_id, lease_token=m.lease_token)
    assert store.inspect(Q, message_id) is None
    assert store.stats(Q).total == 0


def test_purge_drops_index_entries_whose_record_is_gone(
    store: RedisQueueStore, admin: redis.Redis, redis_prefix: str
) -> None:
    ids = [put(store, p) for p in (b"1", b"2")]
    admin.delete(record_key(redis_prefix, ids[0]))
    assert store.purge(Q, "all") == 1
    assert admin.exists(f"{redis_prefix}:q:{{{Q}}}:ready") == 0
    assert Q not in store.queues()


def test_integrity_check_finds_records_in_no_index(
    store: RedisQueueStore, admin: redis.Redis, redis_prefix: str
) -> None:
    message_id = put(store, b"1")
    admin.delete(f"{redis_prefix}:q:{{{Q}}}:ready")
    [line] = store.check_integrity()
    assert message_id in line
    assert "no index" in line


def test_a_worker_serves_the_rest_and_dead_letters_the_damaged_one(
    store: RedisQueueStore, admin: redis.Redis, redis_prefix: str
) -> None:
    queue = PersistentQueue(Q, store)
    ids = [queue.put(n).id for n in (1, 2, 3)]
    admin.hset(record_key(redis_prefix, ids[1]), "ca", "garbage")
    seen: list[int] = []
    Worker(queue, seen.append, handle_signals=False).run(until_empty=True)
    assert seen == [1, 3]
    assert_dead_with_reason(store, ids[1], "ca is 'garbage'")


def test_damage_hook_plants_both_kinds_and_refuses_others(
    store: RedisQueueStore, admin: redis.Redis, redis_prefix: str
) -> None:
    a, b = put(store, b"1"), put(store, b"2")
    store.damage_record(Q, a, "record")
    assert admin.hget(record_key(redis_prefix, a), "pr") == b"banana"
    store.damage_record(Q, b, "missing")
    assert admin.exists(record_key(redis_prefix, b)) == 0
    assert admin.zcard(f"{redis_prefix}:q:{{{Q}}}:ready") == 2
    with pytest.raises(MessageNotFoundError):
        store.damage_record(Q, b, "record")
    with pytest.raises(ConfigurationError):
        store.damage_record(Q, a, "melted")  # type: ignore[arg-type]
    lines = store.check_integrity()
    assert any(a in line for line in lines), lines
    assert any(b in line for line in lines), lines


def test_repair_mends_every_kind_of_damage_and_then_has_nothing_to_do(
    store: RedisQueueStore, admin: redis.Redis, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    good, damaged, gone, unindexed, delayed = (
        put(store, p) for p in (b"1", b"2", b"3", b"4", b"5")
    )
    store.dead_letter(Q, delayed, error="x")
    store.requeue_dead(Q)
    admin.hset(record_key(redis_prefix, damaged), "pr", "banana")
    admin.delete(record_key(redis_prefix, gone))
    member = admin.hget(record_key(redis_prefix, unindexed), "rm")
    assert member is not None
    admin.zrem(f"{redis_prefix}:q:{{{Q}}}:ready", member)
    with caplog.at_level(logging.WARNING, logger="localqueue_redis.store"):
        done = store.repair()
    for message_id in (damaged, gone, unindexed):
        assert any(message_id in line for line in done), done
    assert not any(good in line or delayed in line for line in done), done
    assert len(caplog.records) == 3
    assert store.repair() == []
    assert store.check_integrity() == []
    assert_dead_with_reason(store, damaged, "pr is 'banana'")
    assert drain(store, 1) == [good, unindexed, delayed]
    assert store.stats(Q).dead == 1


def test_cli_check_and_repair_reach_the_redis_store(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from localqueue.cli.app import app

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    with PersistentQueue(Q, redis_url) as queue:
        bad, good = (m.id for m in queue.put_many(["bad", "good"]))
        assert isinstance(queue.store, RedisQueueStore)
        queue.store.damage_record(Q, bad, "record")
    runner = CliRunner()
    checked = runner.invoke(app, ["check", "--store", redis_url])
    assert checked.exit_code == exit_codes.DAMAGED, checked.output
    assert bad in checked.stdout
    repaired = runner.invoke(app, ["repair", "--store", redis_url])
    assert repaired.exit_code == exit_codes.SUCCESS, repaired.output
    summary = json.loads(repaired.stdout.splitlines()[-1])
    assert summary["healthy"] is True
    assert summary["repairs"] == 1
    with PersistentQueue(Q, redis_url) as queue:
        assert queue.get_message(timeout=0).id == good
