"""PostgreSQL backend for localqueue.

Install it next to localqueue and choose it by URL::

    from localqueue import PersistentQueue

    queue = PersistentQueue("emails", store="postgresql://app@db.example/jobs?schema=queues")

The ``postgresql`` and ``postgres`` schemes are registered through the
``localqueue.backends`` entry point, so nothing needs importing by hand.
"""

from __future__ import annotations

from localqueue_postgres._config import OPTIONS
from localqueue_postgres._schema import SCHEMA_VERSION
from localqueue_postgres.store import PostgresAttemptStore, PostgresQueueStore, backend

__all__ = [
    "OPTIONS",
    "SCHEMA_VERSION",
    "PostgresAttemptStore",
    "PostgresQueueStore",
    "backend",
]

__version__ = "0.1.0"
