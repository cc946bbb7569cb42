"""Core statements on the driver's cursor give what ``Connection.execute`` gives, on
SQLite (qmark) and PostgreSQL (asyncpg, numeric_dollar): the same rows (types' processors
applied), row counts, primary keys and errors; statements that cannot run the same way go
through SQLAlchemy. Both ways in: a :class:`DirectConnection` (every plain statement) and
:func:`first_row` / :func:`execute_many` (chosen statements on any connection)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.sql.base import Executable
from sqlalchemy.util import greenlet_spawn

from invariant.sql import direct
from invariant.sql.database import (
    PostgresReadModels,
    ReadModelDatabase,
    SQLiteReadModels,
    dialect_insert,
)
from invariant.sql.direct import DirectConnection, execute_many, first_row
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
items = Table(
    "direct_items", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(40), nullable=False, unique=True),
    Column("data", JSON),
    Column("at", DateTime),
    Column("kind", String(10), nullable=False, default="plain"),
)

_INSERT = items.insert()
_BY_NAME = select(items).where(items.c.name == bindparam("name"))
_IN = select(items.c.id, items.c.data).where(
    items.c.id.in_(bindparam("ids", expanding=True)),
    items.c.name.in_(["a", "b", "c"])).order_by(items.c.id)
_RENAME = update(items).where(items.c.id == bindparam("key")).values(name=bindparam("to"))
_COUNT = select(func.count()).select_from(items)
_WITH_DEFAULTS = items.insert().return_defaults()
_TEXT = text("SELECT id, name FROM direct_items WHERE id IN :ids ORDER BY id").bindparams(
    bindparam("ids", expanding=True))


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path
                   ) -> AsyncIterator[ReadModelDatabase]:
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "sqlite":
            db = ReadModelDatabase.for_url(f"sqlite:///{tmp_path / 'direct.db'}")
        else:
            schema = await stack.enter_async_context(fresh_pg_schema())
            db = ReadModelDatabase.for_url(POSTGRES_DSN, schema=schema)
        stack.push_async_callback(db.close)
        await db.run(metadata.create_all)
        yield db


async def _twice(database: ReadModelDatabase, kind: type[Connection],
                 work: Callable[[Connection], Any]) -> Any:
    """``work``'s outcome on a connection of ``kind``, run twice in one transaction rolled
    back (a statement's first execution goes through SQLAlchemy)."""
    def run() -> Any:
        if isinstance(database, SQLiteReadModels):
            conn = kind(database._get_engine()).execution_options(invariant_begin="IMMEDIATE")
        else:
            assert isinstance(database, PostgresReadModels)
            conn = kind(database.engine.sync_engine)
        with conn, conn.begin() as transaction:
            work(conn)
            outcome = work(conn)
            transaction.rollback()
        return outcome
    if isinstance(database, SQLiteReadModels):
        return run()
    return await greenlet_spawn(run)


async def _both(database: ReadModelDatabase, work: Callable[[Connection], Any]) -> list[Any]:
    """``work``'s outcome on the driver's cursor and through plain SQLAlchemy."""
    return [await _twice(database, DirectConnection, work),
            await _twice(database, Connection, work)]


def _seed(conn: Connection) -> None:
    conn.execute(_INSERT, [
        {"id": 1, "name": "a", "data": {"k": 1}, "at": datetime(2026, 12, 7, 15)},
        {"id": 2, "name": "b", "data": None, "at": None},
        {"id": 3, "name": "c", "data": [1, 2], "at": datetime(2026, 1, 1)}])


# A DirectConnection: every plain statement


async def test_rows_keys_and_processed_values_are_sqlalchemys(database: ReadModelDatabase
                                                                ) -> None:
    def work(conn: Connection) -> Any:
        conn.execute(items.delete())
        _seed(conn)
        row = conn.execute(_BY_NAME, {"name": "a"}).one()
        return (tuple(row), row.data, row.at, row._mapping[items.c.name], row._mapping["kind"],
                conn.execute(_BY_NAME, {"name": "b"}).mappings().first()["data"],
                conn.execute(_COUNT).scalar_one(),
                conn.execute(_BY_NAME, {"name": "zz"}).first())
    on_driver, plain = await _both(database, work)
    assert on_driver == plain
    assert on_driver[1:3] == ({"k": 1}, datetime(2026, 12, 7, 15))


async def test_expanding_lists_literal_lists_and_text(database: ReadModelDatabase) -> None:
    def work(conn: Connection) -> Any:
        conn.execute(items.delete())
        _seed(conn)
        ids = [r.id for r in conn.execute(select(items.c.id).order_by(items.c.id))]
        return ([tuple(r) for r in conn.execute(_IN, {"ids": ids[:2]})],
                [tuple(r) for r in conn.execute(_IN, {"ids": ids})],
                [tuple(r) for r in conn.execute(_IN, {"ids": (i for i in ids[1:])})],
                conn.execute(_IN, {"ids": []}).all(),  # empty: SQLAlchemy's own rendering
                [tuple(r) for r in conn.execute(_TEXT, {"ids": ids[1:]})],
                [r.name for r in conn.execute(_TEXT, {"ids": ids[1:]})])
    on_driver, plain = await _both(database, work)
    assert on_driver == plain
    assert len(on_driver[1]) == 3
    assert on_driver[2] == [(2, None), (3, [1, 2])]


async def test_row_counts_primary_keys_and_defaults(database: ReadModelDatabase) -> None:
    def work(conn: Connection) -> Any:
        conn.execute(items.delete())
        inserted = conn.execute(_INSERT, {"name": "x", "data": {}})
        renamed = conn.execute(_RENAME, {"key": inserted.inserted_primary_key[0], "to": "y"})
        many = conn.execute(_RENAME, [{"key": -1, "to": "n1"}, {"key": -2, "to": "n2"}])
        kind = conn.execute(select(items.c.kind)).scalar_one()  # the Python-side default
        defaults = conn.execute(_WITH_DEFAULTS, {"name": "d", "data": None})
        given = conn.execute(_INSERT, {"id": 50, "name": "g", "data": None})
        return (inserted.inserted_primary_key[0] > 0, renamed.rowcount, many.rowcount, kind,
                defaults.returned_defaults is not None, tuple(given.inserted_primary_key))
    on_driver, plain = await _both(database, work)
    assert on_driver == plain
    # an executemany's rowcount is the driver's: sqlite3 sums it, asyncpg says -1
    assert on_driver[:2] + on_driver[3:] == (True, 1, "plain", True, (50,))


async def test_driver_errors_are_raised_as_sqlalchemy_raises_them(
        database: ReadModelDatabase) -> None:
    def work(conn: Connection) -> Any:
        conn.execute(items.delete())
        conn.execute(_INSERT, {"id": 1, "name": "dup", "data": None})
        try:
            with conn.begin_nested():
                conn.execute(_INSERT, {"id": 2, "name": "dup", "data": None})
        except IntegrityError as exc:
            return type(exc.orig).__name__, conn.execute(_COUNT).scalar_one()
        return None
    on_driver, plain = await _both(database, work)
    assert on_driver == plain
    assert on_driver[1] == 1


async def test_a_statement_run_again_skips_sqlalchemys_execution(
        database: ReadModelDatabase) -> None:
    def work(conn: Connection) -> list[bool]:
        conn.execute(items.delete())
        _seed(conn)
        built_per_call = [type(conn.execute(select(items.c.id).where(items.c.name == "a")))
                          for _ in range(2)]
        fresh = select(items).where(items.c.name == bindparam("name"))
        built_once = [type(conn.execute(fresh, {"name": "a"})) for _ in range(2)]
        expanded = [type(conn.execute(_IN, {"ids": [1, 2]})),
                    type(conn.execute(_TEXT, {"ids": [1]}))]
        return [t is CursorResult for t in built_per_call + built_once + expanded]
    assert await _twice(database, DirectConnection, work) == [True, True, True, False,
                                                              False, False]


async def test_the_sqlite_read_models_transactions_use_it(tmp_path: Path) -> None:
    database = SQLiteReadModels(tmp_path / "direct.db")
    try:
        def kind(conn: Connection) -> bool:
            return isinstance(conn, DirectConnection)
        assert await database.run(kind)
        assert await database.run(kind, write=False)
    finally:
        await database.close()


# first_row and execute_many: chosen statements on any connection


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
        execute_many(conn, statement, rows)
        execute_many(conn, statement, rows[:1])

    await database.run(twice)
    assert await database.run(_all, write=False) == {"a": (10, "x"), "b": (7, "y")}
    [plan] = direct._PLANS[statement].values()
    assert plan is not None  # it ran on the driver's cursor


async def test_a_python_side_default_is_filled_as_sqlalchemy_fills_it(
        database: ReadModelDatabase) -> None:
    # "kind" has a Python default: the driver path steps aside and SQLAlchemy fills it.
    statement = _adding(database.dialect)
    await database.run(lambda c: execute_many(
        c, statement, [{"account_id": "a", "balance": 1}]))
    assert await database.run(_all, write=False) == {"a": (1, "plain")}


async def test_values_a_type_converts_are_converted(database: ReadModelDatabase) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await database.run(lambda c: execute_many(
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
    await database.run(lambda c: execute_many(
        c, _adding(database.dialect), [{"account_id": "a", "balance": 3, "kind": "k"}]))

    async def first(values: dict[str, object]) -> Any:
        return await database.run(lambda c: first_row(c, raise_to, values))

    assert tuple(await first({"_id": "a", "_to": 9})) == (9,)
    assert tuple(await first({"_id": "a", "_to": 10})) == (10,)  # now on the driver's cursor
    assert await first({"_id": "a", "_to": 4}) is None  # 10 is not below 4: no row
    [plan] = direct._PLANS[raise_to].values()
    assert plan is not None  # it ran on the driver's cursor


async def test_first_row_processes_the_values_it_returns(database: ReadModelDatabase) -> None:
    set_data = (update(items).where(items.c.id == bindparam("_id"))
                .values(data=bindparam("_data")).returning(items.c.data, items.c.at))

    def run(conn: Connection) -> list[Any]:
        _seed(conn)
        return [tuple(first_row(conn, set_data, {"_id": 1, "_data": {"n": n}}))
                for n in range(2)]

    assert await database.run(run) == [({"n": 0}, datetime(2026, 12, 7, 15)),
                                       ({"n": 1}, datetime(2026, 12, 7, 15))]


async def test_a_missing_value_is_refused_by_name(database: ReadModelDatabase) -> None:
    raise_to = update(balances).where(balances.c.account_id == bindparam("_id")).values(
        balance=bindparam("_to"))
    with pytest.raises(StatementError, match="_to"):
        await database.run(lambda c: first_row(c, raise_to, {"_id": "a"}))


async def test_a_row_lacking_a_value_of_the_first_is_refused_by_name(
        database: ReadModelDatabase) -> None:
    rows: list[dict[str, Any]] = [{"account_id": "a", "balance": 1, "kind": "k"},
                                  {"account_id": "b", "kind": "k"}]
    statement = _adding(database.dialect)
    for _ in range(2):  # the second time with the statement compiled
        with pytest.raises(StatementError, match="balance"):
            await database.run(lambda c: execute_many(c, statement, rows))
    assert await database.run(_all, write=False) == {}


async def test_a_driver_error_is_sqlalchemys_error_of_its_kind(
        database: ReadModelDatabase) -> None:
    twice = [{"id": 1, "at": datetime(2026, 1, 1, tzinfo=UTC)}] * 2
    plain = Table("driver_plain", MetaData(), Column("id", Integer, primary_key=True))
    insert_plain = plain.insert()
    await database.run(lambda c: plain.create(c))
    for _ in range(2):  # the second time on the driver's cursor
        with pytest.raises(IntegrityError):
            await database.run(lambda c: execute_many(c, insert_plain, [{"id": 1}] * 2))
    with pytest.raises(IntegrityError):
        await database.run(lambda c: execute_many(c, stamps.insert(), twice))
    # the connection is still good for the next transaction
    await database.run(lambda c: execute_many(c, insert_plain, [{"id": 2}]))


async def test_no_rows_execute_nothing(database: ReadModelDatabase) -> None:
    await database.run(lambda c: execute_many(c, _adding(database.dialect), []))
    assert await database.run(_all, write=False) == {}


async def test_a_connection_dropped_under_a_driver_statement_is_not_used_again(
        pg_schema: str) -> None:
    import asyncpg
    from sqlalchemy.exc import DBAPIError

    database = ReadModelDatabase.for_url(POSTGRES_DSN, schema=pg_schema)
    admin = await asyncpg.connect(POSTGRES_DSN)
    rows = [{"account_id": "a", "balance": 1, "kind": "k"}]
    statement = _adding("postgresql")
    try:
        await database.run(metadata.create_all)
        for _ in range(2):
            await database.run(lambda c: execute_many(c, statement, rows))
        await database.run(lambda c: c.execute(balances.delete()))
        [plan] = direct._PLANS[statement].values()
        assert plan is not None  # compiled: the next call is on the driver's cursor
        pid = await database.run(lambda c: c.execute(text("SELECT pg_backend_pid()")).scalar())
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(DBAPIError) as raised:
            await database.run(lambda c: execute_many(c, statement, rows))
        assert raised.value.connection_invalidated
        await database.run(lambda c: execute_many(c, statement, rows))
        assert await database.run(_all, write=False) == {"a": (1, "k")}
    finally:
        await admin.close()
        await database.close()
