"""What is specific to the Redis stores: URLs, key prefixes, credentials, blocking
waits, server time, dropped connections, and several hosts on one queue."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
import redis
from localqueue_redis import RedisAttemptStore, RedisQueueStore

from localqueue import (
    ConfigurationError,
    InvalidOptionError,
    MessageState,
    PersistentQueue,
    QueueMessage,
    StoreClosedError,
    StoreCorruptedError,
    StoreError,
    open_attempt_store,
    open_queue_store,
)
from localqueue.protocols import QueueStore
from localqueue.testing import QueueStoreSuite

pytestmark = pytest.mark.services


@pytest.fixture
def open_store(redis_url: str) -> Iterator[Callable[..., QueueStore]]:
    """Opens queue stores on the test's prefix; closes them all afterwards."""
    stores: list[QueueStore] = []

    def open_(url: str = redis_url) -> QueueStore:
        store = open_queue_store(url)
        stores.append(store)
        return store

    yield open_
    for store in stores:
        store.close()


def _store_clients(admin: redis.Redis, prefix: str) -> list[dict[str, str]]:
    return [c for c in admin.client_list() if c.get("name") == f"localqueue:{prefix}"]


def _kill_store_connections(admin: redis.Redis, prefix: str) -> int:
    killed = 0
    for client in _store_clients(admin, prefix):
        try:
            admin.client_kill_filter(_id=client["id"])
            killed += 1
        except redis.ResponseError:
            pass  # it went away by itself
    return killed


# -- URLs and options ---------------------------------------------------------------


def test_an_unknown_option_is_rejected(redis_url: str) -> None:
    with pytest.raises(InvalidOptionError, match="pool_size"):
        open_queue_store(redis_url + "&pool_size=3")


@pytest.mark.parametrize("prefix", ["a:b", "", "x{y}", "p" * 65])
def test_a_prefix_that_could_overlap_another_is_rejected(
    redis_server_url: str, prefix: str
) -> None:
    with pytest.raises(InvalidOptionError, match="prefix"):
        open_queue_store(f"{redis_server_url}?prefix={prefix}")


@pytest.mark.parametrize("store_class", [RedisQueueStore, RedisAttemptStore])
@pytest.mark.parametrize("bad", ["{m}:b", "{m}{{y}}", "{m}" + "p" * 65, "{m} x", "", 7, None, True])
def test_a_prefix_argument_the_url_would_refuse_is_refused_and_stores_nothing(
    redis_server_url: str, admin: redis.Redis, store_class: type, bad: object
) -> None:
    marker = f"lqbad{uuid.uuid4().hex[:8]}"
    prefix = bad.format(m=marker) if isinstance(bad, str) else bad
    client = redis.Redis.from_url(redis_server_url)
    try:
        with pytest.raises(ConfigurationError, match="invalid Redis key prefix"):
            store_class(client, prefix=prefix)
    finally:
        client.close()
    assert not list(admin.scan_iter(match=f"*{marker}*", count=1000))
    if isinstance(prefix, str):  # the same text is refused in the URL
        with pytest.raises(InvalidOptionError, match="prefix"):
            open_queue_store(f"{redis_server_url}?prefix={prefix}")


@pytest.mark.parametrize("store_class", [RedisQueueStore, RedisAttemptStore])
def test_a_prefix_argument_the_url_would_accept_is_accepted(
    redis_server_url: str, store_class: type
) -> None:
    client = redis.Redis.from_url(redis_server_url)
    try:
        for prefix in ("p" * 64, "a.b-c_9"):
            store_class(client, prefix=prefix).close()
    finally:
        client.close()


def test_the_path_must_be_a_database_number(redis_prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="database number"):
        open_queue_store(f"redis://127.0.0.1:6379/jobs?prefix={redis_prefix}")


def test_the_database_number_selects_the_redis_database(
    redis_server_url: str, redis_prefix: str, admin: redis.Redis
) -> None:
    store = open_queue_store(f"redis://127.0.0.1:6379/3?prefix={redis_prefix}")
    try:
        store.put("jobs", b"x", codec="msgpack")
        db3 = redis.Redis(host="127.0.0.1", port=6379, db=3)
        try:
            assert db3.exists(f"{redis_prefix}:queues")
            assert not admin.exists(f"{redis_prefix}:queues")
        finally:
            db3.delete(*db3.keys(f"{redis_prefix}:*"))
            db3.close()
    finally:
        store.close()


def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    url = "redis://someone:s3cret-pw@127.0.0.1:1/0?connect_timeout=0.5&retries=0"
    with pytest.raises(StoreError) as caught:
        open_queue_store(url)
    assert isinstance(caught.value.__cause__, redis.ConnectionError)
    assert "s3cret-pw" not in str(caught.value)
    assert "***" in str(caught.value)


@pytest.fixture
def acl_user(admin: redis.Redis, redis_prefix: str) -> Iterator[tuple[str, str]]:
    """A Redis user allowed only the keys under the test's prefix."""
    name, password = f"lq-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    admin.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", name, "on", f">{password}", f"~{redis_prefix}:*", "&*", "+@all"
    )
    yield name, password
    admin.execute_command("ACL", "DELUSER", name)  # type: ignore[no-untyped-call]


def test_a_user_limited_to_the_prefix_can_do_everything(
    acl_user: tuple[str, str], redis_prefix: str
) -> None:
    name, password = acl_user
    url = f"redis://{name}:{password}@127.0.0.1:6379/0?prefix={redis_prefix}"
    store = open_queue_store(url)
    attempts = open_attempt_store(url)
    try:
        assert password not in repr(store)
        assert password not in repr(attempts)
        store.put("jobs", b"a", codec="msgpack", dedup_key="k")
        store.put_many("jobs", [b"b", b"c"], codec="msgpack", delay=0.01)
        [message] = store.lease("jobs", lease_timeout=30)
        assert store.release("jobs", message.id, lease_token=message.lease_token, error="x")
        store.wait("jobs", 0.05)
        leased = store.lease("jobs", lease_timeout=30, limit=3)
        assert store.dead_letter("jobs", leased[0].id, lease_token=leased[0].lease_token)
        assert store.requeue_dead("jobs") == 1
        assert store.stats("jobs").total == 3
        assert store.purge("jobs", "all") == 3
        assert store.queues() == []
        assert attempts.begin_attempt("key").attempts == 1
        assert attempts.reset("key")
    finally:
        store.close()
        attempts.close()


def test_wrong_credentials_are_a_store_error_without_the_password(
    acl_user: tuple[str, str], redis_prefix: str
) -> None:
    name, _ = acl_user
    with pytest.raises(StoreError) as caught:
        open_queue_store(f"redis://{name}:not-the-pw@127.0.0.1:6379/0?prefix={redis_prefix}")
    assert "not-the-pw" not in str(caught.value)


# -- prefixes and keys --------------------------------------------------------------


def test_two_prefixes_on_one_server_never_see_each_other(
    redis_server_url: str, open_store: Callable[..., QueueStore], admin: redis.Redis
) -> None:
    first, second = (f"lqtest-{uuid.uuid4().hex[:12]}" for _ in range(2))
    try:
        a = open_store(f"{redis_server_url}?prefix={first}")
        b = open_store(f"{redis_server_url}?prefix={second}")
        a.put("jobs", b"from a", codec="msgpack")
        assert b.queues() == []
        assert b.lease("jobs", lease_timeout=30) == []
        assert b.purge("jobs", "all") == 0
        assert a.stats("jobs").ready == 1
    finally:
        for prefix in (first, second):
            keys = list(admin.scan_iter(match=f"{prefix}:*"))
            if keys:
                admin.delete(*keys)


def test_queue_names_with_colons_do_not_collide(open_store: Callable[..., QueueStore]) -> None:
    store = open_store()
    store.put("a", b"in a", codec="msgpack")
    store.put("a:m", b"in a:m", codec="msgpack")
    store.put("a:ready", b"in a:ready", codec="msgpack")
    assert store.queues() == ["a", "a:m", "a:ready"]
    assert [m.payload for m in store.lease("a", lease_timeout=30, limit=5)] == [b"in a"]


def test_keys_written_by_another_program_are_reported_as_corruption(
    open_store: Callable[..., QueueStore], admin: redis.Redis, redis_prefix: str
) -> None:
    store = open_store()
    admin.set(f"{redis_prefix}:queues", "not a set")
    with pytest.raises(StoreCorruptedError) as caught:
        store.queues()
    assert isinstance(caught.value.__cause__, redis.ResponseError)


def test_a_store_built_from_a_client_leaves_the_client_open(
    redis_prefix: str, redis_server_url: str
) -> None:
    client = redis.Redis.from_url(redis_server_url)
    store = RedisQueueStore(client, prefix=redis_prefix)
    store.put("jobs", b"1", codec="json")
    store.close()
    with pytest.raises(StoreClosedError):
        store.stats("jobs")
    assert client.ping()
    attempts = RedisAttemptStore(client, prefix=redis_prefix)
    assert attempts.begin_attempt("k").attempts == 1
    attempts.close()
    client.close()


def test_a_client_decoding_responses_is_refused(redis_server_url: str) -> None:
    client = redis.Redis.from_url(redis_server_url, decode_responses=True)
    with pytest.raises(ConfigurationError, match="decode_responses"):
        RedisQueueStore(client)
    client.close()


def test_more_threads_than_connections_wait_for_one_instead_of_failing(
    open_store: Callable[..., QueueStore], redis_url: str
) -> None:
    store = open_store(redis_url + "&max_connections=2")
    errors: list[BaseException] = []
    acked: list[str] = []

    def work(n: int) -> None:
        try:
            for i in range(30):
                store.put("jobs", f"{n}-{i}".encode(), codec="msgpack")
                for message in store.lease("jobs", lease_timeout=30):
                    if store.ack("jobs", message.id, lease_token=message.lease_token):
                        acked.append(message.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert len(set(acked)) == len(acked)
    assert len(acked) + store.stats("jobs").ready == 6 * 30


# -- time and blocking ----------------------------------------------------------------


def test_times_come_from_the_server_clock(
    open_store: Callable[..., QueueStore], admin: redis.Redis
) -> None:
    seconds, micros = admin.time()
    message = open_store().put("jobs", b"x", codec="msgpack", delay=100)
    # Generous: only shows the store read the server's clock, not some other epoch.
    assert abs(message.created_at - (seconds + micros / 1e6)) < 60
    assert message.available_at == message.created_at + 100


def test_an_expired_lease_comes_back_by_server_time(
    open_store: Callable[..., QueueStore],
) -> None:
    store = open_store()
    store.put("jobs", b"x", codec="msgpack")
    [first] = store.lease("jobs", lease_timeout=0.2)
    deadline = time.monotonic() + 30
    again: list[QueueMessage] = []
    while not again and time.monotonic() < deadline:
        store.wait("jobs", 5)
        again = store.lease("jobs", lease_timeout=30)
    assert len(again) == 1
    assert store.inspect("jobs", first.id).attempts == 2  # type: ignore[union-attr]


def test_a_blocked_wait_sits_in_blpop_until_a_put(
    open_store: Callable[..., QueueStore], admin: redis.Redis, redis_prefix: str
) -> None:
    waiter, producer = open_store(), open_store()
    done = threading.Event()

    def wait() -> None:
        waiter.wait("jobs", 60)
        done.set()

    thread = threading.Thread(target=wait)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            clients = _store_clients(admin, redis_prefix)
            if any(c.get("cmd") == "blpop" and "b" in c.get("flags", "") for c in clients):
                break
            time.sleep(0.02)
        else:
            pytest.fail("the waiter never blocked in BLPOP")
        assert not done.is_set()
        producer.put("jobs", b"wake up", codec="msgpack")
        assert done.wait(30), "the put did not wake the waiter"
    finally:
        producer.put("jobs", b"unblock", codec="msgpack")
        thread.join(60)


def test_a_wait_ends_when_a_delayed_message_put_meanwhile_is_due(
    open_store: Callable[..., QueueStore],
) -> None:
    waiter, producer = open_store(), open_store()
    done = threading.Event()

    def wait() -> None:
        waiter.wait("jobs", 60)
        done.set()

    thread = threading.Thread(target=wait)
    thread.start()
    try:
        time.sleep(0.1)
        producer.put("jobs", b"soon", codec="msgpack", delay=0.3)
        assert done.wait(30)
        deadline = time.monotonic() + 30
        leased: list[QueueMessage] = []
        while not leased and time.monotonic() < deadline:
            waiter.wait("jobs", 5)
            leased = waiter.lease("jobs", lease_timeout=30)
        assert len(leased) == 1
    finally:
        thread.join(60)


# -- dropped connections --------------------------------------------------------------


def test_killed_connections_are_replaced_and_nothing_is_lost(
    open_store: Callable[..., QueueStore], admin: redis.Redis, redis_prefix: str
) -> None:
    store = open_store()
    total = 300
    store.put_many("jobs", [str(i).encode() for i in range(total)], codec="msgpack")
    stop = threading.Event()
    kills: list[int] = []

    def killer() -> None:
        # A few kills spread over the run, each landing wherever the consumer is.
        while not stop.wait(0.05) and len(kills) < 6:
            kills.append(_kill_store_connections(admin, redis_prefix))

    thread = threading.Thread(target=killer)
    thread.start()
    acked: Counter[bytes] = Counter()
    # An ack whose reply a kill cut off is retried; the retry finds the message
    # gone and reports False (see docs/backends/redis.md), so refused acks are
    # counted apart: each must be one of the few a kill could have cut.
    refused: set[bytes] = set()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            leased = store.lease("jobs", lease_timeout=1.0, limit=3)
            if not leased:
                if store.stats("jobs").total == 0:
                    break
                store.wait("jobs", 0.5)
                continue
            for message in leased:
                if store.ack("jobs", message.id, lease_token=message.lease_token):
                    acked[message.payload] += 1
                else:
                    refused.add(message.payload)
                time.sleep(0.001)  # let the kills land mid-run
    finally:
        stop.set()
        thread.join(30)
    assert sum(kills) >= 1, "no connection was killed"
    assert set(acked) | refused == {str(i).encode() for i in range(total)}, "messages lost"
    assert len(refused - set(acked)) <= sum(kills), "more refused acks than kills"
    assert max(acked.values()) == 1, "a message was acked twice"
    assert store.stats("jobs").total == 0


def test_a_blocked_wait_survives_its_connection_being_killed(
    open_store: Callable[..., QueueStore], admin: redis.Redis, redis_prefix: str
) -> None:
    waiter, producer = open_store(), open_store()
    errors: list[BaseException] = []
    done = threading.Event()

    def wait() -> None:
        try:
            waiter.wait("jobs", 60)
        except BaseException as exc:
            errors.append(exc)
        done.set()

    thread = threading.Thread(target=wait)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(c.get("cmd") == "blpop" for c in _store_clients(admin, redis_prefix)):
                break
            time.sleep(0.02)
        blocked = [c for c in _store_clients(admin, redis_prefix) if c.get("cmd") == "blpop"]
        assert blocked, "the waiter never blocked in BLPOP"
        admin.client_kill_filter(_id=blocked[0]["id"])
        time.sleep(0.2)
        producer.put("jobs", b"wake up", codec="msgpack")
        assert done.wait(30), "the waiter did not come back after its connection was killed"
        assert errors == []
    finally:
        producer.put("jobs", b"unblock", codec="msgpack")
        thread.join(60)


# -- several hosts ----------------------------------------------------------------------

_CONSUMER = """
import json, sys, time
from localqueue import PersistentQueue, Empty
url, name = sys.argv[1], sys.argv[2]
queue = PersistentQueue("jobs", store=url, lease_timeout=60)
acked = []
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        message = queue.get_message(timeout=0.5, leased_by=name)
    except Empty:
        if queue.store.stats("jobs").total == 0:
            break
        continue
    queue.ack(message)
    acked.append(message.value)
queue.close()
print(json.dumps(acked))
"""


def test_two_hosts_consume_one_queue_without_loss_or_double_ack(redis_url: str) -> None:
    total = 600
    producer = PersistentQueue("jobs", store=redis_url)
    try:
        producer.put_many(range(total // 2))
        hosts = [
            subprocess.Popen(
                [sys.executable, "-c", _CONSUMER, redis_url, f"host-{i}"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        # The second half arrives while both hosts are consuming.
        for value in range(total // 2, total):
            producer.put(value)
        results = []
        for host in hosts:
            out, _ = host.communicate(timeout=180)
            assert host.returncode == 0
            results.append(json.loads(out))
        counts = Counter(v for result in results for v in result)
        assert set(counts) == set(range(total)), "messages lost"
        assert max(counts.values()) == 1, "a message was acked twice"
        assert all(results), "one host consumed nothing: the run was not concurrent"
        assert producer.qsize() == 0
    finally:
        producer.close()


# -- the layers above the store ----------------------------------------------------------


def test_persistent_queue_blocking_get_is_woken_by_another_host(redis_url: str) -> None:
    consumer = PersistentQueue("jobs", store=redis_url)
    producer = PersistentQueue("jobs", store=redis_url)
    try:
        timer = threading.Timer(0.3, lambda: producer.put({"n": 1}))
        timer.start()
        assert consumer.get(timeout=30) == {"n": 1}
        consumer.task_done()
        timer.join()
        assert producer.qsize() == 0
        message = producer.put("later", delay=0.2)
        assert consumer.get_message(timeout=30).id == message.id
        assert producer.store.inspect("jobs", message.id).state is MessageState.INFLIGHT  # type: ignore[union-attr]
    finally:
        consumer.close()
        producer.close()


class TestServerTimeQueueStore(QueueStoreSuite):
    """The suite again without an injected clock, so every time is the server's."""

    @pytest.fixture
    def store_url(self, redis_url: str) -> str:
        return redis_url

    @pytest.fixture
    def clock(self) -> None:
        return None
