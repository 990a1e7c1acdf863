"""Conformance tests for ``put(max_size=...)``: the capacity bound is one atomic step.

A store that counts and inserts in two steps lets concurrent producers (threads,
handles, processes) overshoot the bound; these tests race them and check that the
queue never holds more than ``max_size`` unfinished messages.
"""

from __future__ import annotations

import multiprocessing
import queue as stdlib_queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from localqueue._models import Capability
from localqueue.errors import Full, ValidationError
from localqueue.protocols import QueueStore
from localqueue.registry import open_queue_store
from localqueue.testing._base import CODEC, StoreSuiteBase

__all__ = ["CapacitySuite"]

Q = "bounded"
LONG = 3600.0


def _unfinished(store: QueueStore, queue: str = Q) -> int:
    s = store.stats(queue)
    return s.ready + s.delayed + s.inflight


def _put(store: QueueStore, payload: bytes, max_size: int | None, **options: Any) -> Any:
    return store.put(Q, payload, codec=CODEC, max_size=max_size, **options)


def bounded_producer(
    url: str, name: str, attempts: int, max_size: int, log: str, start: Any
) -> None:
    """Child body: wait at the ``start`` barrier, try ``attempts`` bounded puts, log them."""
    store = open_queue_store(url)
    lines: list[str] = []
    try:
        start.wait(60)
        for i in range(attempts):
            payload = f"{name}-{i}"
            try:
                _put(store, payload.encode(), max_size)
            except Full:
                lines.append(f"full {payload}")
            else:
                lines.append(f"stored {payload}")
    finally:
        store.close()
        Path(log).write_text("".join(line + "\n" for line in lines))


class CapacitySuite(StoreSuiteBase):
    """``put`` / ``put_many`` with ``max_size`` never exceed it, and store nothing when full."""

    # -- one handle --------------------------------------------------------------

    def test_put_past_max_size_raises_full_and_stores_nothing(
        self, make_queue_store: Callable[[], QueueStore]
    ) -> None:
        store = make_queue_store()
        stored = [_put(store, f"m{i}".encode(), 3).id for i in range(3)]
        with pytest.raises(Full):
            _put(store, b"over", 3)
        with pytest.raises(stdlib_queue.Full):
            _put(store, b"over", 3, delay=5.0, priority=9)
        assert store.stats(Q).total == 3
        leased = store.lease(Q, lease_timeout=LONG, limit=10)
        assert sorted(m.id for m in leased) == sorted(stored)

    def test_leased_and_delayed_messages_count_dead_letters_do_not(
        self, make_queue_store: Callable[[], QueueStore]
    ) -> None:
        store = make_queue_store()
        _put(store, b"later", 3, delay=LONG)
        _put(store, b"a", 3)
        _put(store, b"b", 3)
        [held] = store.lease(Q, lease_timeout=LONG)
        with pytest.raises(Full):
            _put(store, b"over", 3)
        assert store.dead_letter(Q, held.id, lease_token=held.lease_token, error="boom")
        _put(store, b"fits", 3)
        assert _unfinished(store) == 3
        assert store.stats(Q).dead == 1

    def test_an_ack_makes_room(self, make_queue_store: Callable[[], QueueStore]) -> None:
        store = make_queue_store()
        _put(store, b"a", 2)
        _put(store, b"b", 2)
        with pytest.raises(Full):
            _put(store, b"c", 2)
        [m] = store.lease(Q, lease_timeout=LONG)
        assert store.ack(Q, m.id, lease_token=m.lease_token)
        _put(store, b"c", 2)
        assert store.stats(Q).total == 2

    def test_the_bound_is_per_queue(self, make_queue_store: Callable[[], QueueStore]) -> None:
        store = make_queue_store()
        codec = CODEC
        store.put("other", b"x", codec=codec)
        store.put("other", b"y", codec=codec)
        _put(store, b"a", 1)
        assert store.stats(Q).total == 1
        assert store.stats("other").total == 2

    def test_no_max_size_means_no_bound(self, make_queue_store: Callable[[], QueueStore]) -> None:
        store = make_queue_store()
        for i in range(5):
            _put(store, f"m{i}".encode(), None)
        store.put_many(Q, [b"x", b"y"], codec=CODEC, max_size=None)
        assert store.stats(Q).total == 7

    def test_put_many_is_all_or_nothing_against_the_bound(
        self, make_queue_store: Callable[[], QueueStore]
    ) -> None:
        store = make_queue_store()
        codec = CODEC
        store.put_many(Q, [b"a", b"b", b"c"], codec=codec, max_size=5)
        with pytest.raises(Full):
            store.put_many(Q, [b"d", b"e", b"f"], codec=codec, max_size=5)
        assert store.stats(Q).total == 3
        with pytest.raises(Full):
            store.put_many(Q, [b"1"] * 6, codec=codec, max_size=5)
        assert store.stats(Q).total == 3
        stored = store.put_many(Q, [b"d", b"e"], codec=codec, max_size=5)
        assert len(stored) == 2
        assert store.stats(Q).total == 5
        assert store.put_many(Q, [], codec=codec, max_size=5) == []

    def test_a_duplicate_put_returns_the_stored_message_even_when_full(
        self, make_queue_store: Callable[[], QueueStore]
    ) -> None:
        store = make_queue_store()
        first = _put(store, b"a", 1, dedup_key="k")
        again = _put(store, b"b", 1, dedup_key="k")
        assert again.id == first.id
        assert again.payload == b"a"
        with pytest.raises(Full):
            _put(store, b"c", 1, dedup_key="other")
        assert store.stats(Q).total == 1

    @pytest.mark.parametrize("bad", [0, -1, True, False, 1.5, "3", object()])
    def test_bad_max_size_is_rejected_and_changes_nothing(
        self, make_queue_store: Callable[[], QueueStore], bad: object
    ) -> None:
        store = make_queue_store()
        codec = CODEC
        _put(store, b"kept", None)
        with pytest.raises(ValidationError):
            store.put(Q, b"x", codec=codec, max_size=bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            store.put(Q, b"x", codec=codec, dedup_key="d", max_size=bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            store.put_many(Q, [b"x", b"y"], codec=codec, max_size=bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            store.put_many(Q, [], codec=codec, max_size=bad)  # type: ignore[arg-type]
        assert store.stats(Q).total == 1

    # -- threads -----------------------------------------------------------------

    def _race_threads(
        self, handles: list[QueueStore], max_size: int, attempts: int, batch: int
    ) -> tuple[int, int]:
        """Threads (one per handle) race bounded puts; return (stored, refused) counts."""
        stored = refused = 0
        lock = threading.Lock()
        barrier = threading.Barrier(len(handles))
        errors: list[BaseException] = []

        def produce(store: QueueStore) -> None:
            nonlocal stored, refused
            codec = CODEC
            try:
                barrier.wait(30)
                for _ in range(attempts):
                    try:
                        if batch == 1:
                            _put(store, b"x", max_size)
                        else:
                            store.put_many(Q, [b"x"] * batch, codec=codec, max_size=max_size)
                    except Full:
                        with lock:
                            refused += 1
                    else:
                        with lock:
                            stored += batch
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=produce, args=(h,)) for h in handles]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        return stored, refused

    def test_threads_on_one_handle_never_exceed_the_bound(
        self, make_queue_store: Callable[[], QueueStore]
    ) -> None:
        store = make_queue_store()
        stored, refused = self._race_threads([store] * 8, max_size=10, attempts=5, batch=1)
        assert stored == 10
        assert refused == 8 * 5 - 10
        assert store.stats(Q).total == 10

    def test_threads_on_several_handles_never_exceed_the_bound(
        self, make_queue_store: Callable[[], QueueStore]
    ) -> None:
        handles = [make_queue_store() for _ in range(4)]
        stored, refused = self._race_threads(handles * 2, max_size=10, attempts=5, batch=1)
        assert stored == 10
        assert refused == 8 * 5 - 10
        assert handles[0].stats(Q).total == 10

    def test_batches_from_threads_never_exceed_the_bound(
        self, make_queue_store: Callable[[], QueueStore]
    ) -> None:
        handles = [make_queue_store() for _ in range(4)]
        stored, _ = self._race_threads(handles, max_size=10, attempts=4, batch=3)
        assert stored == 9  # three batches of three fit; a fourth would make 12
        assert handles[0].stats(Q).total == 9

    def test_consumers_freeing_room_never_let_producers_exceed_the_bound(
        self, make_queue_store: Callable[[], QueueStore]
    ) -> None:
        """While a consumer acks, a monitor never sees more than ``max_size`` unfinished."""
        handles = [make_queue_store() for _ in range(3)]
        watcher = make_queue_store()
        done = threading.Event()
        seen: list[int] = []
        acked = 0

        def consume() -> None:
            nonlocal acked
            store = make_queue_store()
            while not done.is_set():
                leased = store.lease(Q, lease_timeout=LONG, limit=2)
                for m in leased:
                    if store.ack(Q, m.id, lease_token=m.lease_token):
                        acked += 1
                if not leased:
                    time.sleep(0.001)

        def watch() -> None:
            while not done.is_set():
                seen.append(_unfinished(watcher))

        helpers = [threading.Thread(target=consume), threading.Thread(target=watch)]
        for t in helpers:
            t.start()
        try:
            stored, _ = self._race_threads(handles, max_size=4, attempts=40, batch=1)
        finally:
            done.set()
            for t in helpers:
                t.join(60)
        assert seen
        assert max(seen) <= 4
        assert stored == acked + _unfinished(watcher)
        assert _unfinished(watcher) <= 4

    # -- processes ---------------------------------------------------------------

    def test_processes_never_exceed_the_bound(
        self,
        store_url: str,
        capabilities: frozenset[Capability],
        tmp_path: Path,
        make_queue_store: Callable[[], QueueStore],
    ) -> None:
        """Four producer processes race 10 puts each into ``max_size=10``: exactly 10 land."""
        self.require(capabilities, Capability.MULTI_PROCESS)
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Barrier(4)
        names = [f"p{k}" for k in range(4)]
        procs = [
            ctx.Process(
                target=bounded_producer,
                args=(store_url, name, 10, 10, str(tmp_path / f"{name}.log"), start),
            )
            for name in names
        ]
        for p in procs:
            p.start()
        try:
            for p in procs:
                p.join(120)
            assert [p.exitcode for p in procs] == [0] * len(procs)
        finally:
            for p in procs:
                if p.is_alive():
                    p.kill()
                    p.join()
        outcomes = [
            line.split(" ", 1)
            for name in names
            for line in (tmp_path / f"{name}.log").read_text().splitlines()
        ]
        assert len(outcomes) == 40, "every put either stored or raised Full"
        stored = {payload for outcome, payload in outcomes if outcome == "stored"}
        assert len(stored) == 10
        assert make_queue_store().stats(Q).total == 10
        # The children wrote on the real clock; read back on it too.
        store = open_queue_store(store_url)
        try:
            leased = store.lease(Q, lease_timeout=LONG, limit=100)
        finally:
            store.close()
        assert {m.payload.decode() for m in leased} == stored
