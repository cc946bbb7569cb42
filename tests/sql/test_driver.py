"""Core statements on the driver's cursor give what ``Connection.execute`` gives."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.sql.base import Executable

from invariant.sql import driver
from invariant.sql.database import ReadModelDatabase, dialect_insert
from tests.conftest import POSTGRES_DSN, fresh_pg_schema

metadata = MetaData()
balances = Table(
    "driver_balances", metadata,
    Column("account_id", String(40), primary_key=True),
    Column("balance", BigInteger, nullable=False),
    Column("kind", String(10), nullable=False, default="plain"),
)
stamps = Table(
    "driver_stamps", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
)


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path
                   ) -> AsyncIterator[ReadModelDatabase]:
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "sqlite":
            db = ReadModelDatabase.for_url(f"sqlite:///{tmp_path / 'driver.db'}")
        else:
            schema = await stack.enter_async_context(fresh_pg_schema())
            db = ReadModelDatabase.for_url(POSTGRES_DSN, schema=schema)
        stack.push_async_callback(db.close)
        await db.run(metadata.create_all)
        yield db


def _adding(dialect: str) -> Executable:
    insert = dialect_insert(dialect, balances)
    return insert.on_conflict_do_update(
        index_elements=["account_id"],
        set_={"balance": balances.c.balance + insert.excluded.balance},
    )


def _all(conn: Connection) -> dict[str, tuple[int, str]]:
    return {r.account_id: (r.balance, r.kind) for r in conn.execute(select(balances))}


async def test_an_upsert_of_many_rows_adds_as_through_sqlalchemy(
        database: ReadModelDatabase) -> None:
    statement = _adding(database.dialect)
    rows = [{"account_id": "a", "balance": 5, "kind": "x"},
            {"account_id": "b", "balance": 7, "kind": "y"}]

    def twice(conn: Connection) -> None:
        driver.execute_many(conn, statement, rows)
        driver.execute_many(conn, statement, rows[:1])

    await database.run(twice)
    assert await database.run(_all, write=False) == {"a": (10, "x"), "b": (7, "y")}
    [plan] = driver._PLANS[statement].values()
    assert plan is not None  # it ran on the driver's cursor


async def test_a_python_side_default_is_filled_as_sqlalchemy_fills_it(
        database: ReadModelDatabase) -> None:
    # "kind" has a Python default: the driver path steps aside and SQLAlchemy fills it.
    statement = _adding(database.dialect)
    await database.run(lambda c: driver.execute_many(
        c, statement, [{"account_id": "a", "balance": 1}]))
    assert await database.run(_all, write=False) == {"a": (1, "plain")}


async def test_values_a_type_converts_are_converted(database: ReadModelDatabase) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await database.run(lambda c: driver.execute_many(
        c, stamps.insert(), [{"id": 1, "at": at}, {"id": 2, "at": at}]))

    def read(conn: Connection) -> list[datetime]:
        return [r.at.replace(tzinfo=r.at.tzinfo or UTC)
                for r in conn.execute(select(stamps).order_by(stamps.c.id))]

    assert await database.run(read, write=False) == [at, at]


async def test_first_row_returns_what_the_statement_returns(
        database: ReadModelDatabase) -> None:
    raise_to = (update(balances).where(balances.c.account_id == bindparam("_id"),
                                       balances.c.balance < bindparam("_to"))
                .values(balance=bindparam("_to")).returning(balances.c.balance))
    await database.run(lambda c: driver.execute_many(
        c, _adding(database.dialect), [{"account_id": "a", "balance": 3, "kind": "k"}]))

    async def first(values: dict[str, object]) -> Any:
        return await database.run(lambda c: driver.first_row(c, raise_to, values))

    assert tuple(await first({"_id": "a", "_to": 9})) == (9,)
    assert await first({"_id": "a", "_to": 4}) is None  # 9 is not below 4: no row


async def test_a_missing_value_is_refused_by_name(database: ReadModelDatabase) -> None:
    raise_to = update(balances).where(balances.c.account_id == bindparam("_id")).values(
        balance=bindparam("_to"))
    with pytest.raises(StatementError, match="_to"):
        await database.run(lambda c: driver.first_row(c, raise_to, {"_id": "a"}))


async def test_a_row_lacking_a_value_of_the_first_is_refused_by_name(
        database: ReadModelDatabase) -> None:
    rows: list[dict[str, Any]] = [{"account_id": "a", "balance": 1, "kind": "k"},
                                  {"account_id": "b", "kind": "k"}]
    with pytest.raises(StatementError, match="balance"):
        await database.run(lambda c: driver.execute_many(c, _adding(database.dialect), rows))
    assert await database.run(_all, write=False) == {}


async def test_a_driver_error_is_sqlalchemys_error_of_its_kind(
        database: ReadModelDatabase) -> None:
    twice = [{"id": 1, "at": datetime(2026, 1, 1, tzinfo=UTC)}] * 2
    plain = Table("driver_plain", MetaData(), Column("id", Integer, primary_key=True))
    await database.run(lambda c: plain.create(c))
    with pytest.raises(IntegrityError):
        await database.run(lambda c: driver.execute_many(c, plain.insert(), [{"id": 1}] * 2))
    with pytest.raises(IntegrityError):
        await database.run(lambda c: driver.execute_many(c, stamps.insert(), twice))
    # the connection is still good for the next transaction
    await database.run(lambda c: driver.execute_many(c, plain.insert(), [{"id": 2}]))


async def test_no_rows_execute_nothing(database: ReadModelDatabase) -> None:
    await database.run(lambda c: driver.execute_many(c, _adding(database.dialect), []))
    assert await database.run(_all, write=False) == {}


async def test_a_connection_dropped_under_a_driver_statement_is_not_used_again(
        pg_schema: str) -> None:
    import asyncpg
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    database = ReadModelDatabase.for_url(POSTGRES_DSN, schema=pg_schema)
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        await database.run(metadata.create_all)
        pid = await database.run(lambda c: c.execute(text("SELECT pg_backend_pid()")).scalar())
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        rows = [{"account_id": "a", "balance": 1, "kind": "k"}]
        with pytest.raises(DBAPIError) as raised:
            await database.run(lambda c: driver.execute_many(c, _adding("postgresql"), rows))
        assert raised.value.connection_invalidated
        await database.run(lambda c: driver.execute_many(c, _adding("postgresql"), rows))
        assert await database.run(_all, write=False) == {"a": (1, "k")}
    finally:
        await admin.close()
        await database.close()
