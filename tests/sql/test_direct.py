"""The SQLite read models' connection runs plain statements on the driver's cursor and
gives what ``Connection.execute`` gives: the same rows (types' processors applied), row
counts, primary keys and errors; statements it cannot run the same way go through
SQLAlchemy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
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
from sqlalchemy.exc import IntegrityError

from invariant.sql.database import SQLiteReadModels
from invariant.sql.direct import DirectConnection

metadata = MetaData()
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


def _both(database: SQLiteReadModels, work: Callable[[Connection], Any]) -> list[Any]:
    """``work``'s outcome on the driver's cursor (run twice: a statement's first execution
    goes through SQLAlchemy) and through plain SQLAlchemy, each rolled back."""
    outcomes = []
    engine = database._get_engine()
    for direct in (True, False):
        conn = (engine.connect() if direct else Connection(engine)).execution_options(
            invariant_begin="IMMEDIATE")
        assert isinstance(conn, DirectConnection) is direct
        with conn, conn.begin() as transaction:
            work(conn)
            outcomes.append(work(conn))
            transaction.rollback()
    return outcomes


@pytest.fixture
async def database(tmp_path: Path) -> Any:
    db = SQLiteReadModels(tmp_path / "direct.db")
    await db.run(metadata.create_all)
    yield db
    await db.close()


def _seed(conn: Connection) -> None:
    conn.execute(_INSERT, [{"name": "a", "data": {"k": 1}, "at": datetime(2026, 12, 7, 15)},
                           {"name": "b", "data": None, "at": None},
                           {"name": "c", "data": [1, 2], "at": datetime(2026, 1, 1)}])


async def test_rows_keys_and_processed_values_are_sqlalchemys(database: SQLiteReadModels
                                                                ) -> None:
    def work(conn: Connection) -> Any:
        conn.execute(items.delete())
        _seed(conn)
        row = conn.execute(_BY_NAME, {"name": "a"}).one()
        return (tuple(row), row.data, row.at, row._mapping[items.c.name], row._mapping["kind"],
                conn.execute(_BY_NAME, {"name": "b"}).mappings().first()["data"],
                conn.execute(_COUNT).scalar_one(),
                conn.execute(_BY_NAME, {"name": "zz"}).first())
    direct, plain = _both(database, work)
    assert direct == plain
    assert direct[1:3] == ({"k": 1}, datetime(2026, 12, 7, 15))


async def test_expanding_lists_literal_lists_and_text(database: SQLiteReadModels) -> None:
    def work(conn: Connection) -> Any:
        conn.execute(items.delete())
        _seed(conn)
        ids = [r.id for r in conn.execute(select(items.c.id).order_by(items.c.id))]
        return ([tuple(r) for r in conn.execute(_IN, {"ids": ids[:2]})],
                [tuple(r) for r in conn.execute(_IN, {"ids": ids})],
                conn.execute(_IN, {"ids": []}).all(),  # empty: SQLAlchemy's own rendering
                [tuple(r) for r in conn.execute(_TEXT, {"ids": ids[1:]})],
                [r.name for r in conn.execute(_TEXT, {"ids": ids[1:]})])
    direct, plain = _both(database, work)
    assert direct == plain
    assert len(direct[1]) == 3


async def test_row_counts_primary_keys_and_defaults(database: SQLiteReadModels) -> None:
    def work(conn: Connection) -> Any:
        conn.execute(items.delete())
        inserted = conn.execute(_INSERT, {"name": "x", "data": {}})
        renamed = conn.execute(_RENAME, {"key": inserted.inserted_primary_key[0], "to": "y"})
        many = conn.execute(_RENAME, [{"key": -1, "to": "n1"}, {"key": -2, "to": "n2"}])
        kind = conn.execute(select(items.c.kind)).scalar_one()  # the Python-side default
        defaults = conn.execute(_WITH_DEFAULTS, {"name": "d", "data": None})
        return (inserted.inserted_primary_key[0] > 0, renamed.rowcount, many.rowcount, kind,
                defaults.returned_defaults is not None)
    direct, plain = _both(database, work)
    assert direct == plain == (True, 1, 0, "plain", True)


async def test_driver_errors_are_raised_as_sqlalchemy_raises_them(
        database: SQLiteReadModels) -> None:
    def work(conn: Connection) -> Any:
        conn.execute(items.delete())
        conn.execute(_INSERT, {"name": "dup", "data": None})
        try:
            conn.execute(_INSERT, {"name": "dup", "data": None})
        except IntegrityError as exc:
            return type(exc.orig).__name__, conn.execute(_COUNT).scalar_one()
        return None
    direct, plain = _both(database, work)
    assert direct == plain == ("IntegrityError", 1)


async def test_transactions_of_the_read_models_use_it(database: SQLiteReadModels) -> None:
    def kind(conn: Connection) -> bool:
        return isinstance(conn, DirectConnection)
    assert await database.run(kind)
    assert await database.run(kind, write=False)


async def test_a_statement_run_again_skips_sqlalchemys_execution(
        database: SQLiteReadModels) -> None:
    def work(conn: Connection) -> list[bool]:
        _seed(conn)
        built_per_call = [type(conn.execute(select(items.c.id).where(items.c.name == "a")))
                          for _ in range(2)]
        fresh = select(items).where(items.c.name == bindparam("name"))
        built_once = [type(conn.execute(fresh, {"name": "a"})) for _ in range(2)]
        return [t is CursorResult for t in built_per_call + built_once]
    assert await database.run(work) == [True, True, True, False]
