"""Options shared by many commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

from localqueue.cli.output import Format

__all__ = [
    "FormatOpt",
    "IntervalOpt",
    "QueueArg",
    "RetryStoreOpt",
    "RetryStorePathOpt",
    "StoreOpt",
    "StorePathOpt",
]

_STORES = "Store"

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        help="Queue store URL (sqlite:///jobs.db, lmdb:///dir, memory://, ...). "
        "Default: the settings file, then ./localqueue_queue.sqlite3.",
        rich_help_panel=_STORES,
    ),
]
StorePathOpt = Annotated[
    str | None,
    typer.Option(
        "--store-path",
        metavar="PATH",
        help="SQLite queue file; shorthand for --store sqlite:///PATH.",
        rich_help_panel=_STORES,
    ),
]
RetryStoreOpt = Annotated[
    str | None,
    typer.Option(
        "--retry-store",
        metavar="URL",
        help="Attempt store URL for persistent retry state (used by process and exec). "
        "Default: the settings file, then ./localqueue_retries.sqlite3.",
        rich_help_panel=_STORES,
    ),
]
RetryStorePathOpt = Annotated[
    str | None,
    typer.Option(
        "--retry-store-path",
        metavar="PATH",
        help="SQLite attempt-store file; shorthand for --retry-store sqlite:///PATH.",
        rich_help_panel=_STORES,
    ),
]
FormatOpt = Annotated[
    Format,
    typer.Option(
        "--format",
        "-f",
        help="json: one object per line (default); table: Rich tables for people.",
        case_sensitive=False,
    ),
]
QueueArg = Annotated[str, typer.Argument(metavar="QUEUE", help="The queue's name.")]
IntervalOpt = Annotated[
    float,
    typer.Option("--interval", min=0.05, help="Seconds between updates with --watch."),
]
