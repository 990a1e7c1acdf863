"""Child-process bodies for the multi-process tests (module level, so ``spawn`` can import them)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from localqueue.registry import open_attempt_store, open_queue_store
from localqueue.testing._base import CODEC

QUEUE = "jobs"


def produce(url: str, prefix: str, count: int, batch: int) -> None:
    """Put ``count`` messages ``prefix-i``, in batches of ``batch`` (1 means plain ``put``)."""
    store = open_queue_store(url)
    try:
        codec = CODEC
        if batch <= 1:
            for i in range(count):
                store.put(QUEUE, f"{prefix}-{i}".encode(), codec=codec)
        else:
            for start in range(0, count, batch):
                chunk = [f"{prefix}-{i}".encode() for i in range(start, min(count, start + batch))]
                store.put_many(QUEUE, chunk, codec=codec)
    finally:
        store.close()


@dataclass(frozen=True)
class LeaseRecord:
    """One lease as a consumer saw it, for finding double leases afterwards.

    ``held_from`` is read just after ``lease`` returned and ``held_until`` is
    the earlier of the lease's ``leased_until`` and the time read just before
    the consumer settled it, so the lease was certainly valid in between.
    """

    message_id: str
    token: str
    consumer: str
    held_from: float
    held_until: float


def overlapping_leases(records: Iterable[LeaseRecord], margin: float) -> list[str]:
    """Describe every pair of leases on one id that were both valid at once.

    ``margin`` seconds are taken off each lease's end, for clocks read in
    different places (a server's and the test's).
    """
    by_id: dict[str, list[LeaseRecord]] = defaultdict(list)
    tokens: dict[str, int] = defaultdict(int)
    for record in records:
        by_id[record.message_id].append(record)
        tokens[record.token] += 1
    problems = [f"lease token {t!r} handed out {n} times" for t, n in tokens.items() if n > 1]
    for message_id, leases in by_id.items():
        leases.sort(key=lambda r: r.held_from)
        for i, a in enumerate(leases):
            for b in leases[i + 1 :]:
                if b.held_from < a.held_until - margin and b.token != a.token:
                    problems.append(
                        f"{message_id} leased by {b.consumer} at {b.held_from:.3f} while "
                        f"{a.consumer}'s lease from {a.held_from:.3f} was valid until "
                        f"{a.held_until:.3f}"
                    )
    return problems


def read_lease_log(paths: Iterable[Path]) -> list[LeaseRecord]:
    """Load the lease records written by :func:`consume`."""
    return [LeaseRecord(**json.loads(line)) for p in paths for line in p.read_text().splitlines()]


def consume(
    url: str,
    out: str,
    expected: int,
    deadline_s: float,
    lease_timeout: float = 60.0,
    limit: int = 5,
    abandon_every: int = 0,
) -> None:
    """Lease and ack until ``expected`` messages are acked by all consumers (counted on disk).

    Each successful ack appends ``payload`` to ``out`` (one line each), so the
    parent can check that no message was acked twice or never; every lease is
    logged to ``out + ".leases"``. With ``abandon_every = n``, every n-th first
    delivery is left to expire, so expired leases are redelivered.
    """
    store = open_queue_store(url)
    deadline = time.monotonic() + deadline_s
    path = Path(out)
    seen = 0
    try:
        with path.open("a") as log, Path(out + ".leases").open("a") as lease_log:
            while time.monotonic() < deadline:
                leased = store.lease(
                    QUEUE, lease_timeout=lease_timeout, leased_by=path.name, limit=limit
                )
                held_from = time.time()
                if not leased:
                    stats = store.stats(QUEUE)
                    if stats.total == 0 and _acked_everywhere(path.parent, expected):
                        return
                    store.wait(QUEUE, 0.05)
                    continue
                for message in leased:
                    seen += 1
                    assert message.lease_token is not None
                    assert message.leased_until is not None
                    abandon = abandon_every and message.attempts == 1 and seen % abandon_every == 0
                    settled_at = time.time()
                    if not abandon and store.ack(
                        QUEUE, message.id, lease_token=message.lease_token
                    ):
                        log.write(message.payload.decode() + "\n")
                        log.flush()
                    held_until = message.leased_until if abandon else settled_at
                    record = LeaseRecord(
                        message.id,
                        message.lease_token,
                        path.name,
                        held_from,
                        min(held_until, message.leased_until),
                    )
                    lease_log.write(json.dumps(record.__dict__) + "\n")
                    lease_log.flush()
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
