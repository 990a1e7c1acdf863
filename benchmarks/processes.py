"""The roles ``compare.py`` starts in other processes: producer, consumer, waiter, worker.

They live in their own module so that ``spawn`` re-imports only this, not the
comparison's command line. Every role opens its queue itself from a picklable
:class:`~peers.EngineSpec` or URL, and reports through shared memory, a pipe
or a file: never through the queue under test.
"""

from __future__ import annotations

import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

from peers import EngineSpec, open_engine

__all__ = [
    "LOCALQUEUE_CONSUMER",
    "body",
    "body_id",
    "consume_for_memory",
    "consumer",
    "producer",
    "rss_kib",
    "waiter",
    "worker_consumer",
]

LOCALQUEUE_CONSUMER = "localqueue.runner.Worker, defaults; retry state in the same store"
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
    """This process's own resident memory in KiB: ``RssAnon`` from ``/proc/self/status``.

    Not ``VmRSS``: that also counts the pages of memory-mapped database files
    the process has read (LMDB maps its whole file), which are the OS page
    cache, shared and reclaimable, not the worker's memory.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("no RssAnon line in /proc/self/status")


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


def _worker(url: str, handler: Any, on_outcome: Any) -> Any:
    """The long-running worker with its defaults, keeping retry state in the queue's own store."""
    from localqueue import PersistentQueue, PersistentWorkerConfig
    from localqueue.runner import Worker

    queue = PersistentQueue("bench", url)
    config = PersistentWorkerConfig(store=url)
    return Worker(queue, handler, config=config, on_outcome=on_outcome)


def worker_consumer(
    spec: EngineSpec,
    index: int,
    barrier: Any,
    stop: Any,
    counts: Any,
    last_ack: Any,
    out_path: str,
) -> None:
    """:func:`consumer` for localqueue, through the long-running worker.

    The handler returns the message's number; ``on_outcome`` records it once the
    message is acked. ``stop`` makes the worker finish its in-flight message and return.
    """
    acked: list[int] = []

    def on_outcome(outcome: Any) -> None:
        if outcome.status == "acked":
            acked.append(outcome.result)
            counts[index] += 1
            last_ack[index] = time.monotonic()

    worker = _worker(spec.location, body_id, on_outcome)
    threading.Thread(target=lambda: (stop.wait(), worker.stop()), daemon=True).start()
    try:
        barrier.wait()
        worker.run()
    finally:
        Path(out_path).write_text("\n".join(map(str, acked)), encoding="ascii")
        worker.queue.close()


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


def consume_for_memory(url: str, count: int, size: int, fill: bool, conn: Connection) -> None:
    """Run the worker over ``count`` messages; send RSS (KiB) after warm-up and at the end.

    ``fill`` puts the messages first, in this process (for the in-memory store).
    """
    worker = _worker(url, body_id, None)
    try:
        if fill:
            for first in range(0, count, 1_000):
                worker.queue.put_many(
                    [body(n, size) for n in range(first, min(first + 1_000, count))]
                )
        warm_up = min(1_000, max(count // 10, 1))
        done = worker.run(until_empty=True, max_messages=warm_up).acked
        start_rss = rss_kib()
        done += worker.run(until_empty=True, max_messages=count - warm_up).acked
        if done != count:
            raise RuntimeError(f"the worker acked {done} of {count} messages")
        conn.send((start_rss, rss_kib()))
    finally:
        worker.queue.close()
        conn.close()
