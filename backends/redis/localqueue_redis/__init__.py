"""Redis backend for localqueue: ``redis://`` and ``rediss://`` store URLs.

Installing this distribution registers both schemes through the
``localqueue.backends`` entry point, so any localqueue API takes them::

    from localqueue import PersistentQueue

    queue = PersistentQueue("emails", store="redis://localhost:6379/0?prefix=myapp")
"""

from __future__ import annotations

from localqueue_redis.store import (
    OPTIONS,
    RedisAttemptStore,
    RedisBackend,
    RedisQueueStore,
    backend,
)

__all__ = ["OPTIONS", "RedisAttemptStore", "RedisBackend", "RedisQueueStore", "backend"]

__version__ = "0.1.0"
