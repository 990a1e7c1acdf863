"""``localqueue queues``: every queue of a store, with its counts."""

from __future__ import annotations

from localqueue.cli.options import (
    FormatOpt,
    RetryStoreOpt,
    RetryStorePathOpt,
    StoreOpt,
    StorePathOpt,
)
from localqueue.cli.output import Format, Printer
from localqueue.cli.stores import opened_store

__all__ = ["queues"]

COLUMNS = ("queue", "ready", "delayed", "inflight", "dead", "total")


def queues(
    store: StoreOpt = None,
    store_path: StorePathOpt = None,
    retry_store: RetryStoreOpt = None,
    retry_store_path: RetryStorePathOpt = None,
    fmt: FormatOpt = Format.JSON,
) -> None:
    """List the queues holding messages in a store, with their counts."""
    with opened_store(store, store_path) as handle:
        rows = [{"queue": name, **handle.stats(name).as_dict()} for name in handle.queues()]
    Printer(fmt).rows(rows, COLUMNS, title="queues")
