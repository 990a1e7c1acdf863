"""PersistentRetrying over every engine: budgets persist, restarts continue them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tenacity
from tenacity import RetryCallState, retry_if_exception_type, stop_after_attempt, wait_exponential

from localqueue import (
    AttemptStore,
    MissingRetryKeyError,
    PersistentRetryExhausted,
    ValidationError,
    open_attempt_store,
)
from localqueue.retry import (
    PersistentAsyncRetrying,
    PersistentRetrying,
    configure_default_store,
    configure_default_store_factory,
    get_default_store,
    idempotency_key_from_id,
    key_from_argument,
    key_from_attr,
    persistent_async_retry,
    persistent_retry,
)


class Crash(BaseException):
    """Stands in for the process dying in the middle of an attempt."""


class Flaky:
    """A function failing with ConnectionError ``failures`` times, then returning ``"ok"``."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"down #{self.calls}")
        return "ok"


@pytest.fixture
def reopen(engine: Any, attempt_store: AttemptStore) -> Iterator[Callable[[], AttemptStore]]:
    """Open the engine's attempt store again, as a restarted process would.

    Memory stores cannot be reopened; the same instance stands in for them.
    """
    opened: list[AttemptStore] = []

    def again() -> AttemptStore:
        if engine.name == "memory":
            return attempt_store
        store = open_attempt_store(engine.attempts_url)
        opened.append(store)
        return store

    yield again
    for store in opened:
        store.close()


def test_retries_until_success_and_clears_the_record(attempt_store: AttemptStore) -> None:
    sleeps: list[float] = []
    fn = Flaky(2)
    retrying = PersistentRetrying(
        key="job:1",
        store=attempt_store,
        max_tries=5,
        wait=tenacity.wait_fixed(3),
        sleep=sleeps.append,
    )
    assert retrying(fn) == "ok"
    assert fn.calls == 3
    assert sleeps == [3.0, 3.0]
    assert attempt_store.get_record("job:1") is None


def test_failures_are_persisted_with_the_last_error(attempt_store: AttemptStore) -> None:
    seen: list[tuple[int, Any]] = []

    def before_sleep(state: RetryCallState) -> None:
        seen.append((state.attempt_number, attempt_store.get_record("job:1")))

    retrying = PersistentRetrying(
        key="job:1",
        store=attempt_store,
        max_tries=3,
        sleep=lambda s: None,
        before_sleep=before_sleep,
    )
    with pytest.raises(tenacity.RetryError):
        retrying(Flaky(10))
    assert [n for n, _ in seen] == [1, 2]
    assert seen[1][1].attempts == 2
    assert seen[1][1].last_error == "ConnectionError: down #2"
    record = attempt_store.get_record("job:1")
    assert record is not None
    assert record.attempts == 3
    assert record.exhausted
    assert record.last_error == "ConnectionError: down #3"


def test_an_exhausted_key_raises_before_calling_the_function(attempt_store: AttemptStore) -> None:
    retrying = PersistentRetrying(
        key="job:1", store=attempt_store, max_tries=2, reraise=True, sleep=lambda s: None
    )
    with pytest.raises(ConnectionError):
        retrying(Flaky(10))
    fn = Flaky(0)
    with pytest.raises(PersistentRetryExhausted) as info:
        retrying(fn)
    assert fn.calls == 0
    assert info.value.key == "job:1"
    assert info.value.attempts == 2
    assert info.value.last_error == "ConnectionError: down #2"


def test_a_restart_continues_the_budget(
    attempt_store: AttemptStore, reopen: Callable[[], AttemptStore]
) -> None:
    first = Flaky(2)

    def crash_on_third() -> str:
        if first.calls == 2:
            first.calls += 1
            raise Crash
        return first()

    before: list[int] = []
    retrying = PersistentRetrying(
        key="job:1",
        store=attempt_store,
        max_tries=5,
        sleep=lambda s: None,
        before=lambda state: before.append(state.attempt_number),
    )
    with pytest.raises(Crash):
        retrying(crash_on_third)
    assert before == [1, 2, 3]

    # "After the restart": a new retryer on a reopened store.
    before.clear()
    second = Flaky(10)
    restarted = PersistentRetrying(
        key="job:1",
        store=reopen(),
        max_tries=5,
        sleep=lambda s: None,
        reraise=True,
        before=lambda state: before.append(state.attempt_number),
    )
    with pytest.raises(ConnectionError):
        restarted(second)
    assert second.calls == 2
    assert before == [4, 5]
    record = restarted.get_record()
    assert record is not None
    assert record.attempts == 5
    assert record.exhausted


def test_an_attempt_that_died_on_the_last_try_exhausts_the_key(
    attempt_store: AttemptStore, reopen: Callable[[], AttemptStore]
) -> None:
    calls: list[int] = []

    def fail_then_crash() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise Crash
        raise ConnectionError("down")

    retrying = PersistentRetrying(
        key="job:1", store=attempt_store, max_tries=2, sleep=lambda s: None
    )
    with pytest.raises(Crash):
        retrying(fail_then_crash)

    fn = Flaky(0)
    restarted = PersistentRetrying(key="job:1", store=reopen(), max_tries=2)
    with pytest.raises(PersistentRetryExhausted) as info:
        restarted(fn)
    assert fn.calls == 0
    assert info.value.attempts == 2
    record = restarted.get_record()
    assert record is not None
    assert record.exhausted


def test_waits_grow_from_the_persisted_attempt_number(
    attempt_store: AttemptStore, reopen: Callable[[], AttemptStore]
) -> None:
    sleeps: list[float] = []
    options: dict[str, Any] = {
        "key": "job:1",
        "max_tries": 5,
        "wait": wait_exponential(multiplier=1, max=60),
        "sleep": sleeps.append,
    }
    fn = Flaky(10)

    def fail_then_crash() -> str:
        if fn.calls == 2:
            raise Crash
        return fn()

    with pytest.raises(Crash):
        PersistentRetrying(store=attempt_store, **options)(fail_then_crash)
    assert sleeps == [1.0, 2.0]
    with pytest.raises(tenacity.RetryError):
        PersistentRetrying(store=reopen(), **options)(fn)
    # Attempt 3 crashed; attempts 4 and 5 ran after the restart, one wait between them.
    assert sleeps == [1.0, 2.0, 8.0]


def test_an_error_not_retried_is_recorded_without_exhausting(attempt_store: AttemptStore) -> None:
    def bad() -> None:
        raise KeyError("nope")

    retrying = PersistentRetrying(
        key="job:1",
        store=attempt_store,
        max_tries=3,
        retry=retry_if_exception_type(ConnectionError),
    )
    with pytest.raises(KeyError):
        retrying(bad)
    record = attempt_store.get_record("job:1")
    assert record is not None
    assert record.attempts == 1
    assert not record.exhausted
    assert record.last_error == "KeyError: 'nope'"


def test_retry_error_callback_marks_the_key_exhausted(attempt_store: AttemptStore) -> None:
    retrying = PersistentRetrying(
        key="job:1",
        store=attempt_store,
        max_tries=2,
        sleep=lambda s: None,
        retry_error_callback=lambda state: "gave up",
    )
    assert retrying(Flaky(10)) == "gave up"
    record = attempt_store.get_record("job:1")
    assert record is not None
    assert record.exhausted


def test_clear_on_success_false_keeps_the_record(attempt_store: AttemptStore) -> None:
    retrying = PersistentRetrying(
        key="job:1", store=attempt_store, max_tries=5, clear_on_success=False, sleep=lambda s: None
    )
    assert retrying(Flaky(1)) == "ok"
    record = retrying.get_record()
    assert record is not None
    assert record.attempts == 2
    assert retrying.reset() is True
    assert retrying.get_record() is None


def test_reset_restores_an_exhausted_budget(attempt_store: AttemptStore) -> None:
    retrying = PersistentRetrying(key="job:1", store=attempt_store, max_tries=1)
    with pytest.raises(tenacity.RetryError):
        retrying(Flaky(10))
    assert retrying.reset("job:1")
    assert retrying(Flaky(0)) == "ok"


def test_keys_are_independent(attempt_store: AttemptStore) -> None:
    @persistent_retry(key_fn=key_from_argument("job_id"), store=attempt_store, max_tries=1)
    def work(job_id: str, fail: bool) -> str:
        if fail:
            raise ConnectionError(job_id)
        return job_id

    with pytest.raises(tenacity.RetryError):
        work("a", True)
    assert work("b", False) == "b"
    with pytest.raises(PersistentRetryExhausted):
        work("a", False)


def test_copy_keeps_key_and_store_and_changes_what_is_given(attempt_store: AttemptStore) -> None:
    retrying = PersistentRetrying(
        key="job:1", store=attempt_store, max_tries=2, clear_on_success=False
    )
    same = retrying.copy()
    assert same.key == "job:1"
    assert same.store is attempt_store
    assert not same.clear_on_success
    other = retrying.copy(key="job:2", max_tries=1)
    assert other.key == "job:2"
    with pytest.raises(tenacity.RetryError):
        other(Flaky(10))
    assert attempt_store.get_record("job:2") is not None
    assert attempt_store.get_record("job:1") is None


def test_async_retrying_persists_and_awaits_sleep(attempt_store: AttemptStore) -> None:
    sleeps: list[float] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("down")
        return "ok"

    retrying = PersistentAsyncRetrying(
        key="job:1",
        store=attempt_store,
        max_tries=5,
        wait=tenacity.wait_fixed(2),
        sleep=record_sleep,
    )
    assert asyncio.run(retrying(flaky)) == "ok"
    assert sleeps == [2.0, 2.0]
    assert attempt_store.get_record("job:1") is None


def test_async_decorator_raises_exhausted_before_calling(attempt_store: AttemptStore) -> None:
    calls: list[str] = []

    async def no_sleep(seconds: float) -> None:
        return None

    @persistent_async_retry(
        key_fn=key_from_argument("job_id"),
        store=attempt_store,
        max_tries=2,
        sleep=no_sleep,
        reraise=True,
    )
    async def work(job_id: str) -> None:
        calls.append(job_id)
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        asyncio.run(work("a"))
    with pytest.raises(PersistentRetryExhausted):
        asyncio.run(work("a"))
    assert calls == ["a", "a"]


# -- keys and configuration (engine-independent) -------------------------------


@dataclass
class Task:
    id: str


def _state(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> RetryCallState:
    return RetryCallState(PersistentRetrying(key="k"), fn, args, kwargs)


def test_key_from_argument_reads_positional_keyword_and_default_arguments() -> None:
    def send(email_id: str, address: str = "x", *, region: str = "eu") -> None: ...

    assert key_from_argument("email_id")(_state(send, "42", "a@b")) == "42"
    assert key_from_argument("email_id")(_state(send, email_id="43")) == "43"
    assert key_from_argument("region", prefix="r")(_state(send, "1")) == "r:eu"
    with pytest.raises(MissingRetryKeyError):
        key_from_argument("missing")(_state(send, "1"))


def test_key_from_attr_and_idempotency_key_from_id() -> None:
    def process(task: Task) -> None: ...

    state = _state(process, Task("t-1"))
    assert key_from_attr("task", "id", prefix="process-video")(state) == "process-video:t-1"
    assert idempotency_key_from_id("task")(state) == "t-1"
    with pytest.raises(MissingRetryKeyError):
        key_from_attr("task", "nope")(state)


def test_a_missing_key_is_a_clear_error() -> None:
    with pytest.raises(MissingRetryKeyError):
        persistent_retry(max_tries=2)
    with pytest.raises(MissingRetryKeyError):
        persistent_async_retry(max_tries=2)
    store = open_attempt_store("memory://")
    fn = Flaky(0)
    with pytest.raises(MissingRetryKeyError):
        PersistentRetrying(store=store)(fn)
    with pytest.raises(MissingRetryKeyError):
        PersistentRetrying(key_fn=lambda state: None, store=store)(fn)
    assert fn.calls == 0


def test_conflicting_options_are_rejected() -> None:
    with pytest.raises(ValidationError):
        PersistentRetrying(key="k", max_tries=2, stop=stop_after_attempt(3))
    with pytest.raises(ValidationError):
        PersistentRetrying(key="k", key_fn=key_from_argument("x"))
    with pytest.raises(ValidationError):
        PersistentRetrying(key="k", max_tries=0)


def test_iteration_is_refused() -> None:
    with pytest.raises(TypeError):
        iter(PersistentRetrying(key="k", store=open_attempt_store("memory://")))


@pytest.fixture
def restore_default_store() -> Iterator[None]:
    yield
    configure_default_store(None)


@pytest.mark.usefixtures("restore_default_store")
def test_the_default_store_can_be_configured() -> None:
    store = open_attempt_store("memory://")
    configure_default_store(store)
    retrying = PersistentRetrying(key="job:1", max_tries=1)
    with pytest.raises(tenacity.RetryError):
        retrying(Flaky(10))
    assert store.get_record("job:1") is not None
    assert get_default_store() is store


@pytest.mark.usefixtures("restore_default_store")
def test_the_default_store_factory_is_called_lazily_once() -> None:
    opened: list[AttemptStore] = []

    def factory() -> AttemptStore:
        opened.append(open_attempt_store("memory://"))
        return opened[-1]

    configure_default_store_factory(factory)
    assert opened == []
    retrying = PersistentRetrying(key="job:1")
    retrying(Flaky(0))
    retrying(Flaky(0))
    assert len(opened) == 1


def test_store_path_is_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "retries.sqlite3"
    retrying = PersistentRetrying(key="job:1", store_path=path, max_tries=1)
    try:
        with pytest.raises(tenacity.RetryError):
            retrying(Flaky(10))
        assert path.exists()
        assert retrying.get_record() is not None
    finally:
        retrying.close()


class CountingStore:
    """A memory attempt store that counts its calls by method name."""

    def __init__(self) -> None:
        self.inner = open_attempt_store("memory://")
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return counted


def test_defer_first_attempt_writes_nothing_for_a_first_try_success() -> None:
    store = CountingStore()
    retrying = PersistentRetrying(
        key="k", store=cast_store(store), max_tries=3, defer_first_attempt=True
    )
    assert retrying(lambda: "ok") == "ok"
    assert store.calls == ["get_record"]
    assert retrying.statistics["attempt_number"] == 1


def test_defer_first_attempt_writes_the_first_attempt_once_it_fails() -> None:
    store = CountingStore()
    retrying = PersistentRetrying(
        key="k",
        store=cast_store(store),
        max_tries=3,
        defer_first_attempt=True,
        clear_on_success=False,
        sleep=lambda _: None,
    )
    assert retrying(Flaky(1)) == "ok"
    record = store.inner.get_record("k")
    assert record is not None
    assert record.attempts == 2
    assert record.last_error == "ConnectionError: down #1"


def test_without_defer_first_attempt_every_attempt_is_written_first() -> None:
    store = CountingStore()
    retrying = PersistentRetrying(key="k", store=cast_store(store), clear_on_success=False)
    assert retrying(lambda: "ok") == "ok"
    assert store.calls == ["get_record", "begin_attempt"]


def test_async_defer_first_attempt_writes_nothing_for_a_first_try_success() -> None:
    store = CountingStore()
    retrying = PersistentAsyncRetrying(key="k", store=cast_store(store), defer_first_attempt=True)

    async def work() -> str:
        return "ok"

    assert asyncio.run(retrying(work)) == "ok"
    assert store.calls == ["get_record"]


def test_resume_from_is_taken_instead_of_reading_the_record() -> None:
    store = CountingStore()
    store.inner.begin_attempt("k")
    record = store.inner.record_failure("k", "earlier")
    retrying = PersistentRetrying(
        key="k", store=cast_store(store), max_tries=3, resume_from=record, sleep=lambda _: None
    )
    assert retrying(Flaky(0)) == "ok"
    assert "get_record" not in store.calls
    assert retrying.statistics["attempt_number"] == 2  # continued from the record
    # Only the first call takes it: the next one reads the store.
    retrying(Flaky(0))
    assert "get_record" in store.calls


def test_resume_from_an_exhausted_record_refuses_the_call() -> None:
    store = CountingStore()
    store.inner.begin_attempt("k")
    record = store.inner.record_failure("k", "gave up", exhausted=True)
    retrying = PersistentRetrying(key="k", store=cast_store(store), resume_from=record)
    flaky = Flaky(0)
    with pytest.raises(PersistentRetryExhausted):
        retrying(flaky)
    assert flaky.calls == 0


def test_copy_keeps_defer_first_attempt_but_not_resume_from() -> None:
    store = open_attempt_store("memory://")
    store.begin_attempt("k")
    record = store.record_failure("k", "earlier", exhausted=True)
    retrying = PersistentRetrying(
        key="k", store=store, defer_first_attempt=True, resume_from=record
    )
    copy = retrying.copy()
    assert copy.defer_first_attempt
    store.reset("k")
    assert copy(lambda: "ok") == "ok"  # read the store, which no longer has the record


def cast_store(store: CountingStore) -> AttemptStore:
    result: AttemptStore = store  # type: ignore[assignment]
    return result
