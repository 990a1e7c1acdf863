"""``localqueue migrate PATH``: convert a SQLite file written by localqueue 0.2.0 in place.

It prints one JSON line per migrated queue (``--format table``: one table) and
a summary line with the backup copy's path and the retry records moved. A file
holding nothing from 0.2.0 is left alone; its summary says so (exit 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from localqueue import migrate_legacy
from localqueue.cli.options import FormatOpt
from localqueue.cli.output import Format, Printer

__all__ = ["migrate"]

COLUMNS = ("queue", "ready", "delayed", "inflight", "dead")


def migrate(
    path: Annotated[
        Path, typer.Argument(help="The SQLite queue or retry file written by localqueue 0.2.0.")
    ],
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Convert a localqueue 0.2.0 SQLite file (queue or retry store) in place.

    The file is copied to PATH.bak-0.2.0 first (refused if that exists), then
    every message and retry record is converted in one transaction: all or nothing.
    """
    report = migrate_legacy(path)
    printer = Printer(fmt)
    if report.messages:
        rows = [{"queue": name, **counts} for name, counts in report.messages.items()]
        printer.rows(rows, COLUMNS, title="migrated messages")
    summary: dict[str, object] = {
        "path": report.path,
        "migrated": report.migrated,
        "backup": report.backup,
        "messages": sum(sum(counts.values()) for counts in report.messages.values()),
        "retry_records": report.retry_records,
        "exhausted": report.exhausted,
    }
    if not report.migrated:
        summary["detail"] = "nothing to migrate: no localqueue 0.2.0 data in this file"
    printer.record(summary, title="summary")
