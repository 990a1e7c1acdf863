"""The single-process cases of the comparison: what each engine runs, and its baseline.

A :class:`Case` times one operation over a fresh store in a given directory;
:func:`build_cases` lists every case the command line asks for, pairing each
with the raw loop (``raw_loops.py``) doing the same writes at the same durability.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import raw_loops
from bench_stores import TARGETS, StoreTarget, unavailable_reason
from peers import PEERS, EngineSpec, LocalQueueAdapter, open_engine, peer_location, peer_unavailable
from processes import body

__all__ = [
    "FULL",
    "LMDB_LEVELS",
    "QUICK",
    "SQLITE_LEVELS",
    "Case",
    "Sizes",
    "bodies",
    "build_cases",
    "fill",
    "opened",
]

SQLITE_LEVELS = ("normal", "full")
LMDB_LEVELS = ("sync", "nosync")


@dataclass(frozen=True)
class Sizes:
    """How many messages each part of the comparison moves."""

    single: int
    """Per-call operations (put, get+ack) per engine."""
    batch: int
    """Messages moved by each batched operation."""
    multi_process: int
    """Messages in the producer/consumer run."""
    latency_samples: int
    memory_messages: int
    idle_seconds: float
    """How long the producer/consumer run waits without progress before giving up."""
    depths: tuple[int, ...] = (1_000, 1_000_000)
    """Queue depths get+ack is measured at."""


FULL = Sizes(5_000, 50_000, 5_000, 200, 1_000_000, 10.0)
QUICK = Sizes(60, 600, 60, 5, 1_500, 3.0, (100, 2_000))


@dataclass(frozen=True)
class Case:
    """A single-process measurement: ``run(workdir)`` returns the seconds for ``count`` messages."""

    engine: str
    operation: str
    durability: str
    count: int
    run: Callable[[Path], float]
    baseline: str | None = None
    note: str = ""

    @property
    def key(self) -> str:
        """Identity, shared with :class:`Result`."""
        return f"{self.engine}|{self.operation}|{self.durability}"


# -- single-process operations through an adapter ----------------------------------------------


def bodies(count: int, size: int) -> list[str]:
    """``count`` numbered message bodies of about ``size`` bytes."""
    return [body(n, size) for n in range(count)]


def fill(queue: Any, texts: list[str]) -> None:
    """Put ``texts`` untimed, in batches when the queue has a batch put."""
    if queue.batch_size:
        for first in range(0, len(texts), queue.batch_size):
            queue.put_batch(texts[first : first + queue.batch_size])
    else:
        for text in texts:
            queue.put(text)


@contextlib.contextmanager
def opened(spec: EngineSpec, target: StoreTarget | None) -> Iterator[Any]:
    """Open ``spec``; close it (and drop a server namespace) on the way out."""
    queue = open_engine(spec)
    try:
        yield queue
    finally:
        queue.close()
        if target is not None:
            target.cleanup(spec.location)


def _op_put(
    spec: Callable[[Path], EngineSpec], target: StoreTarget | None, count: int, size: int
) -> Callable[[Path], float]:
    def run(workdir: Path) -> float:
        texts = bodies(count, size)
        with opened(spec(workdir), target) as queue:
            start = time.perf_counter()
            for text in texts:
                queue.put(text)
            return time.perf_counter() - start

    return run


def _op_put_batches(
    spec: Callable[[Path], EngineSpec],
    target: StoreTarget | None,
    count: int,
    size: int,
    batch: int,
) -> Callable[[Path], float]:
    def run(workdir: Path) -> float:
        texts = bodies(count, size)
        with opened(spec(workdir), target) as queue:
            start = time.perf_counter()
            for first in range(0, count, batch):
                queue.put_batch(texts[first : first + batch])
            return time.perf_counter() - start

    return run


def _op_get_ack(
    spec: Callable[[Path], EngineSpec], target: StoreTarget | None, count: int, size: int
) -> Callable[[Path], float]:
    def run(workdir: Path) -> float:
        with opened(spec(workdir), target) as queue:
            fill(queue, bodies(count, size))
            start = time.perf_counter()
            for _ in range(count):
                got = queue.take(0)
                if got is None:
                    raise RuntimeError("the queue ran dry during get+ack")
                queue.ack(got[0])
            return time.perf_counter() - start

    return run


def _op_lease_ack_batch(
    spec: Callable[[Path], EngineSpec],
    target: StoreTarget | None,
    count: int,
    size: int,
    batch: int,
) -> Callable[[Path], float]:
    def run(workdir: Path) -> float:
        with opened(spec(workdir), target) as adapter:
            assert isinstance(adapter, LocalQueueAdapter)
            fill(adapter, bodies(count, size))
            queue = adapter.queue
            start = time.perf_counter()
            done = 0
            while done < count:
                messages = queue.get_messages(batch)
                if not messages:
                    raise RuntimeError("the queue ran dry during batch lease")
                for message in messages:
                    _ = message.value
                queue.ack_many(messages)
                done += len(messages)
            return time.perf_counter() - start

    return run


# -- which cases run ------------------------------------------------------------------------------


def _localqueue_spec(target: StoreTarget) -> Callable[[Path], EngineSpec]:
    return lambda workdir: EngineSpec(
        "localqueue", target.durability, target.url(workdir, "msgpack")
    )


def _peer_spec(kind: str, durability: str) -> Callable[[Path], EngineSpec]:
    return lambda workdir: EngineSpec(kind, durability, peer_location(kind, workdir))


RawLoop = Callable[..., float]
"""A ``raw_loops`` function taking ``(workdir, count, payload, durability)``."""


def _raw(family: str, operation: str, durability: str) -> str:
    return f"raw {family}|{operation}|{durability}"


def build_cases(
    sizes: Sizes, payload: bytes, only: set[str] | None
) -> tuple[list[Case], list[str]]:
    """Every single-process case, and a note for each engine left out."""
    n, nb, size = sizes.single, sizes.batch, len(payload)
    cases: list[Case] = []
    skipped: list[str] = []

    def wanted(engine: str) -> bool:
        return only is None or any(word in engine for word in only)

    # The raw loops, per engine family: its durability levels, then per row the operation,
    # how many messages it moves, the loop (``raw_loops.py``) and what that loop does.
    raw: list[tuple[str, tuple[str, ...], list[tuple[str, int, RawLoop, str]]]] = [
        (
            "sqlite3",
            SQLITE_LEVELS,
            [
                ("put", n, raw_loops.sqlite_insert_commit, "INSERT + COMMIT per row"),
                (
                    "get+ack",
                    n,
                    raw_loops.sqlite_lease_delete,
                    "UPDATE ... RETURNING lease + DELETE, 2 commits",
                ),
                (
                    "put_many 50",
                    nb,
                    partial(raw_loops.sqlite_executemany, batch=50),
                    "executemany, 50 rows per transaction",
                ),
                (
                    "put_many 100",
                    nb,
                    partial(raw_loops.sqlite_executemany, batch=100),
                    "executemany, 100 rows per transaction",
                ),
                (
                    "lease+ack batch 100",
                    nb,
                    partial(raw_loops.sqlite_lease_delete_batch, batch=100),
                    "lease 100 rows, delete them, 2 commits",
                ),
            ],
        ),
        (
            "lmdb",
            LMDB_LEVELS,
            [
                ("put", n, raw_loops.lmdb_put_per_txn, "one put per write transaction"),
                ("get+ack", n, raw_loops.lmdb_claim_ack, "claim + ack, 2 transactions"),
                (
                    "put_many 100",
                    nb,
                    partial(raw_loops.lmdb_put_batches, batch=100),
                    "100 puts per write transaction",
                ),
                (
                    "put_many 1000",
                    nb,
                    partial(raw_loops.lmdb_put_batches, batch=1_000),
                    "1,000 puts per write transaction",
                ),
                (
                    "put all in 1 txn",
                    nb,
                    partial(raw_loops.lmdb_put_batches, batch=nb),
                    "every put in one write transaction",
                ),
            ],
        ),
    ]
    for family, levels, loops in raw:
        if not wanted(f"raw {family}"):
            continue
        for d in levels:
            cases += [
                Case(
                    f"raw {family}",
                    operation,
                    d,
                    count,
                    partial(loop, count=count, payload=payload, durability=d),
                    note=note,
                )
                for operation, count, loop, note in loops
            ]

    for target in TARGETS:
        engine = f"localqueue {target.scheme}"
        if not wanted(engine):
            continue
        reason = unavailable_reason(target)
        if reason is not None:
            skipped.append(f"{engine} ({target.durability}): {reason}")
            continue
        spec = _localqueue_spec(target)
        family = {"sqlite": "sqlite3", "lmdb": "lmdb"}.get(target.scheme)
        d = target.durability

        def base(operation: str, family: str | None = family, d: str = d) -> str | None:
            return None if family is None else _raw(family, operation, d)

        cases += [
            Case(engine, "put", d, n, _op_put(spec, target, n, size), base("put")),
            Case(engine, "get+ack", d, n, _op_get_ack(spec, target, n, size), base("get+ack")),
            Case(
                engine,
                "put_many 100",
                d,
                nb,
                _op_put_batches(spec, target, nb, size, 100),
                base("put_many 100"),
            ),
            Case(
                engine,
                "lease+ack batch 100",
                d,
                nb,
                _op_lease_ack_batch(spec, target, nb, size, 100),
                base("lease+ack batch 100") if target.scheme == "sqlite" else None,
            ),
        ]
        if target.scheme in {"lmdb", "memory"}:
            cases.append(
                Case(
                    engine,
                    "put_many 1000",
                    d,
                    nb,
                    _op_put_batches(spec, target, nb, size, 1_000),
                    base("put_many 1000"),
                )
            )

    for kind, note in PEERS.items():
        if not wanted(kind):
            continue
        reason = peer_unavailable(kind)
        if reason is not None:
            skipped.append(f"{kind}: {reason}")
            continue
        for d in SQLITE_LEVELS:
            spec = _peer_spec(kind, d)
            cases += [
                Case(
                    kind, "put", d, n, _op_put(spec, None, n, size), _raw("sqlite3", "put", d), note
                ),
                Case(
                    kind,
                    "get+ack",
                    d,
                    n,
                    _op_get_ack(spec, None, n, size),
                    _raw("sqlite3", "get+ack", d),
                    note,
                ),
            ]
            if kind == "liteq":
                cases.append(
                    Case(
                        kind,
                        "put_many 50",
                        d,
                        nb,
                        _op_put_batches(spec, None, nb, size, 50),
                        _raw("sqlite3", "put_many 50", d),
                        note,
                    )
                )
    return cases, skipped
