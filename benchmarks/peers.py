"""One small adapter per queue compared, so ``compare.py`` drives them all alike.

An :class:`EngineSpec` is a picklable description (what, where, how durable);
:func:`open_engine` turns it into an :class:`Adapter` inside the process that
uses it, so nothing holding a database handle ever crosses a ``fork``/``spawn``.
Each adapter uses the library the way its documentation shows, adding only a
``PRAGMA synchronous`` so every SQLite engine runs at the same durability.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = ["PEERS", "Adapter", "EngineSpec", "open_engine", "peer_unavailable"]

_POLL = 0.001
"""Sleep between polls for the engines that have no blocking get of their own."""

_SYNCHRONOUS = {"normal": 1, "full": 2}


@dataclass(frozen=True)
class EngineSpec:
    """A queue to open: ``kind`` (a key of :data:`PEERS` or ``localqueue``) and where."""

    kind: str
    durability: str
    location: str
    """A directory or file for the peers, a store URL for localqueue."""


class Adapter(Protocol):
    """What the comparison needs from a queue."""

    batch_size: int
    """Largest batch ``put_batch`` takes; 0 when the queue has no batch put."""
    acks: bool
    """Whether consuming needs an ack (at-least-once) or the get deletes (at-most-once)."""

    def put(self, body: str) -> None: ...

    def put_batch(self, bodies: list[str]) -> None: ...

    def take(self, wait: float) -> tuple[Any, str] | None:
        """Get one message (waiting up to ``wait`` s): its ack handle and decoded body."""
        ...

    def ack(self, handle: Any) -> None: ...

    def close(self) -> None: ...


class LocalQueueAdapter:
    """localqueue's :class:`PersistentQueue` over a store URL."""

    acks = True

    def __init__(self, url: str) -> None:
        from localqueue import PersistentQueue

        self.queue = PersistentQueue("bench", url)
        self.batch_size = 1_000

    def put(self, body: str) -> None:
        self.queue.put(body)

    def put_batch(self, bodies: list[str]) -> None:
        self.queue.put_many(bodies)

    def take(self, wait: float) -> tuple[Any, str] | None:
        from localqueue import Empty

        try:
            message = self.queue.get_message(block=wait > 0, timeout=wait or None)
        except Empty:
            return None
        value: str = message.value
        return message, value

    def ack(self, handle: Any) -> None:
        self.queue.ack(handle)

    def close(self) -> None:
        self.queue.close()


class PersistQueueAdapter:
    """persist-queue's ``SQLiteAckQueue`` (defaults: pickle serializer, auto-resume)."""

    acks = True
    batch_size = 0

    def __init__(self, directory: str, durability: str) -> None:
        from persistqueue import SQLiteAckQueue

        self.queue = SQLiteAckQueue(directory)
        for conn in {id(c): c for c in (self.queue._getter, self.queue._putter)}.values():
            conn.execute(f"PRAGMA synchronous={_SYNCHRONOUS[durability]}")

    def put(self, body: str) -> None:
        self.queue.put(body)

    def put_batch(self, bodies: list[str]) -> None:
        raise NotImplementedError("persist-queue has no batch put")

    def take(self, wait: float) -> tuple[Any, str] | None:
        from persistqueue import Empty

        try:
            item: str = self.queue.get(block=wait > 0, timeout=wait or None)
        except Empty:
            return None
        return item, item

    def ack(self, handle: Any) -> None:
        self.queue.ack(handle)

    def close(self) -> None:
        self.queue.close()


class HueyAdapter:
    """huey's ``SqliteStorage`` at the storage level: ``dequeue`` deletes (at-most-once)."""

    acks = False
    batch_size = 0

    def __init__(self, filename: str, durability: str) -> None:
        from huey.storage import SqliteStorage

        self.storage = SqliteStorage(name="bench", filename=filename)
        self.storage.conn.execute(f"pragma synchronous={_SYNCHRONOUS[durability]}")

    def put(self, body: str) -> None:
        self.storage.enqueue(body.encode())

    def put_batch(self, bodies: list[str]) -> None:
        raise NotImplementedError("huey's storage has no batch enqueue")

    def take(self, wait: float) -> tuple[Any, str] | None:
        deadline = time.monotonic() + wait
        while True:
            data = self.storage.dequeue()
            if data is not None:
                return None, bytes(data).decode()
            if time.monotonic() >= deadline:
                return None
            time.sleep(_POLL)

    def ack(self, handle: Any) -> None:
        return None

    def close(self) -> None:
        self.storage.close()


class LitequeueAdapter:
    """litequeue's ``LiteQueue``: ``pop`` locks a row, ``done`` marks it (rows are kept)."""

    acks = True
    batch_size = 0

    def __init__(self, filename: str, durability: str) -> None:
        from litequeue import LiteQueue

        self.queue = LiteQueue(filename, queue_name="bench")
        self.queue.conn.execute(f"PRAGMA synchronous={_SYNCHRONOUS[durability]}")

    def put(self, body: str) -> None:
        self.queue.put(body)

    def put_batch(self, bodies: list[str]) -> None:
        raise NotImplementedError("litequeue has no batch put")

    def take(self, wait: float) -> tuple[Any, str] | None:
        deadline = time.monotonic() + wait
        while True:
            message = self.queue.pop()
            if message is not None:
                return message.message_id, str(message.data)
            if time.monotonic() >= deadline:
                return None
            time.sleep(_POLL)

    def ack(self, handle: Any) -> None:
        self.queue.done(handle)

    def close(self) -> None:
        self.queue.close()


class LiteqAdapter:
    """The liteq stand-in in :mod:`liteq_equivalent` (liteq is not on PyPI)."""

    acks = True

    def __init__(self, filename: str, durability: str) -> None:
        from liteq_equivalent import MAX_BATCH, LiteqEquivalent

        self.queue = LiteqEquivalent(filename, synchronous=durability.upper())
        self.batch_size = MAX_BATCH

    def put(self, body: str) -> None:
        self.queue.put(body.encode())

    def put_batch(self, bodies: list[str]) -> None:
        self.queue.put_batch([b.encode() for b in bodies])

    def take(self, wait: float) -> tuple[Any, str] | None:
        message = self.queue.pop(wait_seconds=wait)
        if message is None:
            return None
        return message.id, message.data.decode()

    def ack(self, handle: Any) -> None:
        self.queue.delete(handle)

    def close(self) -> None:
        return None


PEERS: dict[str, str] = {
    "persist-queue": "SQLiteAckQueue; default pickle serializer; auto_resume on open",
    "huey": "SqliteStorage enqueue/dequeue; at-most-once (dequeue deletes, no ack)",
    "litequeue": "LiteQueue put/pop/done; done rows kept; no lease expiry",
    "liteq": "minimal stand-in (benchmarks/liteq_equivalent.py); not on PyPI",
}
"""The peers compared, with what a reader should know about each."""

_MODULES = {"persist-queue": "persistqueue", "huey": "huey", "litequeue": "litequeue"}


def peer_unavailable(kind: str) -> str | None:
    """Why a peer cannot run (its package is missing); ``None`` when it can."""
    import importlib.util

    module = _MODULES.get(kind)
    if module is not None and importlib.util.find_spec(module) is None:
        return f"{kind} is not installed (pip install 'localqueue[bench]')"
    return None


def peer_location(kind: str, workdir: Path) -> str:
    """Where a peer keeps its data under ``workdir``."""
    return str(workdir / ("pq" if kind == "persist-queue" else f"{kind}.sqlite3"))


def open_engine(spec: EngineSpec) -> Adapter:
    """Open the queue ``spec`` describes, in the calling process."""
    if spec.kind == "localqueue":
        return LocalQueueAdapter(spec.location)
    if spec.kind == "persist-queue":
        return PersistQueueAdapter(spec.location, spec.durability)
    if spec.kind == "huey":
        return HueyAdapter(spec.location, spec.durability)
    if spec.kind == "litequeue":
        return LitequeueAdapter(spec.location, spec.durability)
    if spec.kind == "liteq":
        return LiteqAdapter(spec.location, spec.durability)
    raise ValueError(f"unknown engine kind {spec.kind!r}")
