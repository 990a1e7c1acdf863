"""The one place psycopg's errors become localqueue's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors

from localqueue.errors import (
    LocalQueueError,
    StoreError,
    StoreLockedError,
)

__all__ = ["TRANSIENT", "translate_errors"]

TRANSIENT: tuple[type[Exception], ...] = (
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
)
"""Errors after which the statement was rolled back and may simply run again."""

_LOCKED: tuple[type[Exception], ...] = (
    *TRANSIENT,
    pg_errors.LockNotAvailable,
    pg_errors.QueryCanceled,  # statement_timeout, when an administrator sets one
)


@contextmanager
def translate_errors(
    where: str, locked: type[StoreLockedError], scrub: Callable[[str], str]
) -> Iterator[None]:
    """Re-raise psycopg and pool errors as localqueue errors, chained with ``from``.

    Args:
        where: The redacted URL, named in every message.
        locked: The ``*LockedError`` raised for lock and serialization timeouts.
        scrub: Removes the password from a driver message, should one appear there.
    """
    try:
        yield
    except LocalQueueError:
        raise
    except _LOCKED as exc:
        raise locked(f"{where}: gave up waiting for a lock: {scrub(str(exc))}") from exc
    except psycopg_pool.PoolTimeout as exc:
        raise StoreError(
            f"{where}: no connection available in time (server unreachable or pool exhausted)"
        ) from exc
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise StoreError(f"{where}: connection to PostgreSQL failed: {scrub(str(exc))}") from exc
    except psycopg.Error as exc:
        raise StoreError(f"{where}: PostgreSQL error: {scrub(str(exc))}") from exc
