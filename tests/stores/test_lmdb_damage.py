"""LMDB damage: one bad record never blocks its queue, repair() mends the indexes,
the damage hook writes through LMDB, and a store that filled its disk can be drained."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import lmdb
import msgpack
import pytest

from localqueue._models import MessageState
from localqueue.errors import ConfigurationError, InvalidOptionError, StoreError
from localqueue.registry import open_queue_store
from localqueue.stores.lmdb import DAMAGED_ERROR, ORPHAN_QUEUE, LMDBQueueStore
from localqueue.testing.campaigns import fill_to_the_last_byte

Q = "jobs"
GARBAGE = b"\xc1 these bytes are not msgpack"
LONG = 3600.0


def open_store(folder: Path) -> LMDBQueueStore:
    return LMDBQueueStore(folder / "env")


@contextlib.contextmanager
def raw_env(folder: Path) -> Iterator[tuple[lmdb.Environment, lmdb.Transaction[bytes]]]:
    """LMDB itself on the store's files (no store handle may be open: one env per process)."""
    env = lmdb.open(str(folder / "env"), max_dbs=8, subdir=True)
    try:
        with env.begin(write=True) as txn:
            yield env, txn
    finally:
        env.close()


def plant(folder: Path, message_id: str, how: str) -> None:
    """Damage one record the way a bad page or a stray edit would, index entries kept."""
    with raw_env(folder) as (env, txn):
        messages = env.open_db(b"messages", txn=txn)
        if how == "record":
            assert txn.replace(message_id.encode(), GARBAGE, db=messages) is not None
        else:
            assert txn.delete(message_id.encode(), db=messages)


@pytest.fixture
def three(tmp_path: Path) -> tuple[Path, list[str]]:
    """Messages a, b, c in queue ``jobs`` (and one in ``other``), no handle left open."""
    with open_store(tmp_path) as store:
        ids = [store.put(Q, p, codec="msgpack").id for p in (b"a", b"b", b"c")]
        store.put("other", b"x", codec="msgpack")
    return tmp_path, ids


def drain(store: LMDBQueueStore, limit: int) -> list[str]:
    delivered: list[str] = []
    for _ in range(10):
        leased = store.lease(Q, lease_timeout=LONG, limit=limit)
        if not leased:
            break
        for m in leased:
            delivered.append(m.id)
            assert store.ack(Q, m.id, lease_token=m.lease_token)
    return delivered


def warned_about(caplog: pytest.LogCaptureFixture, message_id: str) -> bool:
    return any(
        r.levelno == logging.WARNING and r.name == "localqueue.stores.lmdb"
        and message_id in r.getMessage()
        for r in caplog.records
    )  # fmt: skip


# -- one bad record never blocks the queue ---------------------------------------------


@pytest.mark.parametrize("limit", [1, 10])
def test_an_undecodable_record_becomes_a_dead_letter_and_the_lease_goes_on(
    three: tuple[Path, list[str]], limit: int, caplog: pytest.LogCaptureFixture
) -> None:
    folder, (a, b, c) = three
    plant(folder, b, "record")
    with open_store(folder) as store, caplog.at_level(logging.WARNING):
        assert drain(store, limit) == [a, c]
        assert warned_about(caplog, b)
        assert [m.id for m in store.dead_letters(Q)] == [b]
        message = store.inspect(Q, b)
        assert message is not None
        assert message.state is MessageState.DEAD
        assert message.last_error is not None
        assert message.last_error.startswith(DAMAGED_ERROR)
        assert "not msgpack" in message.last_error
        assert message.value == GARBAGE  # the bytes survive, readable as the value
        stats = store.stats(Q)
        assert (stats.ready, stats.inflight, stats.dead) == (0, 0, 1)
        assert store.check_integrity() == []
        assert store.stats("other").ready == 1


@pytest.mark.parametrize("limit", [1, 10])
def test_an_index_entry_without_its_record_is_dropped_and_the_lease_goes_on(
    three: tuple[Path, list[str]], limit: int, caplog: pytest.LogCaptureFixture
) -> None:
    folder, (a, b, c) = three
    plant(folder, b, "missing")
    with open_store(folder) as store, caplog.at_level(logging.WARNING):
        assert drain(store, limit) == [a, c]
        assert warned_about(caplog, b)
        assert store.stats(Q).total == 0
        assert store.inspect(Q, b) is None
        assert store.check_integrity() == []


def test_a_record_of_the_wrong_shape_is_damage_too(three: tuple[Path, list[str]]) -> None:
    folder, (a, b, c) = three
    with raw_env(folder) as (env, txn):
        txn.put(
            b.encode(), msgpack.packb(["jobs", 0, "high"]), db=env.open_db(b"messages", txn=txn)
        )
    with open_store(folder) as store:
        assert drain(store, 10) == [a, c]
        message = store.inspect(Q, b)
        assert message is not None
        assert message.state is MessageState.DEAD
        assert "not a localqueue message record" in (message.last_error or "")


@pytest.mark.parametrize("how", ["record", "missing"])
def test_reads_and_maintenance_calls_step_over_a_damaged_head(
    three: tuple[Path, list[str]], how: str
) -> None:
    folder, (a, b, _c) = three
    plant(folder, a, how)
    with open_store(folder) as store:
        assert store.stats(Q).ready == 3  # the indexes alone: the damage is not met yet
        head = store.peek(Q)
        assert head is not None
        assert head.id == b
        seen = store.inspect(Q, a)
        if how == "missing":
            assert seen is None
        else:  # shown as the dead letter it is about to become
            assert seen is not None
            assert seen.state is MessageState.DEAD
        assert store.dead_letters(Q) == []
        # The write that meets the damage settles it, and does not act on the message.
        assert store.ack(Q, a) is False
        assert store.release(Q, a) is False
        if how == "record":
            assert [m.id for m in store.dead_letters(Q)] == [a]
        else:
            assert store.stats(Q).total == 2
        assert store.purge(Q, "all") == (3 if how == "record" else 2)
        assert store.stats(Q).total == 0
        assert store.check_integrity() == []


def test_a_damaged_dead_letter_is_listed_requeue_leaves_it_and_purge_removes_it(
    three: tuple[Path, list[str]],
) -> None:
    folder, (a, b, c) = three
    with open_store(folder) as store:
        assert store.dead_letter(Q, b, error="boom")
    plant(folder, b, "record")
    with open_store(folder) as store:
        [listed] = store.dead_letters(Q)
        assert listed.id == b
        assert (listed.last_error or "").startswith(DAMAGED_ERROR)
        assert store.requeue_dead(Q) == 0  # it is moved aside, not handed to a consumer
        assert store.check_integrity() == []
        assert store.stats(Q).dead == 1
        assert store.purge(Q, "dead") == 1
        assert drain(store, 10) == [a, c]


def test_a_damaged_record_frees_its_dedup_key(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        first = store.put(Q, b"a", codec="msgpack", dedup_key="k").id
    plant(tmp_path, first, "record")
    with open_store(tmp_path) as store:
        again = store.put(Q, b"again", codec="msgpack", dedup_key="k")
        assert again.id != first
        assert store.check_integrity() == []
        assert store.put(Q, b"third", codec="msgpack", dedup_key="k").id == again.id
        assert drain(store, 10) == [again.id]


@pytest.mark.parametrize("how", ["record", "missing"])
def test_check_integrity_names_each_damaged_message(
    three: tuple[Path, list[str]], how: str
) -> None:
    folder, (a, b, c) = three
    plant(folder, b, how)
    with open_store(folder) as store:
        problems = store.check_integrity()
        assert problems
        assert all(b in line for line in problems), problems
        assert not any(a in line or c in line for line in problems)


# -- repair ---------------------------------------------------------------------------------


def test_repair_rebuilds_wiped_indexes_from_the_records(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        ids = [store.put(Q, p, codec="msgpack", priority=n).id for n, p in enumerate([b"a", b"b"])]
        keyed = store.put(Q, b"k", codec="msgpack", dedup_key="key").id
        dead = store.put(Q, b"d", codec="msgpack").id
        assert store.dead_letter(Q, dead, error="boom")
    with raw_env(tmp_path) as (env, txn):
        for name in (b"ready", b"dead", b"dedup"):
            txn.drop(env.open_db(name, txn=txn), delete=False)
    with open_store(tmp_path) as store:
        assert store.lease(Q, lease_timeout=LONG) == []  # nothing indexed, nothing delivered
        done = store.repair()
        for message_id in (*ids, keyed, dead):
            assert any(message_id in line for line in done), (message_id, done)
        assert store.repair() == []
        assert store.check_integrity() == []
        assert store.put(Q, b"dup", codec="msgpack", dedup_key="key").id == keyed
        assert [m.id for m in store.dead_letters(Q)] == [dead]
        assert drain(store, 10) == [ids[1], ids[0], keyed]


def test_repair_moves_damage_aside_drops_dangling_entries_and_is_idempotent(
    three: tuple[Path, list[str]],
) -> None:
    folder, (a, b, c) = three
    plant(folder, a, "record")
    plant(folder, b, "missing")
    with open_store(folder) as store:
        done = store.repair()
        assert any(a in line and "dead letter" in line for line in done), done
        assert any(b in line and "missing" in line for line in done), done
        assert not any(c in line for line in done)
        assert store.repair() == []
        assert store.check_integrity() == []
        assert [m.id for m in store.dead_letters(Q)] == [a]
        assert drain(store, 1) == [c]


def test_repair_keeps_an_undecodable_record_no_index_places_in_the_orphan_queue(
    tmp_path: Path,
) -> None:
    with raw_env(tmp_path) as (env, txn):
        txn.put(b"stray-record", GARBAGE, db=env.open_db(b"messages", txn=txn))
    with open_store(tmp_path) as store:
        assert any("stray-record" in line for line in store.check_integrity())
        assert any("stray-record" in line for line in store.repair())
        [orphan] = store.dead_letters(ORPHAN_QUEUE)
        assert orphan.id == "stray-record"
        assert orphan.value == GARBAGE
        assert store.check_integrity() == []


# -- the damage hook ----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["record", "missing"])
def test_damage_hook_writes_through_lmdb_and_keeps_the_index(
    three: tuple[Path, list[str]], how: str
) -> None:
    folder, (_a, b, _c) = three
    with open_store(folder) as store:
        assert store.damages == {"record", "missing"}
        store.damage_record(Q, b, how)  # type: ignore[arg-type]
    with raw_env(folder) as (env, txn):
        raw = txn.get(b.encode(), db=env.open_db(b"messages", txn=txn))
        ready = [bytes(v) for _, v in txn.cursor(db=env.open_db(b"ready", txn=txn))]
    assert b"\x00" + b.encode() in ready
    if how == "missing":
        assert raw is None
    else:
        assert raw is not None
        with pytest.raises(Exception):  # noqa: B017, PT011 - any decode failure will do
            msgpack.unpackb(raw)


def test_damage_hook_refuses_unknown_damage_and_unknown_messages(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        kept = store.put(Q, b"a", codec="msgpack").id
        with pytest.raises(ConfigurationError):
            store.damage_record(Q, kept, "melted")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            store.damage_record("other", kept, "record")
        assert store.inspect(Q, kept) is not None


# -- a full disk ----------------------------------------------------------------------------


def fill_the_queue(store: LMDBQueueStore) -> list[str]:
    """Put until the store refuses: in batches, then one at a time."""
    ids: list[str] = []
    for batch in (100, 1):
        with contextlib.suppress(StoreError):
            while True:
                ids += [m.id for m in store.put_many(Q, [b"m" * 150] * batch, codec="msgpack")]
    with pytest.raises(StoreError, match="refusing new messages"):
        store.put(Q, b"one more", codec="msgpack")
    return ids


@pytest.mark.parametrize(
    ("filler", "limit"), [(False, 1), (True, 1), (True, 100), (True, 10_000)]
)  # fmt: skip
def test_a_store_that_filled_its_disk_drains_to_the_last_message(
    tmp_path: Path,
    filler: bool,
    limit: int,
    small_disk: Callable[[str], AbstractContextManager[Path]],
) -> None:
    # limit=10_000 asks for more than the reserve can rewrite at once: the lease
    # returns fewer (it leases "up to limit"). ack_many is atomic, so its batches
    # must fit the reserve (half a MiB on this disk): 10 acks at a time (20 random
    # ids can land on enough distinct pages to outgrow it, about one run in four).
    with small_disk("4m") as disk:
        store = LMDBQueueStore(disk / "q", map_size=1 << 20)
        try:
            stored = fill_the_queue(store)
            if filler:
                fill_to_the_last_byte(disk)
                assert os.statvfs(disk).f_bavail == 0
            assert len(stored) > 1000
            delivered: list[str] = []
            while leased := store.lease(Q, lease_timeout=LONG, limit=limit):
                delivered += [m.id for m in leased]
                if limit == 1:
                    assert all(store.ack(Q, m.id, lease_token=m.lease_token) for m in leased)
                else:
                    for start in range(0, len(leased), 10):
                        batch = [(m.id, m.lease_token) for m in leased[start : start + 10]]
                        assert store.ack_many(Q, batch) == len(batch)
            assert sorted(delivered) == sorted(stored)  # every one, once
            assert store.stats(Q).total == 0
        finally:
            store.close()


def test_disk_reserve_is_a_url_option(tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError):
        open_queue_store(f"lmdb:///{tmp_path}/env?disk_reserve=-1")
    store = open_queue_store(f"lmdb:///{tmp_path}/env?disk_reserve=0")
    try:
        store.put(Q, b"a", codec="msgpack")
        assert (tmp_path / "env" / "data.mdb").stat().st_size < 1 << 20  # nothing reserved
    finally:
        store.close()
