"""Running a worker for ``queue process`` and ``queue exec``.

Built on :class:`localqueue.worker.Worker`, which owns the rules: persistent
retry keyed by message id, ack on success, dead letter (or release) on final
failure, lease heartbeats, and a graceful stop on SIGINT/SIGTERM that lets the
current message finish. This module maps the command-line flags onto it and
reports each outcome.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

import tenacity
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from localqueue.cli import exit_codes
from localqueue.cli.errors import CliError
from localqueue.cli.output import Format, Printer
from localqueue.cli.stores import open_retry_store, opened_queue
from localqueue.protocols import AttemptStore
from localqueue.queue import PersistentQueue
from localqueue.runner import Worker, WorkerStats
from localqueue.worker import MessageOutcome, PersistentWorkerConfig

__all__ = ["WorkerOptions", "run_worker"]

WORKER_LOGGER = "localqueue.worker"
"""The logger whose per-message lines the JSON output replaces."""

_STATUS_STYLE = {
    "acked": "green",
    "dead_lettered": "red",
    "released": "yellow",
    "lease_lost": "magenta",
    "skipped": "bright_red",
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
    create: bool = False
    report_each: bool = True
    """Print a line per message; ``False``: only for those that did not succeed first time."""

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

    def __init__(
        self, printer: Printer, queue: str, advance: Callable[[], None], *, each: bool = True
    ) -> None:
        self._printer = printer
        self._each = each
        self._queue = queue
        self._advance = advance
        self._lock = threading.Lock()

    def __call__(self, outcome: MessageOutcome) -> None:
        with self._lock:
            if self._each or outcome.status != "acked" or outcome.attempts > 1:
                self._print(outcome)
            self._advance()

    def _print(self, outcome: MessageOutcome) -> None:
        if self._printer.format is Format.JSON:
            self._printer.record(
                {
                    "event": "message",
                    "queue": self._queue,
                    "id": outcome.message_id,
                    "status": outcome.status,
                    "tries": outcome.attempts,
                    "error": outcome.error,
                }
            )
            return
        style = _STATUS_STYLE.get(outcome.status, "default")
        # Errors are arbitrary text: escape them so "[x]" is not read as Rich markup.
        error = f"  {escape(outcome.error)}" if outcome.error else ""
        self._printer.console.print(
            f"[{style}]{outcome.status:<13}[/] {escape(outcome.message_id)}"
            f"  tries={outcome.attempts}{error}",
            markup=True,
            highlight=False,
        )

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
            "skipped": stats.skipped,
        }
        self._printer.record(row, title=f"worker on {self._queue}")


class _ReportedOutcomes(logging.Filter):
    """Drops the worker's log line about a message outcome: its JSON line reports it already.

    Those records carry the message's id; a traceback (``exc_info``) is kept, since
    the JSON line has only the error's text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (hasattr(record, "message_id") and record.exc_info is None)


@contextmanager
def _one_report_per_outcome() -> Iterator[None]:
    worker_logger = logging.getLogger(WORKER_LOGGER)
    only_once = _ReportedOutcomes()
    worker_logger.addFilter(only_once)
    try:
        yield
    finally:
        worker_logger.removeFilter(only_once)


def _same_terminal(a: TextIO, b: TextIO) -> bool:
    try:
        return os.path.samestat(os.fstat(a.fileno()), os.fstat(b.fileno()))
    except (OSError, ValueError, io.UnsupportedOperation):
        return False


@contextmanager
def _progress(queue: PersistentQueue, enabled: bool) -> Iterator[Callable[[], None]]:
    """A progress bar for a terminal's stderr (only when it is one); yields its ``advance``.

    The JSON lines stay on stdout whatever it is. When stdout is that same
    terminal, the bar is drawn through it so the lines scroll above the bar
    instead of breaking it; otherwise the bar is on stderr and stdout is left alone.
    """
    if not enabled or not sys.stderr.isatty():
        yield lambda: None
        return
    shared = sys.stdout.isatty() and _same_terminal(sys.stdout, sys.stderr)
    stats = queue.stats()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        # soft_wrap: JSON lines printed above the bar must not be folded at the width.
        console=Console(file=sys.stdout if shared else sys.stderr, soft_wrap=True),
        transient=True,
        # Redirecting stdout into a stderr bar would move the JSON lines off stdout.
        redirect_stdout=shared,
        redirect_stderr=not shared,
    ) as progress:
        task = progress.add_task(queue.name, total=stats.ready + stats.inflight)

        def advance() -> None:
            progress.advance(task)
            done = progress.tasks[task].completed
            # Count what is left from the store: leased messages (this worker's
            # included) and ready ones; new messages may also arrive while we run.
            now = queue.stats()
            progress.update(task, total=done + now.ready + now.inflight)

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
    printer = Printer(fmt)
    with opened_queue(
        queue_name,
        store,
        store_path,
        lease_timeout=options.lease_timeout,
        create=options.create,
    ) as queue:
        attempts = open_retry_store(retry_store, retry_store_path)
        try:
            config = options.config(attempts)
            with _one_report_per_outcome(), _progress(queue, options.until_empty) as advance:
                reporter = _Reporter(printer, queue_name, advance, each=options.report_each)
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
