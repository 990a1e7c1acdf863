"""Store URLs for the campaigns: embedded engines in ``tmp_path``, servers under a fresh
schema or key prefix that is removed afterwards (skipped, or failed in CI, when a server
does not answer)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from localqueue.errors import ConfigurationError, StoreError
from localqueue.registry import get_backend, open_queue_store
from localqueue.testing.plugin import skip_or_fail_unreachable

POSTGRES = os.environ.get("LOCALQUEUE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("LOCALQUEUE_REDIS_URL", "redis://127.0.0.1:6379/0")


def _drop(scheme: str, tag: str) -> None:
    if scheme == "postgresql":
        import psycopg
        from psycopg import sql

        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(tag)))
    else:
        import redis

        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(match=f"{tag}:*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def campaign_url(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``campaign_url(engine)``: a fresh URL of sqlite, lmdb, postgresql or redis.

    Server schemas and keys made are removed after the test.
    """
    made: list[tuple[str, str]] = []

    def make(engine: str) -> str:
        if engine == "sqlite":
            return f"sqlite:///{tmp_path}/campaign.sqlite3?durability=normal&timeout=60"
        if engine == "lmdb":
            return f"lmdb:///{tmp_path}/campaign-lmdb"
        try:
            get_backend(engine)
        except (ImportError, ConfigurationError) as exc:
            skip_or_fail_unreachable(f"the {engine} backend is not installed: {exc}")
        tag = f"lq_campaign_{uuid.uuid4().hex[:10]}"
        made.append((engine, tag))
        url = f"{POSTGRES}?schema={tag}" if engine == "postgresql" else f"{REDIS}?prefix={tag}"
        try:
            open_queue_store(url).close()
        except StoreError as exc:
            skip_or_fail_unreachable(f"the {engine} server does not answer: {exc}")
        return url

    yield make
    for scheme, tag in made:
        _drop(scheme, tag)
