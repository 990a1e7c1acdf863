"""Fixtures for the Redis backend's tests: a reachable server and a private key prefix.

The server is ``LOCALQUEUE_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).
When it does not answer the tests skip, or fail when ``LOCALQUEUE_REQUIRE_SERVICES=1``.
Every test gets its own random prefix, and every key under it is deleted afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from localqueue.testing.plugin import skip_or_fail_unreachable
from localqueue.urls import redact

SERVER_URL = os.environ.get("LOCALQUEUE_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """The URL of a Redis server that answers (no query string)."""
    client = redis.Redis.from_url(SERVER_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        skip_or_fail_unreachable(f"Redis at {redact(SERVER_URL)} is unreachable: {exc}")
    finally:
        client.close()
    return SERVER_URL


@pytest.fixture
def admin(redis_server_url: str) -> Iterator[redis.Redis]:
    """A plain client on the test server, for looking under the store."""
    client = redis.Redis.from_url(redis_server_url)
    yield client
    client.close()


@pytest.fixture
def redis_prefix(admin: redis.Redis) -> Iterator[str]:
    """A fresh key prefix; every key under it is deleted after the test."""
    prefix = f"lqtest-{uuid.uuid4().hex[:12]}"
    yield prefix
    keys = list(admin.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        admin.delete(*keys)


@pytest.fixture
def redis_url(redis_server_url: str, redis_prefix: str) -> str:
    """A store URL on the test server under the test's own prefix."""
    return f"{redis_server_url}?prefix={redis_prefix}"
