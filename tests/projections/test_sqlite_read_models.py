"""SQLite read models: write transactions share one connection on the loop's thread."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from invariant.projections import SQLiteReadModels


def _setup(conn: Connection) -> None:
    conn.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"))


def _rows(conn: Connection) -> list[tuple[int, str]]:
    return [(r[0], r[1]) for r in conn.execute(text("SELECT k, v FROM t ORDER BY k"))]


async def test_writes_reuse_one_connection_and_a_failed_one_leaves_nothing(tmp_path: Path
                                                                           ) -> None:
    database = SQLiteReadModels(tmp_path / "rm.db")
    try:
        await database.run(_setup)
        seen: list[object] = []

        def insert(k: int, fail: bool = False) -> Callable[[Connection], None]:
            def work(conn: Connection) -> None:
                seen.append(conn.connection.dbapi_connection)
                conn.execute(text("INSERT INTO t VALUES (:k, 'x')"), {"k": k})
                if fail:
                    raise RuntimeError("handler failed")
            return work

        await database.run(insert(1))
        with pytest.raises(RuntimeError, match="handler failed"):
            await database.run(insert(2, fail=True))
        await database.run(insert(3))
        assert seen[0] is seen[1] is seen[2]  # one connection, kept across a failure
        assert await database.run(_rows, write=False) == [(1, "x"), (3, "x")]
        # a constraint violation inside the transaction rolls all of it back
        with pytest.raises(Exception, match="UNIQUE"):
            await database.run(insert(3))
        assert await database.run(_rows, write=False) == [(1, "x"), (3, "x")]
    finally:
        await database.close()


async def test_a_closed_database_opens_again_on_the_next_write(tmp_path: Path) -> None:
    database = SQLiteReadModels(tmp_path / "rm.db")
    await database.run(_setup)
    await database.close()
    try:
        await database.run(lambda c: c.execute(text("INSERT INTO t VALUES (1, 'y')")))
        assert await database.run(_rows, write=False) == [(1, "y")]
    finally:
        await database.close()
