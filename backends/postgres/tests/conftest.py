"""Fixtures for the PostgreSQL tests: a reachable server and a throw-away schema per test.

The server defaults to ``postgresql://postgres@127.0.0.1:5432/test``; set
``LOCALQUEUE_POSTGRES_URL`` to use another. When it does not answer, the tests
skip (or fail, with ``LOCALQUEUE_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from localqueue.testing.plugin import skip_or_fail_unreachable
from localqueue.urls import redact

BASE_URL = os.environ.get("LOCALQUEUE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def admin_connect() -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection to the test server, for setting up and cleaning up."""
    return psycopg.connect(BASE_URL, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The base URL of a server that answers; skips (or fails) when none does."""
    try:
        with admin_connect() as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        skip_or_fail_unreachable(f"PostgreSQL is unreachable at {redact(BASE_URL)}: {exc}")
    return BASE_URL


SchemaURL = Callable[..., str]
"""``schema_url(**options)``: the URL of a new, empty schema, with extra query options."""


@pytest.fixture
def schema_url(postgres_server: str) -> Iterator[SchemaURL]:
    """Makes URLs of fresh schemas; every schema made is dropped after the test."""
    made: list[str] = []

    def make(**options: str) -> str:
        schema = f"lq_test_{uuid.uuid4().hex[:12]}"
        made.append(schema)
        query = "&".join(f"{k}={v}" for k, v in {"schema": schema, **options}.items())
        return f"{postgres_server}{'&' if '?' in postgres_server else '?'}{query}"

    yield make
    with admin_connect() as conn:
        for schema in made:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
