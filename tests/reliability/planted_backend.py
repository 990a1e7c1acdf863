"""A deliberately broken backend for the campaign tests: SQLite whose leases last 1 ms
while the messages it returns claim the lease that was asked for, so a second consumer
gets a message whose first lease is, by the store's own word, still valid."""

from __future__ import annotations

import dataclasses
from typing import Any

from localqueue import Capability, QueueMessage
from localqueue.protocols import AttemptStore, Clock, QueueStore
from localqueue.registry import open_attempt_store, open_queue_store, register
from localqueue.urls import StoreURL

SCHEME = "lq-planted-short-lease"


class ShortLeaseStore:
    """Delegates to a real SQLite store, except that ``lease`` lies about its length."""

    def __init__(self, inner: QueueStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def lease(self, queue: str, *, lease_timeout: float, **kwargs: Any) -> list[QueueMessage]:
        """Lease for 1 ms, report ``leased_until`` as if for ``lease_timeout``."""
        leased = self._inner.lease(queue, lease_timeout=0.001, **kwargs)
        return [
            dataclasses.replace(m, leased_until=(m.leased_until or 0.0) + lease_timeout)
            for m in leased
        ]


class ShortLeaseBackend:
    """Opens ``lq-planted-short-lease:///path`` as a broken SQLite store at ``path``."""

    capabilities: frozenset[Capability] = frozenset()

    def open_queue_store(self, url: StoreURL, *, clock: Clock | None = None) -> QueueStore:
        """The broken queue store."""
        store: QueueStore = ShortLeaseStore(open_queue_store(f"sqlite:///{url.path}"))
        return store

    def open_attempt_store(self, url: StoreURL, *, clock: Clock | None = None) -> AttemptStore:
        """A plain SQLite attempt store."""
        return open_attempt_store(f"sqlite:///{url.path}")


def register_planted() -> None:
    """Register the broken scheme in this process (the campaigns' ``setup`` hook)."""
    register(SCHEME, ShortLeaseBackend(), replace=True)
