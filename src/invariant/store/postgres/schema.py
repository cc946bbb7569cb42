"""The PostgreSQL adapter's tables and functions, as data: the statements
:meth:`PostgresStorage.setup` runs in a schema. The outbox's come from its one definition
(:mod:`invariant.sql.outbox`).
"""

from __future__ import annotations

import hashlib

from invariant.sql import outbox
from invariant.store.postgres.listen import notify_channel

WRONG_VERSION = "IV001"
"""The SQLSTATE the append function raises when a stream is not at the expected version."""


def schema_marker(statements: list[str]) -> str:
    """What the events table's comment says once ``statements`` made the schema: a digest
    of them, so that a setup by other code (another version) runs them again."""
    digest = hashlib.sha256("\n".join(statements).encode()).hexdigest()[:16]
    return f"invariant event store, schema {digest}"


def schema_statements(s: str, lock_key: int) -> list[str]:
    """The statements creating schema ``s`` and its tables and functions (idempotent)."""
    return [
        # Not CREATE SCHEMA IF NOT EXISTS: that needs the right to create schemas even when
        # the schema exists, which a service's role owning only its schema does not have.
        f"""DO $$ BEGIN
            IF to_regnamespace('{s}') IS NULL THEN CREATE SCHEMA {s}; END IF;
        END $$""",
        f"CREATE SEQUENCE IF NOT EXISTS {s}.invariant_events_position_seq",
        f"""CREATE TABLE IF NOT EXISTS {s}.invariant_events (
            position        bigint      PRIMARY KEY
                            DEFAULT nextval('{s}.invariant_events_position_seq'),
            event_id        uuid        NOT NULL UNIQUE,
            stream_id       text        NOT NULL,
            category        text        NOT NULL,
            version         bigint      NOT NULL,
            event_type      text        NOT NULL,
            schema_version  integer     NOT NULL,
            data            jsonb       NOT NULL,
            metadata        jsonb       NOT NULL,
            recorded_at     timestamptz NOT NULL,
            CONSTRAINT invariant_events_stream_version UNIQUE (stream_id, version)
        )""",
        f"ALTER SEQUENCE {s}.invariant_events_position_seq OWNED BY {s}.invariant_events.position",
        f"""CREATE INDEX IF NOT EXISTS invariant_events_category
            ON {s}.invariant_events (category, position)""",
        f"""CREATE TABLE IF NOT EXISTS {s}.invariant_snapshots (
            stream_id       text        PRIMARY KEY,
            aggregate_type  text        NOT NULL,
            version         bigint      NOT NULL,
            schema_version  integer     NOT NULL,
            state           jsonb       NOT NULL,
            recorded_at     timestamptz NOT NULL
        )""",
        *outbox.create_statements(outbox.POSTGRESQL, f"{s}."),
        f"""CREATE TABLE IF NOT EXISTS {s}.invariant_commands (
            command_id      uuid        PRIMARY KEY,
            command_type    text        NOT NULL,
            value           jsonb,
            position        bigint      NOT NULL,
            versions        jsonb       NOT NULL,
            recorded_at     timestamptz NOT NULL
        )""",
        f"""CREATE OR REPLACE FUNCTION {s}.invariant_append(
                p_stream text, p_expected bigint, p_ids uuid[], p_types text[],
                p_schemas integer[], p_data jsonb[], p_meta jsonb[], p_recorded timestamptz)
            RETURNS TABLE (new_version bigint, first_position bigint, last_position bigint)
            LANGUAGE plpgsql AS $fn$
        DECLARE
            v_actual bigint;
        BEGIN
            -- Shared with every other append; exclusive only for a follower's safe head.
            PERFORM pg_advisory_xact_lock_shared({lock_key});
            IF p_expected < 0 THEN
                -- "any": queue behind other appends to this stream instead of colliding.
                PERFORM pg_advisory_xact_lock(hashtextextended(p_stream, {lock_key}));
            END IF;
            SELECT coalesce(max(e.version), 0) INTO v_actual
              FROM {s}.invariant_events e WHERE e.stream_id = p_stream;
            IF p_expected >= 0 AND v_actual <> p_expected THEN
                RAISE EXCEPTION USING ERRCODE = '{WRONG_VERSION}',
                    MESSAGE = 'wrong expected version', DETAIL = v_actual::text;
            END IF;
            RETURN QUERY
            WITH ins AS (
                INSERT INTO {s}.invariant_events (event_id, stream_id, category, version,
                    event_type, schema_version, data, metadata, recorded_at)
                SELECT u.id, p_stream, split_part(p_stream, '-', 1), v_actual + u.ord,
                       u.t, u.sv, u.d, u.m, p_recorded
                  FROM unnest(p_ids, p_types, p_schemas, p_data, p_meta)
                       WITH ORDINALITY AS u(id, t, sv, d, m, ord)
                 ORDER BY u.ord
                RETURNING position, event_id, event_type, schema_version
            ), outbox AS (
                INSERT INTO {s}.invariant_outbox (message_id, stream_id, message_type,
                    schema_version, position, created_at)
                SELECT ins.event_id, p_stream, ins.event_type, ins.schema_version,
                       ins.position, p_recorded
                  FROM ins
            )
            SELECT v_actual + cardinality(p_ids), min(ins.position), max(ins.position)
              FROM ins;
            PERFORM pg_notify('{notify_channel(s)}', '');
        END
        $fn$""",
        f"""CREATE OR REPLACE FUNCTION {s}.invariant_append_batch(
                a_streams text[], a_expected bigint[], a_counts integer[],
                a_cmd_ids uuid[], a_cmd_types text[], a_cmd_values jsonb[],
                e_ids uuid[], e_types text[], e_schemas integer[], e_data jsonb[],
                e_meta jsonb[], p_recorded timestamptz)
            RETURNS TABLE (idx integer, status text, new_version bigint,
                           first_position bigint, last_position bigint)
            LANGUAGE plpgsql AS $fn$
        BEGIN
            -- Many commands, one set-based statement: each append is checked on its own
            -- and refused alone ('conflict', 'duplicate_command'); a second append to a
            -- stream already in the batch is sent back ('again') for the next batch.
            PERFORM pg_advisory_xact_lock_shared({lock_key});
            RETURN QUERY
            WITH a AS (
                SELECT u.i::integer AS i, u.stream, u.expected, u.n, u.cmd_id, u.cmd_type,
                       u.cmd_value,
                       coalesce(sum(u.n) OVER (ORDER BY u.i ROWS BETWEEN UNBOUNDED PRECEDING
                                               AND 1 PRECEDING), 0)::integer AS offs,
                       row_number() OVER (PARTITION BY u.stream ORDER BY u.i) AS nth
                  FROM unnest(a_streams, a_expected, a_counts, a_cmd_ids, a_cmd_types,
                              a_cmd_values)
                       WITH ORDINALITY AS u(stream, expected, n, cmd_id, cmd_type, cmd_value, i)
            ), cur AS (
                SELECT a.*,
                       coalesce((SELECT max(e.version) FROM {s}.invariant_events e
                                  WHERE e.stream_id = a.stream), 0) AS actual,
                       (a.cmd_id IS NOT NULL AND EXISTS (
                           SELECT 1 FROM {s}.invariant_commands c
                            WHERE c.command_id = a.cmd_id)) AS dup
                  FROM a
            ), ok AS (
                SELECT * FROM cur WHERE cur.nth = 1 AND cur.actual = cur.expected AND NOT cur.dup
            ), ins AS (
                INSERT INTO {s}.invariant_events (event_id, stream_id, category, version,
                    event_type, schema_version, data, metadata, recorded_at)
                SELECT e_ids[ok.offs + k], ok.stream, split_part(ok.stream, '-', 1),
                       ok.actual + k, e_types[ok.offs + k], e_schemas[ok.offs + k],
                       e_data[ok.offs + k], e_meta[ok.offs + k], p_recorded
                  FROM ok, generate_series(1, ok.n) AS k
                 ORDER BY ok.i, k
                RETURNING position, event_id, stream_id, event_type, schema_version
            ), outbox AS (
                INSERT INTO {s}.invariant_outbox (message_id, stream_id, message_type,
                    schema_version, position, created_at)
                SELECT ins.event_id, ins.stream_id, ins.event_type, ins.schema_version,
                       ins.position, p_recorded
                  FROM ins
            ), spans AS (
                SELECT ins.stream_id, min(ins.position) AS first_p, max(ins.position) AS last_p
                  FROM ins GROUP BY ins.stream_id
            ), commands AS (
                INSERT INTO {s}.invariant_commands (command_id, command_type, value, position,
                    versions, recorded_at)
                SELECT ok.cmd_id, ok.cmd_type, ok.cmd_value, spans.last_p,
                       jsonb_build_object(ok.stream, ok.actual + ok.n), p_recorded
                  FROM ok JOIN spans ON spans.stream_id = ok.stream
                 WHERE ok.cmd_id IS NOT NULL
            )
            SELECT cur.i,
                   CASE WHEN cur.nth > 1 THEN 'again'
                        WHEN cur.actual <> cur.expected THEN 'conflict'
                        WHEN cur.dup THEN 'duplicate_command'
                        ELSE 'ok' END,
                   CASE WHEN spans.last_p IS NOT NULL THEN cur.actual + cur.n
                        ELSE cur.actual END,
                   spans.first_p, spans.last_p
              FROM cur
              LEFT JOIN spans ON spans.stream_id = cur.stream AND cur.nth = 1
                             AND cur.actual = cur.expected AND NOT cur.dup
             ORDER BY cur.i;
            PERFORM pg_notify('{notify_channel(s)}', '');  -- wakes live followers on commit
        END
        $fn$""",
        f"""CREATE OR REPLACE FUNCTION {s}.invariant_safe_head() RETURNS bigint
            LANGUAGE plpgsql AS $fn$
        BEGIN
            -- Waits until no append that drew a position is still running.
            PERFORM pg_advisory_xact_lock({lock_key});
            -- Each statement of a volatile function takes a fresh snapshot: this one sees
            -- every append that finished while we waited, and none can still be running.
            RETURN (SELECT coalesce(max(position), 0) FROM {s}.invariant_events);
        END
        $fn$""",
    ]
