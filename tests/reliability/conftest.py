"""Store URLs for the campaigns: embedded engines in ``tmp_path``, servers under a fresh
schema or key prefix that is removed afterwards (skipped, or failed in CI, when a server
does not answer)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def campaign_url(tmp_path: Path, make_server_url: Callable[[str], str]) -> Callable[[str], str]:
    """``campaign_url(engine)``: a fresh URL of sqlite, lmdb, postgresql or redis.

    Server schemas and keys made are removed after the test (``make_server_url``).
    """

    def make(engine: str) -> str:
        if engine == "sqlite":
            return f"sqlite:///{tmp_path}/campaign.sqlite3?durability=normal&timeout=60"
        if engine == "lmdb":
            return f"lmdb:///{tmp_path}/campaign-lmdb"
        return make_server_url(engine)

    return make
