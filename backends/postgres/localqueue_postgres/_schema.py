"""The tables, created on first use, and the recorded schema version.

Every table lives in the configured schema and every name reaches SQL through
:class:`psycopg.sql.Identifier`, never string interpolation. Times are Unix
seconds (``double precision``) taken from the server's clock, so hosts whose
clocks disagree still agree on when a delay or a lease ends.
"""

from __future__ import annotations

import hashlib

import psycopg
from psycopg import sql

from localqueue.errors import SchemaVersionError, StoreCorruptedError

__all__ = ["DAMAGE_INDEX", "SCHEMA_VERSION", "Tables", "ensure_schema", "has_damage_index"]

SCHEMA_VERSION = 1
"""The newest layout this release writes and reads."""

NOW = sql.SQL("extract(epoch from now())::float8")
"""The server's time for the current transaction, in Unix seconds."""


DAMAGE_INDEX = sql.SQL(
    "CREATE INDEX IF NOT EXISTS lq_messages_damaged ON {messages} (queue) "
    "WHERE state NOT IN (0, 1, 2)"
)
"""Rows whose state localqueue never writes (a bad edit): empty, so leases look at no cost."""


class Tables:
    """Quoted names of one schema's tables and its notification channel."""

    def __init__(self, schema: str) -> None:
        self.schema_name = schema
        self.schema = sql.Identifier(schema)
        self.meta = sql.Identifier(schema, "lq_meta")
        self.messages = sql.Identifier(schema, "lq_messages")
        self.attempts = sql.Identifier(schema, "lq_attempts")
        self.damage_index = sql.Identifier(schema, "lq_messages_damaged")
        # One channel per schema (so two applications on one database do not
        # wake each other); hashed because a channel name is at most 63 bytes.
        digest = hashlib.sha1(schema.encode(), usedforsecurity=False).hexdigest()[:16]
        self.channel = f"localqueue_{digest}"
        self.lock_key = int(digest, 16) & 0x7FFF_FFFF_FFFF_FFFF


def _ddl(t: Tables) -> list[sql.Composed]:
    return [
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {messages} (
                id text PRIMARY KEY,
                seq bigint GENERATED ALWAYS AS IDENTITY,
                queue text NOT NULL,
                state smallint NOT NULL DEFAULT 0,
                payload bytea NOT NULL,
                codec text NOT NULL,
                attempts integer NOT NULL DEFAULT 0,
                priority integer NOT NULL DEFAULT 0,
                created_at double precision NOT NULL,
                available_at double precision NOT NULL,
                leased_by text,
                lease_token text,
                last_error text,
                failed_at double precision,
                dedup_key text,
                UNIQUE (queue, dedup_key)
            )"""
        ).format(messages=t.messages),
        # The lease order; dead letters (state 2) never take part in it.
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS lq_messages_delivery ON {messages} "
            "(queue, priority DESC, available_at, seq) WHERE state < 2"
        ).format(messages=t.messages),
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS lq_messages_dead ON {messages} "
            "(queue, failed_at, seq) WHERE state = 2"
        ).format(messages=t.messages),
        DAMAGE_INDEX.format(messages=t.messages),
        sql.SQL(
            """CREATE TABLE IF NOT EXISTS {attempts} (
                key text PRIMARY KEY,
                attempts integer NOT NULL,
                first_attempt_at double precision NOT NULL,
                last_attempt_at double precision NOT NULL,
                exhausted boolean NOT NULL DEFAULT false,
                last_error text
            )"""
        ).format(attempts=t.attempts),
    ]


def has_damage_index(conn: psycopg.Connection[tuple[object, ...]], t: Tables) -> bool:
    """Whether the schema has :data:`DAMAGE_INDEX` (schemas made before it was added do not)."""
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", [t.damage_index.as_string(conn)]
    ).fetchone()
    return bool(row and row[0])


def _read_version(conn: psycopg.Connection[tuple[object, ...]], t: Tables) -> int | None:
    exists = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL",
        [t.meta.as_string(conn)],
    ).fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute(
        sql.SQL("SELECT value FROM {meta} WHERE key = 'schema_version'").format(meta=t.meta)
    ).fetchone()
    return None if row is None else _parse_version(t, row[0])


def _parse_version(t: Tables, value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise StoreCorruptedError(
            f"schema {t.schema_name!r}: unreadable localqueue schema version {value!r}"
        ) from None


def _check(found: int) -> None:
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(found, SCHEMA_VERSION)


def ensure_schema(conn: psycopg.Connection[tuple[object, ...]], t: Tables) -> None:
    """Create the schema's tables unless they exist, and check their version.

    The fast path only reads, so a role without ``CREATE`` rights can use a
    schema an administrator created. Creation runs under a transaction-level
    advisory lock, so processes starting together do not race each other.

    Raises:
        SchemaVersionError: The schema was written by a newer release.
        StoreCorruptedError: The recorded version is not a number.
    """
    found = _read_version(conn, t)
    if found is not None:
        _check(found)
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [t.lock_key])
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(t.schema))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {meta} (key text PRIMARY KEY, value text NOT NULL)"
            ).format(meta=t.meta)
        )
        # Read the table itself, not to_regclass(): that may answer from a
        # catalog cache older than the lock we waited for.
        row = conn.execute(
            sql.SQL("SELECT value FROM {meta} WHERE key = 'schema_version'").format(meta=t.meta)
        ).fetchone()
        if row is not None:
            _check(_parse_version(t, row[0]))
            return
        for statement in _ddl(t):
            conn.execute(statement)
        conn.execute(
            sql.SQL("INSERT INTO {meta} (key, value) VALUES ('schema_version', %s)").format(
                meta=t.meta
            ),
            [str(SCHEMA_VERSION)],
        )
