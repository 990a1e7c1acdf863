"""The roles ``compare.py`` starts in other processes: producer, consumer, waiter, worker.

They live in their own module so that ``spawn`` re-imports only this, not the
comparison's command line. Every role opens its queue itself from a picklable
:class:`~peers.EngineSpec` or URL, and reports through shared memory, a pipe
or a file: never through the queue under test.
"""

from __future__ import annotations

import time
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

from peers import Adapter, EngineSpec, open_engine

__all__ = [
    "LOCALQUEUE_CONSUMER",
    "body",
    "body_id",
    "consume_for_memory",
    "consumer",
    "producer",
    "rss_kib",
    "waiter",
]

LOCALQUEUE_CONSUMER = "plain get_message/ack loop (the long-running worker is not on main yet)"
"""How localqueue's consumers consume; the end-to-end figures name it."""

_TAKE_WAIT = 0.05


def body(number: int, size: int) -> str:
    """A message body carrying its sequence number, padded to about ``size`` bytes."""
    head = f"{number:09d}:"
    return head + "x" * max(size - len(head) - 3, 0)


def body_id(text: str) -> int:
    """The sequence number of a :func:`body`."""
    return int(text.split(":", 1)[0])


def rss_kib() -> int:
    """This process's resident set size in KiB, read from ``/proc/self/status``."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS line in /proc/self/status")


def producer(
    spec: EngineSpec, count: int, size: int, barrier: Any, done_at: Synchronized[float]
) -> None:
    """Put ``count`` numbered messages one by one, then record when the last put returned."""
    queue = open_engine(spec)
    try:
        barrier.wait()
        for number in range(count):
            queue.put(body(number, size))
        done_at.value = time.monotonic()
    finally:
        queue.close()


def consumer(
    spec: EngineSpec,
    index: int,
    barrier: Any,
    stop: Any,
    counts: Any,
    last_ack: Any,
    out_path: str,
) -> None:
    """Take and ack messages until ``stop`` is set and nothing is left; write the ids acked."""
    queue = open_engine(spec)
    acked: list[int] = []
    try:
        barrier.wait()
        while True:
            got = queue.take(_TAKE_WAIT)
            if got is None:
                if stop.is_set():
                    break
                continue
            handle, text = got
            queue.ack(handle)
            acked.append(body_id(text))
            counts[index] += 1
            last_ack[index] = time.monotonic()
    finally:
        Path(out_path).write_text("\n".join(map(str, acked)), encoding="ascii")
        queue.close()


def waiter(url: str, samples: int, ready: Any, conn: Connection) -> None:
    """Block in ``get_message`` ``samples`` times; send back when each wake-up happened."""
    from localqueue import PersistentQueue

    with PersistentQueue("latency", url) as queue:
        for _ in range(samples):
            ready.set()
            message = queue.get_message(block=True, timeout=30)
            woke = time.monotonic()
            queue.ack(message)
            conn.send(woke)
    conn.close()


def consume_for_memory(
    spec: EngineSpec, count: int, size: int, fill: bool, conn: Connection
) -> None:
    """Consume ``count`` messages like a worker; send RSS (KiB) after warm-up and at the end.

    ``fill`` puts the messages first, in this process (for the in-memory store).
    """
    queue: Adapter = open_engine(spec)
    try:
        if fill:
            for first in range(0, count, 1_000):
                queue.put_batch([body(n, size) for n in range(first, min(first + 1_000, count))])
        warm_up = min(1_000, max(count // 10, 1))
        start_rss = 0
        for done in range(count):
            if done == warm_up:
                start_rss = rss_kib()
            got = queue.take(5.0)
            if got is None:
                raise RuntimeError(f"queue ran dry after {done} of {count} messages")
            queue.ack(got[0])
        conn.send((start_rss, rss_kib()))
    finally:
        queue.close()
        conn.close()
