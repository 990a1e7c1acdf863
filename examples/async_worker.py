"""An async worker: a coroutine handler, five messages in flight at once, retries, a dead letter.

``Worker`` runs a coroutine handler as asyncio tasks. Each message gets up to
three tries; the one that keeps failing is dead-lettered with its error. Run
it with ``python examples/async_worker.py``.
"""

from __future__ import annotations

import asyncio
import tempfile

from localqueue import PersistentQueue
from localqueue.runner import Worker
from localqueue.worker import PersistentWorkerConfig


async def fetch(job: dict[str, str]) -> None:
    """Stands in for an HTTP call; one URL always fails."""
    await asyncio.sleep(0.01)
    if job["url"].endswith("/broken"):
        raise ConnectionError(f"cannot reach {job['url']}")


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        PersistentQueue("fetch", store=f"sqlite:///{tmp}/jobs.db") as queue,
    ):
        urls = [f"https://example.com/page/{i}" for i in range(20)]
        queue.put_many([{"url": url} for url in [*urls, "https://example.com/broken"]])

        config = PersistentWorkerConfig(max_tries=3, store=f"sqlite:///{tmp}/retries.db")
        worker = Worker(queue, fetch, config=config, concurrency=5, handle_signals=False)
        stats = worker.run(until_empty=True)

        print(f"acked {stats.acked}, dead-lettered {stats.dead_lettered}")
        for dead in queue.dead_letters():
            print(f"dead letter: {dead.value['url']}: {dead.last_error}")


if __name__ == "__main__":
    main()
