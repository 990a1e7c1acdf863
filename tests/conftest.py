"""Fixtures shared by the core's tests: one parametrised store fixture for the layers above
the protocols, so every behaviour runs over every embedded engine."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest

from localqueue import PersistentQueue, StoreError
from localqueue.errors import ConfigurationError
from localqueue.protocols import AttemptStore, QueueStore
from localqueue.registry import get_backend, open_attempt_store, open_queue_store
from localqueue.testing.campaigns import small_filesystem
from localqueue.testing.plugin import skip_or_fail_unreachable

# The engines the layers above the protocols are tested over.
ENGINES = ["memory", "sqlite", "lmdb"]


def engine_url(engine: str, tmp_path: Path, name: str = "queue") -> str:
    """A fresh store URL of ``engine`` inside ``tmp_path`` (``name`` tells stores apart)."""
    if engine == "memory":
        return "memory://"
    if engine == "sqlite":
        return f"sqlite:///{tmp_path}/{name}.sqlite3"
    if engine == "lmdb":
        return f"lmdb:///{tmp_path}/{name}-lmdb"
    raise ValueError(engine)


@dataclass(frozen=True)
class Engine:
    """One embedded engine: its name and the URLs of a queue store and an attempt store."""

    name: str
    queue_url: str
    attempts_url: str


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    """Each embedded engine in turn, with fresh store URLs."""
    return Engine(
        request.param,
        engine_url(request.param, tmp_path),
        engine_url(request.param, tmp_path, "retries"),
    )


@pytest.fixture
def store_url(engine: Engine) -> str:
    """A fresh queue store URL for each embedded engine in turn."""
    return engine.queue_url


@pytest.fixture
def queue_store(store_url: str) -> Iterator[QueueStore]:
    """An open queue store for each embedded engine in turn."""
    store = open_queue_store(store_url)
    yield store
    store.close()


@pytest.fixture
def attempt_store(engine: Engine) -> Iterator[AttemptStore]:
    """An open attempt store for each embedded engine in turn."""
    store = open_attempt_store(engine.attempts_url)
    yield store
    store.close()


@pytest.fixture
def jobs(queue_store: QueueStore) -> PersistentQueue:
    """A queue named ``jobs`` over each embedded engine in turn."""
    return PersistentQueue("jobs", queue_store, lease_timeout=30.0)


POSTGRES = os.environ.get("LOCALQUEUE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("LOCALQUEUE_REDIS_URL", "redis://127.0.0.1:6379/0")
SERVERS = ["postgresql", "redis"]


def _drop_server_namespace(scheme: str, tag: str) -> None:
    if scheme == "postgresql":
        import psycopg
        from psycopg import sql

        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(tag)))
    else:
        import redis

        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(match=f"{tag}*"))
        if keys:
            client.delete(*keys)
        client.close()


def open_server_url(scheme: str) -> tuple[str, str]:
    """A fresh store URL (own schema or key prefix) on a server backend, and its tag.

    Skips when the backend or its server is missing (fails under
    ``LOCALQUEUE_REQUIRE_SERVICES=1``, as in CI).
    """
    try:
        get_backend(scheme)
    except (ImportError, ConfigurationError) as exc:
        skip_or_fail_unreachable(f"the {scheme} backend is not installed: {exc}")
    tag = f"lq_core_{uuid.uuid4().hex[:10]}"
    url = f"{POSTGRES}?schema={tag}" if scheme == "postgresql" else f"{REDIS}?prefix={tag}"
    try:
        open_queue_store(url).close()
    except StoreError as exc:
        skip_or_fail_unreachable(f"the {scheme} server does not answer: {exc}")
    return url, tag


@pytest.fixture
def make_server_url() -> Iterator[Callable[[str], str]]:
    """``make_server_url(scheme)``: a fresh URL on a server backend; all dropped afterwards."""
    made: list[tuple[str, str]] = []

    def make(scheme: str) -> str:
        url, tag = open_server_url(scheme)
        made.append((scheme, tag))
        return url

    yield make
    for scheme, tag in made:
        _drop_server_namespace(scheme, tag)


@pytest.fixture(params=SERVERS)
def server_url(request: pytest.FixtureRequest, make_server_url: Callable[[str], str]) -> str:
    """A fresh store URL on each server backend, its schema or keys dropped afterwards."""
    return make_server_url(request.param)


@pytest.fixture(params=[*ENGINES, *SERVERS])
def any_store_url(
    request: pytest.FixtureRequest, tmp_path: Path, make_server_url: Callable[[str], str]
) -> str:
    """A fresh store URL on each of the five stores in turn (servers cleaned up afterwards)."""
    if request.param in ENGINES:
        return engine_url(request.param, tmp_path)
    return make_server_url(request.param)


@contextlib.contextmanager
def _mounted(size: str) -> Iterator[Path]:
    with contextlib.ExitStack() as stack:
        try:
            disk = stack.enter_context(small_filesystem(size))
        except OSError as exc:
            skip_or_fail_unreachable(f"cannot mount a tmpfs here: {exc}")
        yield disk


@pytest.fixture
def small_disk() -> Callable[[str], AbstractContextManager[Path]]:
    """``with small_disk("4m") as disk:`` mounts a real, size-limited tmpfs.

    Needs root: skips without it, and fails when ``LOCALQUEUE_REQUIRE_SERVICES``
    is set, as CI (which runs as root) sets it.
    """
    return _mounted
