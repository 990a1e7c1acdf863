"""The tutorial store against the shipped conformance suite.

An installed package would declare its entry point and need no ``register``;
this example is not installed, so it registers its scheme for this process.
"""

from pathlib import Path

import pytest

from localqueue.registry import register
from localqueue.testing import AttemptStoreSuite, QueueStoreSuite

# The same "module:attribute" text an entry point would hold, imported on first use.
register("tutorial", "tutorial_store:backend", replace=True)


class TestTutorialQueueStore(QueueStoreSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"tutorial:///{tmp_path}/queue.db"


class TestTutorialAttemptStore(AttemptStoreSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"tutorial:///{tmp_path}/attempts.db"
