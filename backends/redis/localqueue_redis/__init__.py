"""Redis backend for localqueue: ``redis://`` and ``rediss://`` store URLs.

Installing this distribution registers both schemes through the
``localqueue.backends`` entry point, so any localqueue API takes them::

    from localqueue import PersistentQueue

    queue = PersistentQueue("emails", store="redis://localhost:6379/0?prefix=myapp")
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from localqueue.registry import ClassBackend
from localqueue.urls import StoreURL
from localqueue_redis._client import OPTIONS, RedisConfig
from localqueue_redis.store import RedisAttemptStore, RedisQueueStore

__all__ = ["OPTIONS", "RedisAttemptStore", "RedisBackend", "RedisQueueStore", "backend"]

__version__ = "0.1.0"


@dataclass(frozen=True)
class RedisBackend(ClassBackend):
    """The Redis backend: namespaces are key prefixes (``NamespacedBackend``)."""

    def namespace(self, url: StoreURL, name: str) -> StoreURL:
        """``url`` with ``prefix=<its prefix>-<name>``, a prefix nobody else uses."""
        prefix = RedisConfig.from_url(url).prefix
        suffix = f"-{name}"
        return replace(url, query={**url.query, "prefix": prefix[: 64 - len(suffix)] + suffix})

    def drop_namespace(self, url: StoreURL) -> None:
        """Delete every key under the URL's prefix."""
        config = RedisConfig.from_url(url)
        client = config.client()
        try:
            # Prefixes hold no ':', so this pattern matches this prefix's keys only.
            keys = list(client.scan_iter(match=f"{config.prefix}:*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
        finally:
            client.close()
            # The client was given its pool, so close() leaves the pool's sockets open.
            client.connection_pool.disconnect()


backend = RedisBackend(RedisQueueStore, RedisAttemptStore)
"""What the ``redis`` and ``rediss`` schemes resolve to."""
