"""The long-running worker's former module, kept so that existing imports keep working.

:class:`~localqueue.worker.Worker` and its helpers now live in
:mod:`localqueue.worker`, next to the single-call decorators; this module
re-exports them unchanged.
"""

from __future__ import annotations

from localqueue.worker import (
    BACKOFF_CAP,
    BACKOFF_FIRST,
    Worker,
    WorkerStats,
    backoff_delay,
    default_worker_id,
)

__all__ = [
    "BACKOFF_CAP",
    "BACKOFF_FIRST",
    "Worker",
    "WorkerStats",
    "backoff_delay",
    "default_worker_id",
]
