"""psycopg's exceptions, grouped by what the stores do about them.

The rules that turn them into localqueue's errors are the store module's
(``_error_rules`` in ``localqueue_postgres.store``); the retry loop of
``localqueue_postgres._session`` reads :data:`TRANSIENT`.
"""

from __future__ import annotations

from psycopg import errors as pg_errors

__all__ = ["LOCKED", "TRANSIENT"]

TRANSIENT: tuple[type[Exception], ...] = (
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
)
"""Errors after which the statement was rolled back and may simply run again."""

LOCKED: tuple[type[Exception], ...] = (
    *TRANSIENT,
    pg_errors.LockNotAvailable,
    pg_errors.QueryCanceled,  # statement_timeout, when an administrator sets one
)
"""Errors reported as the store's ``*LockedError``: a lock waited for past its timeout."""
