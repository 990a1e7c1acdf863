"""Threaded workers: four threads consume one SQLite queue, and every job is done exactly once.

Each thread opens its own handle on the store (its own SQLite connection), as
separate worker processes would. Run it with ``python examples/threaded_workers.py``.
"""

from __future__ import annotations

import tempfile
import threading
from collections import Counter

from localqueue import PersistentQueue

JOBS = 200
THREADS = 4


def worker(store_url: str, worker_id: str, done: Counter[int], lock: threading.Lock) -> None:
    """Process messages until none arrives for half a second."""
    with PersistentQueue("thumbnails", store=store_url) as queue:
        while True:
            with queue.consume(block=True, timeout=0.5, leased_by=worker_id) as message:
                if message is None:
                    return
                with lock:  # stands in for the real work, e.g. resizing an image
                    done[message.value["image"]] += 1


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store_url = f"sqlite:///{tmp}/jobs.db"
        with PersistentQueue("thumbnails", store=store_url) as queue:
            queue.put_many([{"image": i} for i in range(JOBS)])
            print(f"queued {queue.stats().ready} jobs")

            done: Counter[int] = Counter()
            lock = threading.Lock()
            threads = [
                threading.Thread(target=worker, args=(store_url, f"thread-{n}", done, lock))
                for n in range(THREADS)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

            print(f"processed {sum(done.values())} jobs with {THREADS} threads")
            print(f"each job exactly once: {sorted(done) == list(range(JOBS))}")
            print(f"left in the queue: {queue.stats().total}")


if __name__ == "__main__":
    main()
