"""Conformance tests for :class:`~localqueue.protocols.AttemptStore`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from localqueue._models import Capability
from localqueue.errors import StoreClosedError, ValidationError
from localqueue.protocols import AttemptStore
from localqueue.testing._base import StoreSuiteBase, Timeline

__all__ = ["AttemptRecordSuite", "AttemptStoreBadInputSuite", "AttemptStoreSharingSuite"]


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
        assert first.first_attempt_at == pytest.approx(first.last_attempt_at)
        timeline.advance(1)
        second = attempts.begin_attempt("job:1")
        assert second.attempts == 2
        assert second.first_attempt_at == pytest.approx(first.first_attempt_at)
        assert second.last_attempt_at > first.last_attempt_at
        assert attempts.get_record("job:1") == second

    def test_record_failure_and_sticky_exhaustion(self, attempts: AttemptStore) -> None:
        assert attempts.record_failure("missing", "boom") is None
        attempts.begin_attempt("k")
        failed = attempts.record_failure("k", "ConnectionError: refused")
        assert failed is not None
        assert failed.last_error == "ConnectionError: refused"
        assert not failed.exhausted
        spent = attempts.record_failure("k", "again", exhausted=True)
        assert spent is not None
        assert spent.exhausted
        later = attempts.record_failure("k", "third")
        assert later is not None
        assert later.exhausted
        assert later.attempts == 1
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
