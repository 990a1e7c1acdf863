"""pytest-benchmark suites: each queue operation over every store configuration.

Each benchmark times one operation per round through :class:`PersistentQueue`
(values are serialised and, when consumed, decoded, as a user's code would).
An untimed set-up step before each round puts back or takes away what the
previous round consumed or added, so the queue stays at the fixture's depth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from bench_stores import StoreTarget, payload_value
from pytest_benchmark.fixture import BenchmarkFixture

from localqueue import PersistentQueue


def _remove(queue: PersistentQueue, count: int) -> None:
    queue.ack_many(queue.get_messages(count))


def _add(queue: PersistentQueue, value: Any, count: int) -> None:
    queue.put_many([value] * count)


def _get_ack(queue: PersistentQueue, value: Any) -> None:
    message = queue.get_message(block=False)
    _ = message.value
    queue.ack(message)


def _batch_lease_ack(queue: PersistentQueue, count: int) -> None:
    messages = queue.get_messages(count)
    for message in messages:
        _ = message.value
    queue.ack_many(messages)


@dataclass(frozen=True)
class Op:
    """One benchmarked operation.

    ``run`` is timed; ``restore`` runs untimed before each round and undoes the
    previous round's change to the queue's depth.
    """

    name: str
    messages: int
    """Messages moved per round (0: a read-only call, reported per call)."""
    rounds: int
    run: Callable[[PersistentQueue, Any], object]
    restore: Callable[[PersistentQueue, Any], None]


def _nothing(queue: PersistentQueue, value: Any) -> None:
    return None


OPS = [
    Op("put", 1, 1_000, lambda q, v: q.put(v), lambda q, v: _remove(q, 1)),
    Op("put_many_100", 100, 100, lambda q, v: q.put_many([v] * 100), lambda q, v: _remove(q, 100)),
    Op(
        "put_many_1000",
        1_000,
        20,
        lambda q, v: q.put_many([v] * 1_000),
        lambda q, v: _remove(q, 1_000),
    ),
    Op("get_ack", 1, 1_000, _get_ack, lambda q, v: _add(q, v, 1)),
    Op(
        "lease_ack_batch_100",
        100,
        100,
        lambda q, v: _batch_lease_ack(q, 100),
        lambda q, v: _add(q, v, 100),
    ),
    Op("peek", 0, 1_000, lambda q, v: q.peek(), _nothing),
    Op("stats", 0, 200, lambda q, v: q.stats(), _nothing),
]


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_operation(
    benchmark: BenchmarkFixture,
    op: Op,
    filled_queue: PersistentQueue,
    target: StoreTarget,
    serializer: str,
    shape: tuple[int, int],
    round_scale: float,
) -> None:
    size, depth = shape
    value = payload_value(size)
    benchmark.group = f"{op.name} {size}B depth={depth}"
    benchmark.extra_info.update(target.extra_info())
    benchmark.extra_info.update(
        {
            "operation": op.name,
            "serializer": serializer,
            "payload_bytes": size,
            "depth": depth,
            "messages_per_round": op.messages,
        }
    )
    rounds = max(1, round(op.rounds * round_scale))
    benchmark.pedantic(
        op.run,
        args=(filled_queue, value),
        setup=lambda: op.restore(filled_queue, value),
        rounds=rounds,
        warmup_rounds=min(10, rounds // 10),
    )
    stats = benchmark.stats
    if stats is not None and stats.stats.median > 0:
        per_call = max(op.messages, 1)
        benchmark.extra_info["msgs_per_s_median"] = round(per_call / stats.stats.median)
    assert filled_queue.stats().total == depth
