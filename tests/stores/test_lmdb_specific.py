"""What only the LMDB store has: its URL options, durability, map growth, files and fork rules."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import lmdb
import pytest

from localqueue import open_attempt_store, open_queue_store
from localqueue.errors import (
    ConfigurationError,
    InvalidOptionError,
    QueueStoreLockedError,
    SchemaVersionError,
    StoreCorruptedError,
    StoreError,
)
from localqueue.stores.lmdb import LMDBQueueStore
from localqueue.testing import FakeClock


def _url(path: Path, query: str = "") -> str:
    return f"lmdb:///{path}" + (f"?{query}" if query else "")


# -- URL and options --------------------------------------------------------------


def test_relative_url_opens_a_directory_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_queue_store("lmdb:///jobs/env")
    try:
        assert isinstance(store, LMDBQueueStore)
        assert (tmp_path / "jobs" / "env" / "data.mdb").exists()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("query", "option"),
    [
        ("durability=fast", "durability"),
        ("map_size=10", "map_size"),
        ("map_size=big", "map_size"),
        ("max_readers=0", "max_readers"),
        ("serializer=pickle", "serializer"),
        ("timeout=5", "timeout"),
    ],
)
def test_bad_options_are_rejected_by_name(tmp_path: Path, query: str, option: str) -> None:
    with pytest.raises(InvalidOptionError) as info:
        open_queue_store(_url(tmp_path / "env", query))
    assert info.value.option == option
    assert not (tmp_path / "env").exists()


@pytest.mark.parametrize("url", ["lmdb://", "lmdb:///", "lmdb://host/dir"])
def test_url_without_a_directory_or_with_a_host_is_rejected(url: str) -> None:
    with pytest.raises(ConfigurationError, match="lmdb"):
        open_queue_store(url)


@pytest.mark.parametrize(("durability", "sync"), [("sync", True), ("nosync", False)])
def test_durability_maps_onto_lmdb_sync_flags(tmp_path: Path, durability: str, sync: bool) -> None:
    store = open_queue_store(_url(tmp_path / "env", f"durability={durability}"))
    try:
        assert isinstance(store, LMDBQueueStore)
        assert store.durability == durability
        # The flags are only visible on the engine's handle.
        flags = store._shared().env.flags()
        assert (flags["sync"], flags["metasync"]) == (sync, sync)
    finally:
        store.close()


def test_one_process_cannot_mix_durabilities_on_one_directory(tmp_path: Path) -> None:
    first = open_queue_store(_url(tmp_path / "env"))
    try:
        with pytest.raises(ConfigurationError, match="durability"):
            open_queue_store(_url(tmp_path / "env", "durability=nosync"))
        second = open_queue_store(_url(tmp_path / "env", "durability=sync"))
        second.close()
    finally:
        first.close()


def test_missing_extra_raises_the_install_hint_at_first_use(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["lmdb"] = None  # as if the extra were not installed
        import localqueue
        from localqueue.errors import BackendNotInstalledError
        try:
            localqueue.open_queue_store("lmdb:///{tmp_path}/env")
        except BackendNotInstalledError as exc:
            assert isinstance(exc, ImportError)
            print(exc.install_hint)
        else:
            raise SystemExit("opened an LMDB store without lmdb")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "pip install 'durable-localqueue[lmdb]' (from a source checkout: pip install '.[lmdb]')"
    )


# -- files on disk ------------------------------------------------------------------


def test_messages_leases_and_dead_letters_survive_reopening(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    store = open_queue_store(_url(tmp_path / "env"), clock=clock)
    leased_id = store.put("q", b"\x01", codec="msgpack", priority=3).id
    ready_id = store.put("q", b"\x02", codec="msgpack", dedup_key="k").id
    dead_id = store.put("other", b"\x03", codec="json").id
    [leased] = store.lease("q", lease_timeout=60, leased_by="w1")
    assert leased.id == leased_id
    store.dead_letter("other", dead_id, error="boom")
    store.close()

    store = open_queue_store(_url(tmp_path / "env"), clock=clock)
    try:
        again = store.inspect("q", leased_id)
        assert again is not None
        assert (again.state, again.attempts, again.leased_by) == ("inflight", 1, "w1")
        assert store.put("q", b"\x09", codec="msgpack", dedup_key="k").id == ready_id
        assert store.dead_letters("other")[0].last_error == "boom"
        assert store.queues() == ["other", "q"]
        clock.advance(61)
        assert [m.id for m in store.lease("q", lease_timeout=5, limit=5)] == [leased_id, ready_id]
    finally:
        store.close()


def test_attempt_store_shares_the_directory_and_survives_reopening(tmp_path: Path) -> None:
    queue_store = open_queue_store(_url(tmp_path / "env"))
    attempts = open_attempt_store(_url(tmp_path / "env"))
    attempts.begin_attempt("job-1")
    attempts.record_failure("job-1", "ValueError: nope")
    queue_store.put("q", b"\x01", codec="msgpack")
    attempts.close()
    queue_store.close()
    attempts = open_attempt_store(_url(tmp_path / "env"))
    try:
        record = attempts.get_record("job-1")
        assert record is not None
        assert (record.attempts, record.last_error) == (1, "ValueError: nope")
    finally:
        attempts.close()


def _write_meta(path: Path, key: bytes, value: bytes) -> None:
    env = lmdb.open(str(path), max_dbs=8)
    try:
        meta = env.open_db(b"meta")
        with env.begin(write=True) as txn:
            txn.put(key, value, db=meta)
    finally:
        env.close()


def test_a_store_from_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    open_queue_store(_url(tmp_path / "env")).close()
    _write_meta(tmp_path / "env", b"schema_version", b"99")
    with pytest.raises(SchemaVersionError) as info:
        open_queue_store(_url(tmp_path / "env"))
    assert (info.value.found, info.value.supported) == (99, 1)
    with pytest.raises(SchemaVersionError):  # still refused: nothing was rewritten
        open_attempt_store(_url(tmp_path / "env"))


def test_a_garbled_schema_version_is_reported_as_corruption(tmp_path: Path) -> None:
    open_queue_store(_url(tmp_path / "env")).close()
    _write_meta(tmp_path / "env", b"schema_version", b"not a number")
    with pytest.raises(StoreCorruptedError, match="schema"):
        open_queue_store(_url(tmp_path / "env"))


def test_a_directory_with_a_non_lmdb_data_file_is_reported_as_corruption(tmp_path: Path) -> None:
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "data.mdb").write_bytes(b"this is not an LMDB file" * 1000)
    with pytest.raises(StoreCorruptedError) as info:
        open_queue_store(_url(tmp_path / "env"))
    assert isinstance(info.value.__cause__, lmdb.Error)


def test_a_full_map_grows_and_the_write_succeeds(tmp_path: Path) -> None:
    store = open_queue_store(_url(tmp_path / "env", f"map_size={1 << 20}"))
    try:
        payload = b"x" * 100_000
        store.put_many("q", [payload] * 8, codec="msgpack")  # ~800 KB: fills 1 MiB
        store.put_many("q", [payload] * 8, codec="msgpack")  # needs the map to grow
        assert store.stats("q").ready == 16
    finally:
        store.close()


def test_a_batch_too_big_even_for_the_grown_map_stores_nothing(tmp_path: Path) -> None:
    store = open_queue_store(_url(tmp_path / "env", f"map_size={1 << 20}"))
    try:
        store.put("q", b"kept", codec="msgpack")
        with pytest.raises(StoreError, match="map_size"):
            store.put_many("q", [b"x" * 1_000_000] * 6, codec="msgpack")
        assert store.stats("q").ready == 1
        [message] = store.lease("q", lease_timeout=5)
        assert message.payload == b"kept"
    finally:
        store.close()


def test_readers_full_is_reported_as_a_locked_store(tmp_path: Path) -> None:
    path = tmp_path / "env"
    open_queue_store(_url(path, "max_readers=1")).close()
    # Another process holds the only reader slot (the first opener fixes the count).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, lmdb
                env = lmdb.open({str(path)!r}, max_dbs=8, max_readers=1)
                txn = env.begin()
                print("holding", flush=True)
                sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        # Opening needs a reader slot too, so the error surfaces there.
        with pytest.raises(QueueStoreLockedError, match="reader"):
            open_queue_store(_url(path, "max_readers=1"))
    finally:
        holder.communicate("\n", timeout=60)


# -- processes -----------------------------------------------------------------------


def _put_later(url: str, delay: float) -> None:
    time.sleep(delay)
    store = open_queue_store(url)
    store.put("q", b"\x01", codec="msgpack")
    store.close()


def test_wait_notices_a_put_from_another_process(tmp_path: Path) -> None:
    url = _url(tmp_path / "env")
    store = open_queue_store(url)
    child = multiprocessing.get_context("spawn").Process(target=_put_later, args=(url, 0.2))
    child.start()
    try:
        start = time.monotonic()
        while not store.lease("q", lease_timeout=5) and time.monotonic() - start < 60:
            store.wait("q", 30.0)
        assert time.monotonic() - start < 25  # woke on the put, not at the timeout
    finally:
        child.join(60)
        store.close()
    assert child.exitcode == 0


def test_wait_wakes_on_a_put_from_another_thread(tmp_path: Path) -> None:
    store = open_queue_store(_url(tmp_path / "env"))
    other = open_queue_store(_url(tmp_path / "env"))
    timer = threading.Timer(0.1, lambda: other.put("q", b"\x01", codec="msgpack"))
    try:
        start = time.monotonic()
        timer.start()
        store.wait("q", 30.0)
        assert time.monotonic() - start < 25
        assert store.lease("q", lease_timeout=5)
    finally:
        timer.join()
        other.close()
        store.close()


def _consume_forked(url: str, log: str) -> None:
    store = open_queue_store(url)
    with open(log, "a") as out:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            messages = store.lease("q", lease_timeout=60, limit=10)
            for message in messages:
                if store.ack("q", message.id, lease_token=message.lease_token):
                    out.write(message.payload.decode() + "\n")
            if not messages:
                if store.stats("q").total == 0:
                    break
                store.wait("q", 0.2)
    store.close()


def test_forked_consumers_reopen_a_store_the_parent_holds_open(tmp_path: Path) -> None:
    url = _url(tmp_path / "env")
    parent = open_queue_store(url)
    try:
        parent.put_many("q", [f"m{i}".encode() for i in range(200)], codec="msgpack")
        ctx = multiprocessing.get_context("fork")
        logs = [str(tmp_path / f"acked-{k}.log") for k in (1, 2)]
        children = [ctx.Process(target=_consume_forked, args=(url, log)) for log in logs]
        for child in children:
            child.start()
        for child in children:
            child.join(180)
        assert [c.exitcode for c in children] == [0, 0]
        acked = Counter(line for log in logs for line in Path(log).read_text().splitlines())
        assert set(acked) == {f"m{i}" for i in range(200)}
        assert max(acked.values()) == 1
        assert parent.stats("q").total == 0  # the parent's handle still works
    finally:
        parent.close()


def test_a_handle_opened_before_fork_refuses_to_work_in_the_child(tmp_path: Path) -> None:
    store = open_queue_store(_url(tmp_path / "env"))
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                store.stats("q")
            except StoreError as exc:
                code = 0 if "fork" in str(exc) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert store.stats("q").total == 0
    finally:
        store.close()
