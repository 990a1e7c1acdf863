"""Runs the whole conformance suite against ``--localqueue-url``.

``pytest --pyargs localqueue.testing.test_url --localqueue-url URL``
"""

from localqueue.testing import AttemptStoreSuite, QueueStoreSuite


class TestQueueStoreAtURL(QueueStoreSuite):
    """The queue-store suite; ``store_url`` comes from ``--localqueue-url``."""


class TestAttemptStoreAtURL(AttemptStoreSuite):
    """The attempt-store suite; ``store_url`` comes from ``--localqueue-url``."""
