"""The SQLite adapter's tables, as data: the statements :meth:`SQLiteStorage.setup` runs.

The outbox's statements come from its one definition (:mod:`invariant.sql.outbox`).
"""

from __future__ import annotations

from invariant.sql import outbox

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS invariant_events (
        position        INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id        BLOB    NOT NULL UNIQUE,
        stream_id       TEXT    NOT NULL,
        category        TEXT    NOT NULL,
        version         INTEGER NOT NULL,
        event_type      TEXT    NOT NULL,
        schema_version  INTEGER NOT NULL,
        data            TEXT    NOT NULL,
        metadata        TEXT    NOT NULL,
        recorded_at     INTEGER NOT NULL,
        UNIQUE (stream_id, version)
    )""",
    """CREATE INDEX IF NOT EXISTS invariant_events_category
        ON invariant_events (category, position)""",
    """CREATE TABLE IF NOT EXISTS invariant_snapshots (
        stream_id       TEXT    PRIMARY KEY,
        aggregate_type  TEXT    NOT NULL,
        version         INTEGER NOT NULL,
        schema_version  INTEGER NOT NULL,
        state           TEXT    NOT NULL,
        recorded_at     INTEGER NOT NULL
    )""",
    *outbox.create_statements(outbox.SQLITE),
    """CREATE TABLE IF NOT EXISTS invariant_commands (
        command_id      BLOB    PRIMARY KEY,
        command_type    TEXT    NOT NULL,
        value           TEXT    NOT NULL,
        position        INTEGER NOT NULL,
        versions        TEXT    NOT NULL,
        recorded_at     INTEGER NOT NULL
    )""",
    # No index on the outbox: published rows are deleted (the event log keeps the history,
    # AUTOINCREMENT never reuses an id), so pending rows are the table in id order. One page
    # fewer to write, and fsync, per commit.
    # Every stored event gets its outbox row from SQLite itself, in the same transaction.
    """CREATE TRIGGER IF NOT EXISTS invariant_events_to_outbox
        AFTER INSERT ON invariant_events
    BEGIN
        INSERT INTO invariant_outbox (message_id, stream_id, message_type, schema_version,
                                      position, created_at)
        VALUES (NEW.event_id, NEW.stream_id, NEW.event_type, NEW.schema_version,
                NEW.position, NEW.recorded_at);
    END""",
)

EMPTY_JSON = "{}"
"""How the metadata of an event without any is stored (and recognised when read)."""
