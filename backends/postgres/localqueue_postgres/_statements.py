"""The stores' SQL text, composed once per store with its schema's quoted names.

Every name reaches SQL through :class:`psycopg.sql.Identifier`; the values are
``%(name)s`` parameters. What each statement means for the queue is documented
where the stores run it (``localqueue_postgres.store``).
"""

from __future__ import annotations

from psycopg import sql

from localqueue_postgres._schema import NOW
from localqueue_postgres._session import Session

__all__ = ["AttemptStatements", "QueueStatements"]


class QueueStatements:
    """The queue store's SQL, composed once per store with its quoted names."""

    def __init__(self, session: Session) -> None:
        t = session.tables
        names: dict[str, sql.Composable] = {"m": t.messages, "now": NOW}

        def q(text: str) -> sql.Composed:
            return sql.SQL(text).format(**names)

        # A statement-local NOTIFY: referenced by the final SELECT, so it runs
        # exactly when a row changed, and is delivered when the statement commits.
        self.put = q(
            """WITH ins AS (
                INSERT INTO {m} (id, queue, payload, codec, created_at, available_at,
                                 priority, dedup_key)
                VALUES (%(id)s, %(queue)s, %(payload)s, %(codec)s, {now}, {now} + %(delay)s,
                        %(priority)s, %(dedup_key)s)
                ON CONFLICT DO NOTHING
                RETURNING *
            ), note AS (SELECT pg_notify(%(channel)s, %(queue)s) FROM ins LIMIT 1)
            SELECT ins.*, {now} AS now FROM ins LEFT JOIN note ON true"""
        )
        # A per-queue lock in the two-int advisory key space (the schema lock uses the
        # one-bigint space): puts with max_size on one queue take turns, and each
        # counts in a snapshot taken after the previous one committed.
        self.capacity_lock = q(
            "SELECT pg_advisory_xact_lock(hashtext(%(schema)s), hashtext(%(queue)s))"
        )
        self.unfinished = q("SELECT count(*) FROM {m} WHERE queue = %(queue)s AND state < 2")
        self.by_dedup_key = q(
            "SELECT *, {now} AS now FROM {m} WHERE queue = %(queue)s AND dedup_key = %(dedup_key)s"
        )
        # What made an insert conflict: its own id (stored by an attempt whose
        # reply a lost connection cut off) or, first, the dedup key.
        self.by_id_or_dedup_key = q(
            """SELECT *, {now} AS now FROM {m}
            WHERE queue = %(queue)s AND (id = %(id)s OR dedup_key = %(dedup_key)s)
            LIMIT 1"""
        )
        self.by_ids = q(
            "SELECT *, {now} AS now FROM {m} WHERE queue = %(queue)s AND id = ANY(%(ids)s::text[])"
        )
        self.put_many = q(
            """WITH ins AS (
                INSERT INTO {m} (id, queue, payload, codec, created_at, available_at, priority)
                SELECT b.id, %(queue)s, b.payload, %(codec)s, {now}, {now} + %(delay)s,
                       %(priority)s
                FROM unnest(%(ids)s::text[], %(payloads)s::bytea[]) WITH ORDINALITY
                     AS b(id, payload, n)
                ORDER BY b.n
                ON CONFLICT (id) DO NOTHING
                RETURNING *
            ), note AS (SELECT pg_notify(%(channel)s, %(queue)s) FROM ins LIMIT 1)
            SELECT ins.*, {now} AS now FROM ins LEFT JOIN note ON true"""
        )
        # A row whose state localqueue never writes (a bad manual edit) is moved
        # aside as a dead letter by the lease that meets it, so it never hides.
        damaged = (
            """damaged AS (
                UPDATE {m} SET state = 2, lease_token = NULL, failed_at = {now},
                    last_error = 'damaged record: unknown state ' || state::text
                        || ' (moved aside as a dead letter by a lease)'
                WHERE queue = %(queue)s AND state NOT IN (0, 1, 2)
                RETURNING id
            ), """
            if session.damage_index
            else "damaged AS (SELECT NULL::text AS id WHERE false), "
        )
        self.lease = q(
            "WITH "
            + damaged
            + """picked AS (
                SELECT id, available_at AS due FROM {m}
                WHERE queue = %(queue)s AND state < 2 AND available_at <= {now}
                ORDER BY priority DESC, available_at, seq
                LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
            ), upd AS (
            UPDATE {m} AS m
            SET state = 1, attempts = m.attempts + 1, available_at = {now} + %(lease_timeout)s,
                leased_by = %(leased_by)s,
                lease_token = replace(gen_random_uuid()::text, '-', '')
            FROM picked WHERE m.id = picked.id
            RETURNING m.*, picked.due AS due
        )
        SELECT upd.*, {now} AS now, d.ids AS damaged_ids
        FROM (SELECT array_agg(id) AS ids FROM damaged) AS d LEFT JOIN upd ON true"""
        )
        # The capped lease: of the next candidates (locked as above), those already
        # delivered max_deliveries times are dead-lettered and the others leased, in
        # one statement; ``spent`` says how many, so the caller runs it again (in the
        # same transaction) for the places they left.
        self.lease_capped = q(
            "WITH "
            + damaged
            + """picked AS (
                SELECT id, attempts, available_at AS due FROM {m}
                WHERE queue = %(queue)s AND state < 2 AND available_at <= {now}
                ORDER BY priority DESC, available_at, seq
                LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
            ), spent AS (
                UPDATE {m} AS m
                SET state = 2, lease_token = NULL, last_error = %(error)s, failed_at = {now}
                FROM picked WHERE m.id = picked.id AND picked.attempts >= %(max_deliveries)s
                RETURNING m.id
            ), upd AS (
            UPDATE {m} AS m
            SET state = 1, attempts = m.attempts + 1, available_at = {now} + %(lease_timeout)s,
                leased_by = %(leased_by)s,
                lease_token = replace(gen_random_uuid()::text, '-', '')
            FROM picked WHERE m.id = picked.id AND picked.attempts < %(max_deliveries)s
            RETURNING m.*, picked.due AS due
        )
        SELECT upd.*, {now} AS now, d.ids AS damaged_ids, s.n AS spent
        FROM (SELECT array_agg(id) AS ids FROM damaged) AS d
        CROSS JOIN (SELECT count(*) AS n FROM spent) AS s
        LEFT JOIN upd ON true"""
        )
        self.next_due = q(
            "SELECT min(available_at) - {now} FROM {m} WHERE queue = %(queue)s AND state < 2"
        )
        self.ack = q(
            """DELETE FROM {m} WHERE queue = %(queue)s AND id = %(id)s
            AND (%(token)s::text IS NULL OR lease_token = %(token)s)"""
        )
        self.ack_many = q(
            """DELETE FROM {m} AS m
            USING unnest(%(ids)s::text[], %(tokens)s::text[]) AS p(id, token)
            WHERE m.queue = %(queue)s AND m.id = p.id
            AND (p.token IS NULL OR m.lease_token = p.token)"""
        )
        self.release = q(
            """WITH upd AS (
                UPDATE {m} SET state = 0, available_at = {now} + %(delay)s, lease_token = NULL,
                    last_error = coalesce(%(error)s, last_error),
                    failed_at = CASE WHEN %(error)s::text IS NULL THEN failed_at ELSE {now} END
                WHERE queue = %(queue)s AND id = %(id)s AND state < 2
                AND (%(token)s::text IS NULL OR lease_token = %(token)s)
                RETURNING id
            ), note AS (SELECT pg_notify(%(channel)s, %(queue)s) FROM upd LIMIT 1)
            SELECT count(*) FROM upd LEFT JOIN note ON true"""
        )
        self.extend = q(
            """UPDATE {m} SET available_at = {now} + %(lease_timeout)s
            WHERE queue = %(queue)s AND id = %(id)s AND state = 1 AND lease_token = %(token)s"""
        )
        self.dead_letter = q(
            """UPDATE {m} SET state = 2, lease_token = NULL, last_error = %(error)s,
                failed_at = {now}
            WHERE queue = %(queue)s AND id = %(id)s AND state < 2
            AND (%(token)s::text IS NULL OR lease_token = %(token)s)"""
        )
        self.requeue_dead = q(
            """WITH upd AS (
                UPDATE {m} SET state = 0, attempts = 0, available_at = {now}
                WHERE queue = %(queue)s AND state = 2
                AND (%(ids)s::text[] IS NULL OR id = ANY(%(ids)s::text[]))
                RETURNING id
            ), note AS (SELECT pg_notify(%(channel)s, %(queue)s) FROM upd LIMIT 1)
            SELECT count(*) FROM upd LEFT JOIN note ON true"""
        )
        self.purge: dict[str, sql.Composed] = {
            "ready": q(
                """DELETE FROM {m} WHERE queue = %(queue)s
                AND (state = 0 OR (state = 1 AND available_at <= {now}))"""
            ),
            "dead": q("DELETE FROM {m} WHERE queue = %(queue)s AND state = 2"),
            "all": q("DELETE FROM {m} WHERE queue = %(queue)s"),
        }
        self.peek = q(
            """SELECT *, {now} AS now FROM {m}
            WHERE queue = %(queue)s AND state < 2 AND available_at <= {now}
            ORDER BY priority DESC, available_at, seq LIMIT 1"""
        )
        self.inspect = q("SELECT *, {now} AS now FROM {m} WHERE queue = %(queue)s AND id = %(id)s")
        self.dead_letters = q(
            """SELECT *, {now} AS now FROM {m} WHERE queue = %(queue)s AND state = 2
            ORDER BY coalesce(failed_at, 0), seq LIMIT %(limit)s"""
        )
        self.stats = q(
            """SELECT
                count(*) FILTER (WHERE state < 2 AND available_at <= {now}),
                count(*) FILTER (WHERE state = 0 AND available_at > {now}),
                count(*) FILTER (WHERE state = 1 AND available_at > {now}),
                count(*) FILTER (WHERE state NOT IN (0, 1))
            FROM {m} WHERE queue = %(queue)s"""
        )
        self.queues = q("SELECT DISTINCT queue FROM {m}")
        self.find_damaged = q(
            "SELECT id, queue, state FROM {m} WHERE state NOT IN (0, 1, 2) ORDER BY queue, seq"
        )
        self.repair = q(
            """WITH bad AS (
                SELECT id, state FROM {m} WHERE state NOT IN (0, 1, 2) FOR UPDATE
            )
            UPDATE {m} AS m SET state = 2, lease_token = NULL, failed_at = {now},
                last_error = 'damaged record: unknown state ' || bad.state::text
                    || ' (moved aside as a dead letter by repair)'
            FROM bad WHERE m.id = bad.id
            RETURNING m.id, m.queue, bad.state"""
        )
        self.damage = q("UPDATE {m} SET state = %(state)s WHERE queue = %(queue)s AND id = %(id)s")
        self.listen = sql.SQL("LISTEN {}").format(sql.Identifier(t.channel))


class AttemptStatements:
    """The attempt store's SQL, composed once per store with its quoted names."""

    def __init__(self, session: Session) -> None:
        names = {"a": session.tables.attempts, "now": NOW}

        def q(text: str) -> sql.Composed:
            return sql.SQL(text).format(**names)

        self.get = q("SELECT * FROM {a} WHERE key = %(key)s")
        self.begin = q(
            """INSERT INTO {a} AS a (key, attempts, first_attempt_at, last_attempt_at)
            VALUES (%(key)s, 1, {now}, {now})
            ON CONFLICT (key) DO UPDATE
            SET attempts = a.attempts + 1, last_attempt_at = excluded.last_attempt_at
            RETURNING *"""
        )
        self.failure = q(
            """UPDATE {a} SET last_error = %(error)s, exhausted = exhausted OR %(exhausted)s
            WHERE key = %(key)s RETURNING *"""
        )
        self.reset = q("DELETE FROM {a} WHERE key = %(key)s")
