"""Conformance tests for :class:`~localqueue.protocols.AttemptStore`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest

from localqueue._models import Capability
from localqueue.errors import StoreClosedError, ValidationError
from localqueue.protocols import AttemptStore
from localqueue.testing._base import FakeClock, StoreSuiteBase, Timeline

__all__ = [
    "AttemptKeysSuite",
    "AttemptRecordSuite",
    "AttemptStoreBadInputSuite",
    "AttemptStoreClosedSuite",
    "AttemptStoreSharingSuite",
    "AttemptTimestampSuite",
]


class AttemptStoreCase(StoreSuiteBase):
    """Base of the attempt-store classes."""

    @pytest.fixture
    def attempts(self, make_attempt_store: Callable[[], AttemptStore]) -> AttemptStore:
        """One handle on the attempt store under test."""
        return make_attempt_store()


class AttemptRecordSuite(AttemptStoreCase):
    """Counting attempts, recording failures, exhaustion and reset."""

    def test_unknown_key_has_no_record(self, attempts: AttemptStore) -> None:
        assert attempts.get_record("job:1") is None

    def test_begin_attempt_counts_and_keeps_first_time(
        self, attempts: AttemptStore, timeline: Timeline
    ) -> None:
        first = attempts.begin_attempt("job:1")
        assert (first.key, first.attempts, first.exhausted, first.last_error) == (
            "job:1",
            1,
            False,
            None,
        )
        assert first.first_attempt_at == pytest.approx(first.last_attempt_at, rel=0, abs=1e-3)
        timeline.advance(1)
        second = attempts.begin_attempt("job:1")
        assert second.attempts == 2
        assert second.first_attempt_at == pytest.approx(first.first_attempt_at, rel=0, abs=1e-3)
        assert second.last_attempt_at > first.last_attempt_at
        assert attempts.get_record("job:1") == second

    def test_record_failure_and_sticky_exhaustion(self, attempts: AttemptStore) -> None:
        assert attempts.record_failure("missing", "boom") is None
        attempts.begin_attempt("k")
        failed = attempts.record_failure("k", "ConnectionError: refused")
        assert failed is not None
        assert (failed.key, failed.attempts) == ("k", 1)
        assert failed.last_error == "ConnectionError: refused"
        assert not failed.exhausted
        # The next attempt keeps the failure on record until another replaces it.
        again = attempts.begin_attempt("k")
        assert (again.key, again.attempts, again.last_error) == ("k", 2, "ConnectionError: refused")
        spent = attempts.record_failure("k", "again", exhausted=True)
        assert spent is not None
        assert spent.exhausted
        later = attempts.record_failure("k", "third")
        assert later is not None
        assert later.exhausted
        assert (later.key, later.attempts) == ("k", 2)
        assert attempts.begin_attempt("k").exhausted

    def test_reset_forgets(self, attempts: AttemptStore) -> None:
        attempts.begin_attempt("k")
        attempts.begin_attempt("other")
        assert attempts.reset("k")
        assert attempts.get_record("k") is None
        assert not attempts.reset("k")
        assert attempts.begin_attempt("k").attempts == 1
        other = attempts.get_record("other")
        assert other is not None
        assert other.attempts == 1


class AttemptStoreSharingSuite(AttemptStoreCase):
    """Handles, threads, persistence and closing."""

    def test_handles_share_records(self, make_attempt_store: Callable[[], AttemptStore]) -> None:
        a, b = make_attempt_store(), make_attempt_store()
        a.begin_attempt("k")
        assert b.begin_attempt("k").attempts == 2

    def test_concurrent_begin_attempt_loses_no_increment(self, attempts: AttemptStore) -> None:
        def work() -> None:
            for _ in range(50):
                attempts.begin_attempt("shared")

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        record = attempts.get_record("shared")
        assert record is not None
        assert record.attempts == 200

    def test_records_survive_reopen(
        self,
        make_attempt_store: Callable[[], AttemptStore],
        capabilities: frozenset[Capability],
    ) -> None:
        self.require(capabilities, Capability.PERSISTENT)
        first = make_attempt_store()
        first.begin_attempt("k")
        first.record_failure("k", "boom", exhausted=True)
        first.close()
        record = make_attempt_store().get_record("k")
        assert record is not None
        assert (record.attempts, record.exhausted, record.last_error) == (1, True, "boom")

    def test_close_is_idempotent_and_final(
        self, make_attempt_store: Callable[[], AttemptStore]
    ) -> None:
        store = make_attempt_store()
        store.close()
        store.close()
        with pytest.raises(StoreClosedError):
            store.begin_attempt("k")


class AttemptStoreBadInputSuite(AttemptStoreCase):
    """Bad keys are rejected with a typed error and change nothing."""

    @pytest.mark.parametrize("key", ["", "k" * 513, None, 5, b"k"])
    def test_bad_keys(self, attempts: AttemptStore, key: Any) -> None:
        attempts.begin_attempt("keep")
        for call in (
            lambda: attempts.get_record(key),
            lambda: attempts.begin_attempt(key),
            lambda: attempts.record_failure(key, "e"),
            lambda: attempts.reset(key),
        ):
            with pytest.raises(ValidationError):
                call()
        record = attempts.get_record("keep")
        assert record is not None
        assert record.attempts == 1

    def test_bad_error_type(self, attempts: AttemptStore) -> None:
        attempts.begin_attempt("keep")
        with pytest.raises(ValidationError):
            attempts.record_failure("keep", 42)  # type: ignore[arg-type]
        record = attempts.get_record("keep")
        assert record is not None
        assert record.last_error is None


class AttemptTimestampSuite(AttemptStoreCase):
    """Attempt times equal the store's clock at the call (absolute tolerance)."""

    def test_attempt_times_follow_the_clock(
        self, attempts: AttemptStore, timeline: Timeline, clock: FakeClock | None
    ) -> None:
        now = clock if clock is not None else time.time
        tol = 1e-3 if clock is not None else 3.0
        first = attempts.begin_attempt("k")
        assert first.first_attempt_at == pytest.approx(now(), rel=0, abs=tol)
        assert first.last_attempt_at == pytest.approx(now(), rel=0, abs=tol)
        timeline.advance(2)
        second = attempts.begin_attempt("k")
        assert second.last_attempt_at == pytest.approx(now(), rel=0, abs=tol)
        assert second.first_attempt_at == pytest.approx(first.first_attempt_at, rel=0, abs=1e-3)
        if clock is not None:
            assert second.last_attempt_at - first.last_attempt_at == pytest.approx(2, abs=1e-3)
        failed = attempts.record_failure("k", "boom")
        assert failed is not None
        assert failed.first_attempt_at == pytest.approx(first.first_attempt_at, rel=0, abs=1e-3)
        assert failed.last_attempt_at == pytest.approx(second.last_attempt_at, rel=0, abs=1e-3)


class AttemptKeysSuite(AttemptStoreCase):
    """Keys differing only in case or spaces have records of their own."""

    KEYS = ("k", "K", "k ", " k", "k\t", "job:1", "JOB:1")

    def test_keys_differing_in_case_or_spaces_are_distinct(self, attempts: AttemptStore) -> None:
        for n, key in enumerate(self.KEYS, start=1):
            for _ in range(n):
                attempts.begin_attempt(key)
        counts = {}
        for key in self.KEYS:
            record = attempts.get_record(key)
            assert record is not None
            assert record.key == key
            counts[key] = record.attempts
        assert counts == {key: n for n, key in enumerate(self.KEYS, start=1)}
        assert attempts.record_failure("K", "boom", exhausted=True) is not None
        assert attempts.reset("k ")
        k = attempts.get_record("k")
        assert k is not None
        assert (k.attempts, k.exhausted, k.last_error) == (1, False, None)
        assert attempts.get_record("k ") is None
        assert attempts.get_record(" k") is not None


class AttemptStoreClosedSuite(AttemptStoreCase):
    """After close(), every method raises StoreClosedError; close() is idempotent."""

    def test_an_attempt_store_is_a_context_manager_that_closes_on_exit(
        self, make_attempt_store: Callable[[], AttemptStore]
    ) -> None:
        store = make_attempt_store()
        assert isinstance(store, AbstractContextManager), "a store must work in `with`"
        with store as entered:
            assert entered is store
            store.begin_attempt("k")
        with pytest.raises(StoreClosedError):
            store.get_record("k")

    def test_every_method_raises_after_close(
        self, make_attempt_store: Callable[[], AttemptStore]
    ) -> None:
        store = make_attempt_store()
        store.begin_attempt("k")
        store.close()
        store.close()
        calls: dict[str, Callable[[], object]] = {
            "get_record": lambda: store.get_record("k"),
            "begin_attempt": lambda: store.begin_attempt("k"),
            "record_failure": lambda: store.record_failure("k", "e"),
            "reset": lambda: store.reset("k"),
        }
        missed = []
        for name, call in calls.items():
            try:
                call()
            except StoreClosedError:
                continue
            missed.append(name)
        assert missed == [], f"no StoreClosedError from {missed}"
        store.close()
