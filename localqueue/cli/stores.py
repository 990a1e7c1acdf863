"""Opening the stores a command works on, from its flags and the settings file.

Stores are opened through :mod:`localqueue.registry` only, so every installed
backend works and the CLI never depends on a concrete engine. Only commands
that add messages create a store: the others pass ``create=False``, so a
mistyped path is reported (exit 7) instead of being read as an empty queue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from localqueue.cli.config import StoreChoice, choose_retry_store, choose_store
from localqueue.cli.errors import CliError, exit_code_for
from localqueue.errors import ConfigurationError, StoreNotFoundError
from localqueue.protocols import AttemptStore, QueueStore
from localqueue.queue import PersistentQueue
from localqueue.registry import (
    open_attempt_store,
    open_queue_store,
    url_max_deliveries,
    url_serializer,
)
from localqueue.validation import check_queue_name

__all__ = ["open_chosen", "open_retry_store", "opened_queue", "opened_store"]

T = TypeVar("T")


def open_chosen(choice: StoreChoice, opener: Callable[..., T], *, create: bool) -> T:
    """``opener(choice.url, create=create)``, with errors saying where the URL came from.

    A URL from the settings file that does not work is reported as such, naming
    the file, so the user knows to fix the settings rather than the command.
    """
    try:
        return opener(choice.url, create=create)
    except StoreNotFoundError as exc:
        raise CliError(
            f"{exc} (store from {choice.origin}); check the path: only 'queue add', "
            "or 'process'/'exec' with --create, create a store",
            exit_code_for(exc),
        ) from exc
    except ConfigurationError as exc:
        if not choice.from_settings:
            raise
        raise CliError(f"{choice.origin}: {exc}", exit_code_for(exc)) from exc


@contextmanager
def opened_store(
    store: str | None, store_path: str | None, *, create: bool = False
) -> Iterator[QueueStore]:
    """The queue store named by ``--store`` / ``--store-path`` / settings, closed afterwards.

    Args:
        create: Create a file-backed store that does not exist yet (only commands
            that add messages do); otherwise its absence is a ``StoreNotFoundError``.
    """
    handle = open_chosen(choose_store(store, store_path), open_queue_store, create=create)
    try:
        yield handle
    finally:
        handle.close()


@contextmanager
def opened_queue(
    name: str,
    store: str | None,
    store_path: str | None,
    *,
    lease_timeout: float = 30.0,
    create: bool = False,
) -> Iterator[PersistentQueue]:
    """A :class:`PersistentQueue` over the chosen store, which is closed afterwards."""
    # A bad name is a usage error whether or not the store exists.
    check_queue_name(name)
    choice = choose_store(store, store_path)
    handle = open_chosen(choice, open_queue_store, create=create)
    try:
        # ?serializer= and ?max_deliveries= are the queue's (already checked by the open).
        yield PersistentQueue(
            name,
            handle,
            lease_timeout=lease_timeout,
            serializer=url_serializer(choice.url),
            max_deliveries=url_max_deliveries(choice.url),
        )
    finally:
        handle.close()


def open_retry_store(url: str | None, path: str | None) -> AttemptStore:
    """The attempt store ``process`` and ``exec`` keep retry state in (created when absent)."""
    return open_chosen(choose_retry_store(url, path), open_attempt_store, create=True)
