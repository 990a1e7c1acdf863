"""Fuzzing the public API and the URL parser: every rejection is a typed error,
and a rejected call leaves the store exactly as it was."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from localqueue import PersistentQueue
from localqueue.errors import ConfigurationError, LocalQueueError, ValidationError
from localqueue.protocols import QueueStore
from localqueue.registry import open_queue_store
from localqueue.urls import StoreURL
from localqueue.validation import MAX_PAYLOAD_BYTES, QUEUE_NAME_PATTERN

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@pytest.fixture
def seeded(queue_store: QueueStore) -> tuple[QueueStore, Callable[[], Any]]:
    """A store holding one ready, one leased and one dead message, and a snapshot function."""
    queue = PersistentQueue("fuzz", queue_store)
    queue.put("leased")
    queue.get_message()
    queue.put("ready")
    queue.dead_letter(queue.put("dead"), error="x")
    stats = queue_store.stats("fuzz")
    assert (stats.ready, stats.inflight, stats.dead) == (1, 1, 1)

    def snapshot() -> Any:
        peeked = queue_store.peek("fuzz")
        dead = queue_store.dead_letters("fuzz")
        return (
            queue_store.stats("fuzz"),
            queue_store.queues(),
            None if peeked is None else (peeked.id, peeked.attempts, peeked.payload),
            [(d.id, d.last_error) for d in dead],
        )

    return queue_store, snapshot


@FUZZ
@given(name=anything)
def test_queue_names(seeded: tuple[QueueStore, Callable[[], Any]], name: Any) -> None:
    store, snapshot = seeded
    before = snapshot()
    valid = isinstance(name, str) and QUEUE_NAME_PATTERN.fullmatch(name) is not None
    try:
        store.stats(name)
        store.lease(name, lease_timeout=60)
        store.purge(name, "all")
    except ValidationError:
        assert not valid
    else:
        assert valid
    if not valid or name != "fuzz":
        assert snapshot() == before


@FUZZ
@given(
    delay=anything,
    priority=anything,
    dedup_key=st.one_of(st.none(), st.text(max_size=600), st.integers()),
    payload=st.one_of(st.binary(max_size=64), st.text(max_size=8), st.none()),
)
def test_put_arguments(
    seeded: tuple[QueueStore, Callable[[], Any]],
    delay: Any,
    priority: Any,
    dedup_key: Any,
    payload: Any,
) -> None:
    store, snapshot = seeded
    before = snapshot()
    try:
        message = store.put(
            "fuzz", payload, codec="msgpack", delay=delay, priority=priority, dedup_key=dedup_key
        )
    except ValidationError:
        assert snapshot() == before
    else:
        assert isinstance(payload, bytes)
        assert store.ack("fuzz", message.id)
        assert snapshot() == before


@FUZZ
@given(lease_timeout=anything, limit=anything, leased_by=anything)
# Valid arguments are rare among the drawn ones: always try some.
@example(lease_timeout=30, limit=1, leased_by=None)
@example(lease_timeout=0.001, limit=5, leased_by="worker-1")
def test_lease_arguments(
    seeded: tuple[QueueStore, Callable[[], Any]], lease_timeout: Any, limit: Any, leased_by: Any
) -> None:
    store, snapshot = seeded
    before = snapshot()
    try:
        leased = store.lease("fuzz", lease_timeout=lease_timeout, limit=limit, leased_by=leased_by)
    except ValidationError:
        assert snapshot() == before
    else:
        # The seeded queue holds exactly one deliverable message.
        assert len(leased) == 1
        assert leased[0].value == "ready"
        assert leased[0].leased_by == leased_by
        assert store.release("fuzz", leased[0].id, lease_token=leased[0].lease_token)
        stats, queues, peeked, dead = snapshot()
        assert (stats, queues, dead) == (before[0], before[1], before[3])
        assert peeked is not None
        assert peeked[0] == before[2][0]


@FUZZ
@given(value=st.recursive(anything, lambda inner: st.lists(inner, max_size=3), max_leaves=8))
def test_queue_put_of_any_value_stores_it_or_nothing(queue_store: QueueStore, value: Any) -> None:
    queue = PersistentQueue("values", queue_store)
    queue.purge("all")
    try:
        queue.put(value)
    except LocalQueueError:
        assert queue.stats().total == 0
        return
    got = queue.get_nowait()
    queue.task_done()
    assert _same(got, value)


def _same(got: Any, value: Any) -> bool:
    """Equality in which NaN equals NaN (msgpack keeps NaN; JSON refuses it at put)."""
    if isinstance(value, float) and math.isnan(value):
        return isinstance(got, float) and math.isnan(got)
    if isinstance(value, list):
        return (
            isinstance(got, list)
            and len(got) == len(value)
            and all(_same(g, v) for g, v in zip(got, value, strict=True))
        )
    return bool(got == value)


def test_payload_at_the_limit_is_accepted_and_beyond_it_refused(queue_store: QueueStore) -> None:
    queue_store.put("big", b"x" * MAX_PAYLOAD_BYTES, codec="msgpack")
    with pytest.raises(ValidationError):
        queue_store.put("big", b"x" * (MAX_PAYLOAD_BYTES + 1), codec="msgpack")
    assert queue_store.stats("big").total == 1


@settings(max_examples=300, deadline=None)
@given(url=st.text(max_size=60))
def test_url_parser_never_raises_anything_untyped(url: str) -> None:
    with contextlib.suppress(ConfigurationError):
        StoreURL.parse(url)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    scheme=st.sampled_from(["sqlite", "lmdb", "memory"]),
    key=st.text(min_size=1, max_size=12),
    value=st.text(max_size=12),
)
def test_store_options_are_checked(tmp_path: Path, scheme: str, key: str, value: str) -> None:
    from urllib.parse import urlencode

    target = "" if scheme == "memory" else f"/{tmp_path}/opt-{scheme}"
    url = f"{scheme}://{target}?{urlencode({key: value})}"
    try:
        store = open_queue_store(url)
    except ConfigurationError:
        return
    store.close()
