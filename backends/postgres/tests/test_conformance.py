"""The PostgreSQL stores against localqueue's shipped conformance suite."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from localqueue.testing import AttemptStoreSuite, QueueStoreSuite

pytestmark = pytest.mark.services


class TestPostgresQueueStore(QueueStoreSuite):
    # Leases and delays run on the server's clock, so time-based tests sleep for real.
    real_time_unit = 0.4

    @pytest.fixture
    def store_url(self, schema_url: Callable[..., str]) -> str:
        return schema_url()


class TestPostgresAttemptStore(AttemptStoreSuite):
    @pytest.fixture
    def store_url(self, schema_url: Callable[..., str]) -> str:
        return schema_url()
