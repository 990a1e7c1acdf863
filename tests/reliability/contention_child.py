"""One of many processes hammering one store: put, lease, ack in a loop.

    python contention_child.py URL ROUNDS

Prints the slowest single call in seconds, or the error that reached it.
"""

from __future__ import annotations

import sys
import time

from localqueue.registry import open_queue_store


def main(url: str, rounds: int) -> None:
    store = open_queue_store(url)
    codec = store.serializer.name
    worst = 0.0
    for i in range(rounds):
        for call in (
            lambda i=i: store.put("hot", f"{i}".encode(), codec=codec),
            lambda: store.put_many("hot", [b"a", b"b"], codec=codec),
            lambda: [
                store.ack("hot", m.id, lease_token=m.lease_token)
                for m in store.lease("hot", lease_timeout=30, limit=3)
            ],
            lambda: store.stats("hot"),
        ):
            started = time.perf_counter()
            call()
            worst = max(worst, time.perf_counter() - started)
    store.close()
    print(f"{worst:.6f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
