"""Running a worker for ``queue process`` and ``queue exec``.

Built on :class:`localqueue.runner.Worker`, which owns the rules: persistent
retry keyed by message id, ack on success, dead letter (or release) on final
failure, lease heartbeats, and a graceful stop on SIGINT/SIGTERM that lets the
current message finish. This module maps the command-line flags onto it and
reports each outcome.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import tenacity
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from localqueue.cli import exit_codes
from localqueue.cli.config import resolve_retry_store
from localqueue.cli.errors import CliError
from localqueue.cli.output import Format, Printer
from localqueue.cli.stores import opened_queue
from localqueue.protocols import AttemptStore
from localqueue.queue import PersistentQueue
from localqueue.registry import open_attempt_store
from localqueue.runner import Worker, WorkerStats
from localqueue.worker import MessageOutcome, PersistentWorkerConfig

__all__ = ["WorkerOptions", "run_worker"]

_STATUS_STYLE = {
    "acked": "green",
    "dead_lettered": "red",
    "released": "yellow",
    "lease_lost": "magenta",
}


@dataclass(frozen=True)
class WorkerOptions:
    """The worker flags shared by ``process`` and ``exec``."""

    max_tries: int = 3
    retry_wait: float = 0.0
    forever: bool = False
    until_empty: bool = False
    block: bool = False
    max_messages: int | None = None
    worker_id: str | None = None
    concurrency: int = 1
    lease_timeout: float = 30.0
    release_delay: float = 0.0
    dead_letter: bool = True

    def check(self) -> None:
        """Refuse contradictory flags.

        Raises:
            CliError: ``--forever`` with ``--until-empty``.
        """
        if self.forever and self.until_empty:
            raise CliError("pass at most one of --forever and --until-empty")

    def config(self, attempts: AttemptStore) -> PersistentWorkerConfig:
        """The worker config these flags describe, keeping retry state in ``attempts``."""
        return PersistentWorkerConfig(
            store=attempts,
            max_tries=self.max_tries,
            wait=tenacity.wait_fixed(self.retry_wait) if self.retry_wait else None,
            dead_letter_on_failure=self.dead_letter,
            release_delay=self.release_delay,
            lease_timeout=self.lease_timeout,
            worker_id=self.worker_id,
        )


class _Reporter:
    """Prints one line per outcome as workers settle messages (from several threads)."""

    def __init__(self, printer: Printer, queue: str, advance: Callable[[], None]) -> None:
        self._printer = printer
        self._queue = queue
        self._advance = advance
        self._lock = threading.Lock()

    def __call__(self, outcome: MessageOutcome) -> None:
        row = {
            "event": "message",
            "queue": self._queue,
            "id": outcome.message_id,
            "status": outcome.status,
            "attempts": outcome.attempts,
            "error": outcome.error,
        }
        with self._lock:
            if self._printer.format is Format.JSON:
                self._printer.record(row)
            else:
                style = _STATUS_STYLE.get(outcome.status, "")
                # Errors are arbitrary text: escape them so "[x]" is not read as Rich markup.
                error = f"  {escape(outcome.error)}" if outcome.error else ""
                self._printer.console.print(
                    f"[{style}]{outcome.status:<13}[/] {escape(outcome.message_id)}"
                    f"  attempts={outcome.attempts}{error}",
                    markup=True,
                    highlight=False,
                )
            self._advance()

    def summary(self, stats: WorkerStats) -> None:
        """Print the totals of the run."""
        row = {
            "event": "summary",
            "queue": self._queue,
            "processed": stats.processed,
            "acked": stats.acked,
            "dead_lettered": stats.dead_lettered,
            "released": stats.released,
            "lease_lost": stats.lease_lost,
        }
        self._printer.record(row, title=f"worker on {self._queue}")


@contextmanager
def _progress(queue: PersistentQueue, enabled: bool) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr (only when it is a terminal); yields its ``advance``."""
    if not enabled or not sys.stderr.isatty():
        yield lambda: None
        return
    stats = queue.stats()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(queue.name, total=stats.ready + stats.inflight)

        def advance() -> None:
            progress.advance(task)
            done = progress.tasks[task].completed
            # New messages may arrive while we run: keep the total honest.
            progress.update(task, total=max(done + queue.qsize(), done))

        yield advance


def run_worker(
    queue_name: str,
    handler: Callable[..., Any],
    options: WorkerOptions,
    *,
    store: str | None,
    store_path: str | None,
    retry_store: str | None,
    retry_store_path: str | None,
    fmt: Format,
) -> None:
    """Consume ``queue_name`` with ``handler`` as the flags say, printing each outcome.

    Without ``--forever`` or ``--until-empty`` it processes up to ``--max-messages``
    (default one) and stops early when the queue is empty; with nothing processed
    it exits with :data:`~localqueue.cli.exit_codes.EMPTY_QUEUE`.

    Raises:
        CliError: Contradictory flags, or nothing to process in single-message mode.
    """
    options.check()
    retry_url = resolve_retry_store(retry_store, retry_store_path)
    printer = Printer(fmt)
    with opened_queue(queue_name, store, store_path, lease_timeout=options.lease_timeout) as queue:
        attempts = open_attempt_store(retry_url)
        try:
            config = options.config(attempts)
            with _progress(queue, options.until_empty) as advance:
                reporter = _Reporter(printer, queue_name, advance)
                worker = Worker(
                    queue,
                    handler,
                    config=config,
                    concurrency=options.concurrency,
                    worker_id=options.worker_id,
                    on_outcome=reporter,
                )
                if options.forever:
                    stats = worker.run(block=options.block, max_messages=options.max_messages)
                elif options.until_empty:
                    stats = worker.run(until_empty=True, max_messages=options.max_messages)
                else:
                    stats = worker.run(
                        until_empty=not options.block,
                        block=options.block,
                        max_messages=options.max_messages or 1,
                    )
        finally:
            attempts.close()
    single = not (options.forever or options.until_empty)
    if single and stats.processed == 0:
        raise CliError(f"queue {queue_name!r} is empty", exit_codes.EMPTY_QUEUE)
    reporter.summary(stats)
