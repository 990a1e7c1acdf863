"""The localqueue store configurations the benchmarks run, and how to reach them.

Shared by the pytest-benchmark suites (``conftest.py``) and ``compare.py``.
Every target names its durability explicitly, so a result always says what a
``put`` survives when it returns.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "POSTGRES_DSN",
    "REDIS_URL",
    "TARGETS",
    "StoreTarget",
    "payload_value",
    "unavailable_reason",
]

POSTGRES_DSN = os.environ.get(
    "LOCALQUEUE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
"""Server the ``postgresql`` target uses; each run gets its own schema, dropped afterwards."""
REDIS_URL = os.environ.get("LOCALQUEUE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
"""Server the ``redis`` target uses; each run gets its own key prefix, deleted afterwards."""

# What each durability setting survives, printed next to every result.
DURABILITY_NOTES: dict[tuple[str, str], str] = {
    ("memory", "none"): "nothing (process memory)",
    ("sqlite", "full"): "power loss (fsync every commit)",
    ("sqlite", "normal"): "process crash; power loss may drop the last commits (WAL)",
    ("sqlite", "off"): "process crash only (no fsync)",
    ("lmdb", "sync"): "power loss (fsync every commit)",
    ("lmdb", "nosync"): "process crash; power loss may drop the last commits",
    ("postgresql", "server"): "the server's synchronous_commit setting",
    ("redis", "server"): "the server's appendonly/appendfsync setting",
}


@dataclass(frozen=True)
class StoreTarget:
    """One localqueue store configuration: an engine at one durability setting."""

    scheme: str
    durability: str

    @property
    def label(self) -> str:
        """Short name used in test ids and tables, e.g. ``sqlite-normal``."""
        return (
            self.scheme
            if self.durability in {"none", "server"}
            else (f"{self.scheme}-{self.durability}")
        )

    @property
    def survives(self) -> str:
        """What a returned ``put`` survives at this setting."""
        return DURABILITY_NOTES[(self.scheme, self.durability)]

    def url(self, workdir: Path, serializer: str, tag: str | None = None) -> str:
        """The store URL for a fresh store under ``workdir`` (or a fresh server namespace).

        Args:
            workdir: A directory owned by the caller (the file engines put their data there).
            serializer: ``msgpack`` or ``json``.
            tag: Unique suffix of the server namespace; a random one when ``None``.
        """
        tag = tag or uuid.uuid4().hex[:12]
        if self.scheme == "memory":
            return f"memory://?serializer={serializer}"
        if self.scheme == "sqlite":
            path = workdir / f"queue-{tag}.sqlite3"
            return f"sqlite:///{path}?serializer={serializer}&durability={self.durability}"
        if self.scheme == "lmdb":
            path = workdir / f"queue-{tag}.lmdb"
            return f"lmdb:///{path}?serializer={serializer}&durability={self.durability}"
        if self.scheme == "postgresql":
            return f"{POSTGRES_DSN}?schema=bench_{tag}&serializer={serializer}"
        if self.scheme == "redis":
            return f"{REDIS_URL}?prefix=bench_{tag}&serializer={serializer}"
        raise ValueError(f"unknown benchmark scheme {self.scheme!r}")

    def cleanup(self, url: str) -> None:
        """Drop the server namespace a URL from :meth:`url` created (files are the caller's)."""
        if self.scheme == "postgresql":
            _drop_postgres_schema(url)
        elif self.scheme == "redis":
            _delete_redis_prefix(url)

    def extra_info(self) -> dict[str, Any]:
        """What a benchmark records about this target in ``benchmark.extra_info``."""
        return {
            "store": self.scheme,
            "durability": self.durability,
            "survives": self.survives,
        }


TARGETS: tuple[StoreTarget, ...] = (
    StoreTarget("memory", "none"),
    StoreTarget("sqlite", "normal"),
    StoreTarget("sqlite", "full"),
    StoreTarget("lmdb", "sync"),
    StoreTarget("lmdb", "nosync"),
    StoreTarget("postgresql", "server"),
    StoreTarget("redis", "server"),
)
"""Every configuration benchmarked; unavailable ones are skipped with a reason."""


def payload_value(size: int) -> str:
    """A value whose serialised form is about ``size`` bytes with msgpack or JSON."""
    return "x" * max(size - 3, 1)


def unavailable_reason(target: StoreTarget) -> str | None:
    """Why ``target`` cannot run here (backend or server missing); ``None`` when it can."""
    from localqueue.errors import LocalQueueError
    from localqueue.registry import get_backend

    try:
        get_backend(target.scheme)
    except (LocalQueueError, ImportError) as exc:
        return f"{target.scheme} backend not installed ({type(exc).__name__}: {exc})"
    if target.scheme == "postgresql":
        return _postgres_down()
    if target.scheme == "redis":
        return _redis_down()
    return None


def _postgres_down() -> str | None:
    try:
        import psycopg

        psycopg.connect(POSTGRES_DSN, connect_timeout=2).close()
    except Exception as exc:
        return f"no PostgreSQL server answers at {POSTGRES_DSN} ({exc})"
    return None


def _redis_down() -> str | None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"no Redis server answers at {REDIS_URL} ({exc})"
    return None


def _query_value(url: str, key: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(url).query)[key][0]


def _drop_postgres_schema(url: str) -> None:
    import psycopg
    from psycopg import sql

    schema = _query_value(url, "schema")
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _delete_redis_prefix(url: str) -> None:
    import redis

    prefix = _query_value(url, "prefix")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        # The backend namespaces keys as "<prefix>:..." (a prefix may not contain ':').
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()
