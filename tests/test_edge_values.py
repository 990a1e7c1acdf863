"""Awkward values and texts behave the same on all five stores: kept exactly, or
refused at ``put()`` with the same typed error and nothing stored."""

from __future__ import annotations

import math
from typing import Any

import pytest

from localqueue import PersistentQueue, PersistentWorkerConfig, Worker
from localqueue.errors import UnserializableValueError, ValidationError

pytestmark = pytest.mark.services


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


# name: (value, outcome under msgpack, outcome under json); "kept" means it reads
# back equal, "refused" that put() raises UnserializableValueError, anything else
# is the value it reads back as (documented conversions).
CASES: dict[str, tuple[Any, Any, Any]] = {
    "nul in text": ("a\x00b", "kept", "kept"),
    "lone surrogate": ("x\ud800y", "refused", "refused"),
    "astral and rtl text": ("\U0001f389 עברית", "kept", "kept"),
    "tuple dict key": ({(1, 2): 3}, "kept", "refused"),
    "int dict key": ({1: "a"}, "kept", {"1": "a"}),
    "largest uint64": (2**64 - 1, "kept", "kept"),
    "int past uint64": (2**64, "refused", "kept"),
    "int below int64": (-(2**63) - 1, "refused", "kept"),
    "nan": (float("nan"), "kept", "refused"),
    "infinity": (float("-inf"), "kept", "refused"),
    "bytes with nul": (b"\x00\xff", "kept", "refused"),
    "tuple": ((1, 2), [1, 2], [1, 2]),
    "too deep": (_nested(5000), "refused", "refused"),
}


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    return bool(got == want)


@pytest.mark.parametrize("codec", ["msgpack", "json"])
@pytest.mark.parametrize("case", list(CASES))
def test_value_is_kept_or_refused_alike_on_every_store(
    any_store_url: str, codec: str, case: str
) -> None:
    value, *outcomes = CASES[case]
    outcome = outcomes[0] if codec == "msgpack" else outcomes[1]
    url = f"{any_store_url}{'&' if '?' in any_store_url else '?'}serializer={codec}"
    with PersistentQueue("edge", url) as queue:
        kept = queue.put("before")
        if outcome == "refused":
            with pytest.raises(UnserializableValueError):
                queue.put(value)
            with pytest.raises(UnserializableValueError):
                queue.put_many(["fine", value])
            assert queue.stats().total == 1
            assert queue.inspect(kept.id).value == "before"
            return
        stored = queue.put(value)
        assert queue.get_message().id == kept.id
        message = queue.get_message()
        assert message.id == stored.id
        assert _same(message.value, value if outcome == "kept" else outcome)


@pytest.mark.parametrize("key", ["a\x00b", "\udc80"])
def test_unstorable_dedup_key_is_refused_alike_on_every_store(any_store_url: str, key: str) -> None:
    with PersistentQueue("edge", any_store_url) as queue:
        with pytest.raises(ValidationError):
            queue.put("x", dedup_key=key)
        assert queue.stats().total == 0


def test_handler_error_with_nul_is_dead_lettered_and_the_worker_goes_on(any_store_url: str) -> None:
    def handler(value: str) -> None:
        if value == "poison":
            raise ValueError("bad\x00byte \udc80 here")

    with PersistentQueue("edge", any_store_url) as queue:
        queue.put_many(["ok", "poison", "also ok"])
        config = PersistentWorkerConfig(max_tries=1, heartbeat_interval=0)
        worker = Worker(queue, handler, config=config, handle_signals=False)
        stats = worker.run(until_empty=True)
        assert (stats.acked, stats.dead_lettered) == (2, 1)
        [dead] = queue.dead_letters()
        assert dead.value == "poison"
        assert dead.last_error is not None
        assert "bad\\x00byte \\udc80 here" in dead.last_error
