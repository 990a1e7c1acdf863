"""Multi-process workers: three processes share one SQLite file; no job is lost or done twice.

Each process opens the store by URL, as separate programs would. Run it with
``python examples/multiprocess_workers.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections import Counter

from localqueue import PersistentQueue

JOBS = 300
PROCESSES = 3


def worker(store_url: str) -> list[int]:
    """Process messages until none arrives for a second; return the job numbers done."""
    done: list[int] = []
    worker_id = f"pid-{os.getpid()}"
    with PersistentQueue("reports", store=store_url) as queue:
        while True:
            with queue.consume(block=True, timeout=1.0, leased_by=worker_id) as message:
                if message is None:
                    return done
                done.append(message.value["report"])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store_url = f"sqlite:///{tmp}/jobs.db"
        with PersistentQueue("reports", store=store_url) as queue:
            queue.put_many([{"report": i} for i in range(JOBS)])
            print(f"queued {queue.stats().ready} jobs")

            # "spawn" starts clean interpreters, as on macOS and Windows.
            with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
                results = pool.map(worker, [store_url] * PROCESSES)

            counts = Counter(job for done in results for job in done)
            print(f"processed {sum(counts.values())} jobs with {PROCESSES} processes")
            print(f"each job exactly once: {sorted(counts) == list(range(JOBS))}")
            print(f"left in the queue: {queue.stats().total}")


if __name__ == "__main__":
    main()
