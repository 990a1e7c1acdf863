"""Conformance tests at the edges of a store's declared :class:`~localqueue.validation.StoreLimits`.

A store declares its limits in a ``limits`` attribute (or none, for the shared
ones). Inputs exactly at each limit must be stored and read back whole, and
one more must be refused with nothing stored, so an engine whose column or
key is shorter than it claims fails here instead of in production.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from localqueue.errors import PayloadTooLargeError, ValidationError
from localqueue.protocols import AttemptStore, QueueStore
from localqueue.testing._base import CODEC, StoreSuiteBase
from localqueue.validation import SHARED_LIMITS, StoreLimits, limits_of

__all__ = ["AttemptStoreLimitsSuite", "LimitsSuite"]

LONG = 3600.0


class LimitsSuite(StoreSuiteBase):
    """Payloads, names, keys and batches at the store's declared limits."""

    @pytest.fixture
    def store(self, make_queue_store: Callable[[], QueueStore]) -> QueueStore:
        """One handle on the store under test."""
        return make_queue_store()

    @pytest.fixture
    def limits(self, store: QueueStore) -> StoreLimits:
        """The limits the store declares."""
        return limits_of(store)

    def test_declared_limits_are_within_the_shared_ones(self, limits: StoreLimits) -> None:
        for name in ("max_payload_bytes", "max_queue_name_length", "max_key_length", "max_batch"):
            declared = getattr(limits, name)
            assert 1 <= declared <= getattr(SHARED_LIMITS, name), name

    def test_payload_at_the_limit_is_stored_whole(
        self, store: QueueStore, limits: StoreLimits
    ) -> None:
        codec = CODEC
        size = limits.max_payload_bytes
        # Not one repeated byte, so an engine that compresses or truncates is seen.
        payload = (bytes(range(256)) * (size // 256 + 1))[:size]
        m = store.put("big", payload, codec=codec)
        with pytest.raises(PayloadTooLargeError):
            store.put("big", payload + b"x", codec=codec)
        with pytest.raises(PayloadTooLargeError):
            store.put_many("big", [b"small", payload + b"x"], codec=codec)
        assert store.stats("big").total == 1
        leased = store.lease("big", lease_timeout=LONG)
        assert [x.id for x in leased] == [m.id]
        assert leased[0].payload == payload

    def test_queue_name_at_the_limit(self, store: QueueStore, limits: StoreLimits) -> None:
        codec = CODEC
        name = "q" * limits.max_queue_name_length
        shorter = name[:-1]
        m = store.put(name, b"long", codec=codec)
        store.put(shorter, b"shorter", codec=codec)
        with pytest.raises(ValidationError):
            store.put(name + "q", b"x", codec=codec)
        assert store.queues() == sorted([name, shorter])
        assert store.lease(name, lease_timeout=LONG)[0].id == m.id
        assert store.stats(shorter).ready == 1

    def test_dedup_key_and_worker_id_at_the_limit(
        self, store: QueueStore, limits: StoreLimits
    ) -> None:
        codec = CODEC
        key = "k" * limits.max_key_length
        first = store.put("keys", b"a", codec=codec, dedup_key=key)
        # Keys that agree on every character an engine might keep must stay apart.
        other = store.put("keys", b"b", codec=codec, dedup_key=key[:-1] + "z")
        assert other.id != first.id
        assert store.put("keys", b"c", codec=codec, dedup_key=key).id == first.id
        with pytest.raises(ValidationError):
            store.put("keys", b"x", codec=codec, dedup_key=key + "k")
        worker = "w" * limits.max_key_length
        leased = store.lease("keys", lease_timeout=LONG, leased_by=worker, limit=2)
        assert [m.leased_by for m in leased] == [worker, worker]
        with pytest.raises(ValidationError):
            store.lease("keys", lease_timeout=LONG, leased_by=worker + "w")
        seen = store.inspect("keys", first.id)
        assert seen is not None
        assert (seen.dedup_key, seen.leased_by) == (key, worker)
        assert store.stats("keys").total == 2

    def test_batches_at_the_limit(self, store: QueueStore, limits: StoreLimits) -> None:
        codec = CODEC
        n = limits.max_batch
        with pytest.raises(ValidationError):
            store.put_many("batch", [b"x"] * (n + 1), codec=codec)
        assert store.stats("batch").total == 0
        put = store.put_many("batch", [i.to_bytes(4, "big") for i in range(n)], codec=codec)
        assert len(put) == n
        with pytest.raises(ValidationError):
            store.lease("batch", lease_timeout=LONG, limit=n + 1)
        leased = store.lease("batch", lease_timeout=LONG, limit=n)
        assert [m.id for m in leased] == [m.id for m in put]
        pairs = [(m.id, m.lease_token) for m in leased]
        with pytest.raises(ValidationError):
            store.ack_many("batch", [*pairs, pairs[0]])
        assert store.stats("batch").inflight == n
        assert store.ack_many("batch", pairs) == n
        assert store.stats("batch").total == 0


class AttemptStoreLimitsSuite(StoreSuiteBase):
    """Retry keys at the attempt store's declared key limit."""

    def test_retry_key_at_the_limit(self, make_attempt_store: Callable[[], AttemptStore]) -> None:
        attempts = make_attempt_store()
        key = "r" * limits_of(attempts).max_key_length
        assert attempts.begin_attempt(key).attempts == 1
        assert attempts.begin_attempt(key[:-1] + "s").attempts == 1
        assert attempts.begin_attempt(key).attempts == 2
        with pytest.raises(ValidationError):
            attempts.begin_attempt(key + "r")
        record = attempts.get_record(key)
        assert record is not None
        assert (record.key, record.attempts) == (key, 2)
