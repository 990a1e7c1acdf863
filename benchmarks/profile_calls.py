"""Where a call's time goes: each layer of a put and a get+ack, timed side by side.

``compare.py`` gives rates; this script explains them. For SQLite it times, in
interleaved rounds (the raw loop on a file of its own, the rest on the store's
file and connection):

1. the raw loop's statement on the raw loop's three-column table,
2. localqueue's own SQL statement(s) on localqueue's schema, called directly,
3. the store method (``SQLiteQueueStore.put`` / ``lease`` + ``ack``),
4. the same through ``PersistentQueue`` (msgpack encode / decode included),

so (2) - (1) is what the schema costs, (3) - (2) the store's Python, and
(4) - (3) the queue layer's. The memory store gets (3) and (4) and a
cProfile of the queue-level get+ack. Run it on an idle machine::

    python benchmarks/profile_calls.py --workdir /path/on/the/disk
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from localqueue import PersistentQueue, QueueStore
from localqueue.stores.memory import MemoryQueueStore
from localqueue.stores.sqlite import _ACK, _LEASE_ONE, _PUT, SQLiteQueueStore

PAYLOAD = b"x" * 100
VALUE = "x" * 90  # about 100 bytes once encoded


def interleaved(variants: dict[str, Callable[[], None]], rounds: int, calls: int) -> None:
    """Run each variant ``calls`` times per round, rounds interleaved; print µs per call."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, call in variants.items():
            start = time.perf_counter()
            for _ in range(calls):
                call()
            samples[name].append((time.perf_counter() - start) / calls * 1e6)
    width = max(map(len, variants))
    for name, values in samples.items():
        print(
            f"  {name.ljust(width)}  median {statistics.median(values):7.1f} µs"
            f"  best {min(values):7.1f} µs"
        )


def store_get_ack(store: QueueStore) -> None:
    """Lease one message straight from a store and ack it."""
    message = store.lease("store", lease_timeout=30)[0]
    store.ack("store", message.id, lease_token=message.lease_token)


def queue_get_ack(queue: PersistentQueue) -> None:
    """Lease one message through the queue, decode it and ack it."""
    message = queue.get_message(block=False)
    _ = message.value
    queue.ack(message)


def sqlite_layers(workdir: Path, durability: str, rounds: int, calls: int) -> None:
    level = {"full": 2, "normal": 1, "off": 0}[durability]
    raw = sqlite3.connect(workdir / "raw.sqlite3", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute(f"PRAGMA synchronous={level}")
    raw.execute(
        "CREATE TABLE q (id INTEGER PRIMARY KEY, payload BLOB NOT NULL, available_at REAL NOT NULL)"
    )
    raw.execute("CREATE INDEX q_available ON q (available_at, id)")
    store = SQLiteQueueStore(workdir / "store.sqlite3", durability=durability)
    conn = store._db.conn  # the store's own connection: same file, same settings
    assert conn is not None
    queue = PersistentQueue("layers", store)

    def raw_put() -> None:
        raw.execute("INSERT INTO q (payload, available_at) VALUES (?, ?)", (PAYLOAD, time.time()))

    def sql_put() -> None:
        now = time.time()
        conn.execute(_PUT, (12345, "sql", 0, now, now, "msgpack", PAYLOAD))

    print(f"\nSQLite put, durability={durability}")
    interleaved(
        {
            "raw loop's INSERT": raw_put,
            "localqueue's INSERT": sql_put,
            "SQLiteQueueStore.put": lambda: store.put("store", PAYLOAD, codec="msgpack"),
            "PersistentQueue.put": lambda: queue.put(VALUE),
        },
        rounds,
        calls,
    )

    def raw_get_ack() -> None:
        now = time.time()
        rows = raw.execute(
            "UPDATE q SET available_at = ? WHERE id IN (SELECT id FROM q WHERE available_at <= ?"
            " ORDER BY available_at, id LIMIT 1) RETURNING id, payload",
            (now + 30, now),
        ).fetchall()
        raw.execute("DELETE FROM q WHERE id = ?", (rows[0][0],))

    def sql_get_ack() -> None:
        now = time.time()
        token, seq, nonce = conn.execute(_LEASE_ONE, ("sql", now, 1, now + 30, None)).fetchall()[0][
            :3
        ]
        conn.execute(_ACK, (seq, nonce, "sql", token))

    print(f"\nSQLite get+ack, durability={durability} (draining what the puts stored)")
    interleaved(
        {
            "raw loop's UPDATE + DELETE": raw_get_ack,
            "localqueue's UPDATE + DELETE": sql_get_ack,
            "SQLiteQueueStore.lease + ack": lambda: store_get_ack(store),
            "PersistentQueue.get_message + ack": lambda: queue_get_ack(queue),
        },
        rounds,
        calls,
    )
    queue.close()
    store.close()
    raw.close()


def memory_layers(rounds: int, calls: int) -> None:
    store = MemoryQueueStore()
    queue = PersistentQueue("layers", store)

    print("\nMemory store")
    interleaved(
        {
            "MemoryQueueStore.put": lambda: store.put("store", PAYLOAD, codec="msgpack"),
            "PersistentQueue.put": lambda: queue.put(VALUE),
        },
        rounds,
        calls,
    )
    interleaved(
        {
            "MemoryQueueStore.lease + ack": lambda: store_get_ack(store),
            "PersistentQueue.get+ack": lambda: queue_get_ack(queue),
        },
        rounds,
        calls,
    )
    for _ in range(2):
        queue.put_many([VALUE] * 10_000)
    profile = cProfile.Profile()
    profile.runcall(lambda: [queue_get_ack(queue) for _ in range(20_000)])
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(12)
    print("\ncProfile of 20,000 PersistentQueue get+ack on the memory store (by own time):")
    lines = out.getvalue().splitlines()
    first = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    print("\n".join(lines[first:]))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--durability", default="normal", choices=["full", "normal", "off"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2_000)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="layers-", dir=args.workdir))
    print(f"workdir {workdir}, {args.rounds} rounds of {args.calls} calls per variant")
    sqlite_layers(workdir, args.durability, args.rounds, args.calls)
    memory_layers(args.rounds, args.calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
