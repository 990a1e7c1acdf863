"""``localqueue queue process`` and ``localqueue queue exec``: run a worker."""

from __future__ import annotations

from typing import Annotated

import typer

from localqueue.cli.handlers import CommandHandler, import_handler
from localqueue.cli.options import (
    FormatOpt,
    QueueArg,
    RetryStoreOpt,
    RetryStorePathOpt,
    StoreOpt,
    StorePathOpt,
)
from localqueue.cli.output import Format
from localqueue.cli.work import WorkerOptions, run_worker

__all__ = ["register"]

_WORKER = "Worker"

MaxTriesOpt = Annotated[
    int,
    typer.Option(
        "--max-tries",
        min=1,
        help="Handler tries per message (persisted across restarts) before it is dead-lettered.",
        rich_help_panel=_WORKER,
    ),
]
RetryWaitOpt = Annotated[
    float,
    typer.Option(
        "--retry-wait",
        min=0,
        help="Seconds between two tries of one message.",
        rich_help_panel=_WORKER,
    ),
]
ForeverOpt = Annotated[
    bool,
    typer.Option(
        "--forever",
        help="Keep running until SIGINT/SIGTERM, which finish the current message and exit 0.",
        rich_help_panel=_WORKER,
    ),
]
UntilEmptyOpt = Annotated[
    bool,
    typer.Option(
        "--until-empty",
        help="Process until no message is available (progress bar on a terminal's stderr).",
        rich_help_panel=_WORKER,
    ),
]
BlockOpt = Annotated[
    bool,
    typer.Option(
        "--block",
        help="Wait for messages when the queue is empty instead of polling (or exiting 3).",
        rich_help_panel=_WORKER,
    ),
]
MaxMessagesOpt = Annotated[
    int | None,
    typer.Option(
        "--max-messages",
        min=1,
        help="Stop after this many messages (default without --forever/--until-empty: 1).",
        rich_help_panel=_WORKER,
    ),
]
WorkerIdOpt = Annotated[
    str | None,
    typer.Option(
        "--worker-id",
        help="Recorded on leased messages as leased_by (default host:pid).",
        rich_help_panel=_WORKER,
    ),
]
ConcurrencyOpt = Annotated[
    int,
    typer.Option(
        "--concurrency", min=1, help="Messages processed at once.", rich_help_panel=_WORKER
    ),
]
LeaseTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--lease-timeout",
        min=0.001,
        help="Seconds a lease lasts; a heartbeat extends it while the handler runs.",
        rich_help_panel=_WORKER,
    ),
]
ReleaseDelayOpt = Annotated[
    float,
    typer.Option(
        "--release-delay",
        min=0,
        help="With --no-dead-letter: seconds before a failed message is delivered again.",
        rich_help_panel=_WORKER,
    ),
]
NoDeadLetterOpt = Annotated[
    bool,
    typer.Option(
        "--no-dead-letter",
        help="When retries are exhausted, release the message instead of dead-lettering it.",
        rich_help_panel=_WORKER,
    ),
]
CreateOpt = Annotated[
    bool,
    typer.Option(
        "--create",
        help="Create the queue store if it does not exist yet (a worker started before "
        "the first message); without it a missing store is exit 7.",
        rich_help_panel=_WORKER,
    ),
]


def process(
    queue: QueueArg,
    handler: Annotated[
        str,
        typer.Argument(
            metavar="MODULE:FUNCTION", help="Importable handler; receives the message value."
        ),
    ],
    max_tries: MaxTriesOpt = 3,
    retry_wait: RetryWaitOpt = 0.0,
    forever: ForeverOpt = False,
    until_empty: UntilEmptyOpt = False,
    block: BlockOpt = False,
    max_messages: MaxMessagesOpt = None,
    worker_id: WorkerIdOpt = None,
    concurrency: ConcurrencyOpt = 1,
    lease_timeout: LeaseTimeoutOpt = 30.0,
    release_delay: ReleaseDelayOpt = 0.0,
    no_dead_letter: NoDeadLetterOpt = False,
    create: CreateOpt = False,
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    retry_store: RetryStoreOpt = None,
    retry_store_path: RetryStorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Process messages with a Python handler under persistent retry.

    Success acks the message; a failure is retried up to --max-tries (the count
    survives restarts), then the message is dead-lettered (or released with
    --no-dead-letter). Prints one line per message, then a summary.
    """
    options = WorkerOptions(
        max_tries=max_tries,
        retry_wait=retry_wait,
        forever=forever,
        until_empty=until_empty,
        block=block,
        max_messages=max_messages,
        worker_id=worker_id,
        concurrency=concurrency,
        lease_timeout=lease_timeout,
        release_delay=release_delay,
        dead_letter=not no_dead_letter,
        create=create,
    )
    run_worker(
        queue,
        import_handler(handler),
        options,
        store=store,
        store_path=store_path,
        retry_store=retry_store,
        retry_store_path=retry_store_path,
        fmt=fmt,
    )


def exec_(
    queue: QueueArg,
    command: Annotated[
        list[str],
        typer.Argument(metavar="COMMAND", help="The command and its arguments, after '--'."),
    ],
    max_tries: MaxTriesOpt = 3,
    retry_wait: RetryWaitOpt = 0.0,
    forever: ForeverOpt = False,
    until_empty: UntilEmptyOpt = False,
    block: BlockOpt = False,
    max_messages: MaxMessagesOpt = None,
    worker_id: WorkerIdOpt = None,
    concurrency: ConcurrencyOpt = 1,
    lease_timeout: LeaseTimeoutOpt = 30.0,
    release_delay: ReleaseDelayOpt = 0.0,
    no_dead_letter: NoDeadLetterOpt = False,
    create: CreateOpt = False,
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    retry_store: RetryStoreOpt = None,
    retry_store_path: RetryStorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Process messages with an external command: the value arrives on its stdin as JSON.

    Exit status 0 acks the message; any other status is a failure that follows
    the same retry, release and dead-letter rules as process, with the command,
    its exit status and the end of its stdout/stderr recorded as last_error.
    """
    options = WorkerOptions(
        max_tries=max_tries,
        retry_wait=retry_wait,
        forever=forever,
        until_empty=until_empty,
        block=block,
        max_messages=max_messages,
        worker_id=worker_id,
        concurrency=concurrency,
        lease_timeout=lease_timeout,
        release_delay=release_delay,
        dead_letter=not no_dead_letter,
        create=create,
    )
    run_worker(
        queue,
        CommandHandler(command),
        options,
        store=store,
        store_path=store_path,
        retry_store=retry_store,
        retry_store_path=retry_store_path,
        fmt=fmt,
    )


def register(app: typer.Typer) -> None:
    """Add ``process`` and ``exec`` to the ``queue`` group."""
    app.command("process")(process)
    app.command("exec")(exec_)
