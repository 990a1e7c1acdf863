"""``localqueue check`` and ``localqueue repair``: audit a store's files, mend what is found.

Both print one JSON line per problem or repair (``--format table``: one table),
then a summary line, and exit :data:`~localqueue.cli.exit_codes.DAMAGED` while
problems remain, so a cron job or a health check can branch on the status.
"""

from __future__ import annotations

from localqueue.cli import exit_codes
from localqueue.cli.config import resolve_store
from localqueue.cli.errors import CliError
from localqueue.cli.options import FormatOpt, StoreOpt, StorePathOpt
from localqueue.cli.output import Format, Printer
from localqueue.cli.stores import opened_store
from localqueue.protocols import IntegrityCheckable, QueueStore, Repairable
from localqueue.urls import redact

__all__ = ["check", "repair"]

COLUMNS = ("kind", "detail")


def _audit(handle: QueueStore) -> list[str]:
    if not isinstance(handle, IntegrityCheckable):
        raise CliError(
            f"this store ({type(handle).__name__}) cannot check its own integrity",
            exit_codes.USAGE_ERROR,
        )
    return handle.check_integrity()


def _report(printer: Printer, url: str, repairs: list[str] | None, problems: list[str]) -> None:
    rows = [{"kind": "repair", "detail": line} for line in repairs or []]
    rows += [{"kind": "problem", "detail": line} for line in problems]
    printer.rows(rows, COLUMNS, title="integrity")
    summary: dict[str, object] = {"store": url, "healthy": not problems, "problems": len(problems)}
    if repairs is not None:
        summary["repairs"] = len(repairs)
    printer.record(summary, title="summary")
    if problems:
        raise CliError(f"{len(problems)} problem(s) found in {url}", exit_codes.DAMAGED)


def check(
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Check a store's files and indexes without changing anything; exit 6 on damage."""
    url = redact(resolve_store(store, store_path))
    with opened_store(store, store_path) as handle:
        problems = _audit(handle)
    _report(Printer(fmt), url, None, problems)


def repair(
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """Rebuild indexes and move unreadable records aside as dead letters; then check again.

    Intact messages are not changed; a damaged one becomes a dead letter whose
    last error says what was wrong. Exits 6 if problems remain after the repair.
    """
    url = redact(resolve_store(store, store_path))
    with opened_store(store, store_path) as handle:
        if not isinstance(handle, Repairable):
            raise CliError(
                f"this store ({type(handle).__name__}) cannot repair itself",
                exit_codes.USAGE_ERROR,
            )
        repaired = handle.repair()
        remaining = _audit(handle)
    _report(Printer(fmt), url, repaired, remaining)
