"""``localqueue demo``: the main job, end to end, on a SQLite file in a few seconds.

It adds a few hundred jobs, runs a worker on them (a progress bar on a
terminal's stderr), with one job that fails once and is retried and one that
always fails and becomes a dead letter, then prints a line for each of those
two, the worker's summary and the queue's counts.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

import typer

from localqueue.cli.config import sqlite_url
from localqueue.cli.options import FormatOpt
from localqueue.cli.output import Format, Printer
from localqueue.cli.stores import opened_queue
from localqueue.cli.work import WorkerOptions, run_worker

__all__ = ["demo"]

QUEUE = "demo"
FLAKY = 7
"""The job that fails on its first try and succeeds when retried."""
BROKEN = 13
"""The job that always fails, and so ends as a dead letter."""


class _DemoHandler:
    """Pretends to work; job FLAKY fails once, job BROKEN every time."""

    def __init__(self) -> None:
        self._failed_once: set[int] = set()
        self._lock = threading.Lock()

    def __call__(self, job: dict[str, Any]) -> None:
        n = int(job["n"])
        if n == BROKEN:
            raise ValueError(f"demo job {n} always fails")
        with self._lock:
            first = n == FLAKY and n not in self._failed_once
            self._failed_once.add(n)
        if first:
            raise ConnectionError(f"demo job {n} fails once, then succeeds")


def demo(
    store_path: Annotated[
        str,
        typer.Option("--store-path", metavar="PATH", help="The SQLite file the demo writes."),
    ] = "localqueue_demo.sqlite3",
    jobs: Annotated[int, typer.Option("--jobs", min=20, help="How many jobs to add.")] = 300,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Add jobs to a SQLite file, process them with retries and a dead letter, print the stats.

    The queue is named "demo"; running it again starts the queue afresh. Retry
    state goes to PATH-retries.
    """
    url = sqlite_url(store_path)
    with opened_queue(QUEUE, url, None, create=True) as queue:
        queue.purge("all")
        queue.put_many([{"n": n} for n in range(jobs)])
    run_worker(
        QUEUE,
        _DemoHandler(),
        WorkerOptions(until_empty=True, max_tries=3, report_each=False),
        store=url,
        store_path=None,
        retry_store=sqlite_url(f"{store_path}-retries"),
        retry_store_path=None,
        fmt=fmt,
    )
    with opened_queue(QUEUE, url, None) as queue:
        Printer(fmt).record({"queue": QUEUE, **queue.stats().as_dict()}, title="queue demo")
