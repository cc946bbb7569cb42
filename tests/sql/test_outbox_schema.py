"""The outbox, now derived from one definition, is stored exactly as before.

The references below are the outbox's descriptions as they stood before it was defined once
(the SQLite adapter's DDL, the PostgreSQL adapter's DDL, the SQLAlchemy table): each
database built from the new definition is compared with one built from them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, Text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateTable

from invariant.sql.database import ReadModelDatabase, SQLiteReadModels
from invariant.sql.outbox_table import create_outbox, outbox_table
from invariant.sql.types import JsonDocument, MessageId, Moment
from invariant.store import SQLiteStorage
from invariant.store.postgres import PostgresStorage
from tests.conftest import POSTGRES_DSN, fresh_pg_schema

OLD_SQLITE_DDL = """CREATE TABLE IF NOT EXISTS invariant_outbox (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id      BLOB    NOT NULL,
        stream_id       TEXT    NOT NULL,
        message_type    TEXT    NOT NULL,
        schema_version  INTEGER NOT NULL,
        position        INTEGER,
        data            TEXT,
        metadata        TEXT,
        created_at      INTEGER NOT NULL,
        published_at    INTEGER
    )"""


def old_postgres_ddl(prefix: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS {prefix}invariant_outbox (
            id              bigserial   PRIMARY KEY,
            message_id      uuid        NOT NULL,
            stream_id       text        NOT NULL,
            message_type    text        NOT NULL,
            schema_version  integer     NOT NULL,
            position        bigint,
            data            jsonb,
            metadata        jsonb,
            created_at      timestamptz NOT NULL,
            published_at    timestamptz
        )""",
        f"""CREATE INDEX IF NOT EXISTS invariant_outbox_pending
            ON {prefix}invariant_outbox (id) WHERE published_at IS NULL""",
    ]


def old_table(metadata: MetaData) -> Table:
    return Table(
        "invariant_outbox", metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
        Column("message_id", MessageId(), nullable=False),
        Column("stream_id", Text(), nullable=False),
        Column("message_type", Text(), nullable=False),
        Column("schema_version", Integer(), nullable=False),
        Column("position", BigInteger()),
        Column("data", JsonDocument()),
        Column("metadata", JsonDocument()),
        Column("created_at", Moment(), nullable=False),
        Column("published_at", Moment()),
    )


def sqlite_catalog(path: Path) -> list[tuple[object, ...]]:
    """How SQLite stores the outbox: its schema rows (the DDL text included) and columns."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"
                            " WHERE tbl_name = 'invariant_outbox' ORDER BY type, name").fetchall()
        return rows + conn.execute("PRAGMA table_info(invariant_outbox)").fetchall()
    finally:
        conn.close()


async def test_sqlite_stores_the_outbox_byte_for_byte_as_the_old_ddl_did(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    conn.execute(OLD_SQLITE_DDL)
    conn.close()
    expected = sqlite_catalog(old)
    assert len(expected) == 11  # the table and its ten columns

    storage = SQLiteStorage(tmp_path / "events.db")
    await storage.setup()
    await storage.close()
    assert sqlite_catalog(tmp_path / "events.db") == expected

    database = SQLiteReadModels(tmp_path / "relay.db")  # the relay's and state's path
    try:
        await database.run(create_outbox)
    finally:
        await database.close()
    assert sqlite_catalog(tmp_path / "relay.db") == expected


async def postgres_catalog(conn: asyncpg.Connection, schema: str) -> list[tuple[object, ...]]:
    """How PostgreSQL stores the outbox of ``schema``: columns, indexes, constraints."""
    columns = await conn.fetch(
        "SELECT column_name, ordinal_position, data_type, is_nullable,"
        " replace(column_default, $1, 'S') FROM information_schema.columns"
        " WHERE table_schema = $2 AND table_name = 'invariant_outbox' ORDER BY 2",
        f"{schema}.", schema)
    indexes = await conn.fetch(
        "SELECT indexname, replace(indexdef, $1, 'S') FROM pg_indexes"
        " WHERE schemaname = $2 AND tablename = 'invariant_outbox' ORDER BY 1",
        f"{schema}.", schema)
    constraints = await conn.fetch(
        "SELECT conname, contype, pg_get_constraintdef(c.oid) FROM pg_constraint c"
        " JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace"
        " WHERE n.nspname = $1 AND t.relname = 'invariant_outbox' ORDER BY 1", schema)
    return [tuple(r) for r in (*columns, *indexes, *constraints)]


@pytest.mark.postgres
async def test_postgresql_stores_the_outbox_as_the_old_ddl_did() -> None:
    async with fresh_pg_schema() as old, fresh_pg_schema() as new, \
            fresh_pg_schema() as relay:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            for statement in old_postgres_ddl(f"{old}."):
                await conn.execute(statement)
            expected = await postgres_catalog(conn, old)
            assert len(expected) == 10 + 2 + 1  # columns, the key and pending indexes, the key

            storage = PostgresStorage(POSTGRES_DSN, schema=new)
            await storage.setup()
            await storage.close()
            assert await postgres_catalog(conn, new) == expected

            database = ReadModelDatabase.for_url(POSTGRES_DSN, schema=relay)
            try:
                await database.run(create_outbox)
            finally:
                await database.close()
            assert await postgres_catalog(conn, relay) == expected
        finally:
            await conn.close()


def test_the_sqlalchemy_table_is_the_old_one_on_both_dialects() -> None:
    new, old = outbox_table(MetaData()), old_table(MetaData())
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        assert str(CreateTable(new).compile(dialect=dialect)) == str(
            CreateTable(old).compile(dialect=dialect))
    assert [(c.name, repr(c.type), c.nullable, c.primary_key) for c in new.columns] == [
        (c.name, repr(c.type), c.nullable, c.primary_key) for c in old.columns]
