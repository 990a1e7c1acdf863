"""Child-process bodies for the multi-process tests (module level, so ``spawn`` can import them)."""

from __future__ import annotations

import time
from pathlib import Path

from localqueue.registry import open_attempt_store, open_queue_store

QUEUE = "jobs"


def produce(url: str, prefix: str, count: int, batch: int) -> None:
    """Put ``count`` messages ``prefix-i``, in batches of ``batch`` (1 means plain ``put``)."""
    store = open_queue_store(url)
    try:
        codec = store.serializer.name
        if batch <= 1:
            for i in range(count):
                store.put(QUEUE, f"{prefix}-{i}".encode(), codec=codec)
        else:
            for start in range(0, count, batch):
                chunk = [f"{prefix}-{i}".encode() for i in range(start, min(count, start + batch))]
                store.put_many(QUEUE, chunk, codec=codec)
    finally:
        store.close()


def consume(url: str, out: str, expected: int, deadline_s: float) -> None:
    """Lease and ack until ``expected`` messages are acked by all consumers (counted on disk).

    Each successful ack appends ``payload`` to ``out`` (one line each), so the
    parent can check that no message was acked twice or never.
    """
    store = open_queue_store(url)
    deadline = time.monotonic() + deadline_s
    path = Path(out)
    try:
        with path.open("a") as log:
            while time.monotonic() < deadline:
                leased = store.lease(QUEUE, lease_timeout=60, leased_by=path.name, limit=5)
                if not leased:
                    stats = store.stats(QUEUE)
                    if stats.total == 0 and _acked_everywhere(path.parent, expected):
                        return
                    store.wait(QUEUE, 0.05)
                    continue
                for message in leased:
                    if store.ack(QUEUE, message.id, lease_token=message.lease_token):
                        log.write(message.payload.decode() + "\n")
                        log.flush()
    finally:
        store.close()


def _acked_everywhere(folder: Path, expected: int) -> bool:
    lines = sum(len(p.read_text().splitlines()) for p in folder.glob("acked-*.log"))
    return lines >= expected


def count_attempts(url: str, key: str, count: int) -> None:
    """Call ``begin_attempt(key)`` ``count`` times."""
    store = open_attempt_store(url)
    try:
        for _ in range(count):
            store.begin_attempt(key)
    finally:
        store.close()
