"""SQLite read models: write transactions share one connection on the loop's thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, event, text

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


async def test_the_writes_of_one_turn_share_one_commit_and_a_failing_one_rolls_back_alone(
        tmp_path: Path) -> None:
    database = SQLiteReadModels(tmp_path / "rm.db")
    try:
        await database.run(_setup)
        commits: list[object] = []
        event.listen(database._get_engine(), "commit", lambda conn: commits.append(conn))

        def insert(k: int, fail: bool = False) -> Callable[[Connection], int]:
            def work(conn: Connection) -> int:
                conn.execute(text("INSERT INTO t VALUES (:k, 'x')"), {"k": k})
                if fail:
                    raise RuntimeError(f"handler {k} failed")
                return k
            return work

        outcomes = await asyncio.gather(database.run(insert(1)),
                                        database.run(insert(2, fail=True)),
                                        database.run(insert(3)), return_exceptions=True)
        assert outcomes[0] == 1 and outcomes[2] == 3
        assert isinstance(outcomes[1], RuntimeError) and "handler 2 failed" in str(outcomes[1])
        assert len(commits) == 1  # three transactions, one commit (one fsync)
        assert await database.run(_rows, write=False) == [(1, "x"), (3, "x")]
    finally:
        await database.close()


async def test_a_worker_writing_in_a_loop_lets_other_tasks_run_between_its_transactions(
        tmp_path: Path) -> None:
    database = SQLiteReadModels(tmp_path / "rm.db")
    try:
        await database.run(_setup)
        order: list[str] = []

        async def worker() -> None:
            for k in range(3):
                await database.run(lambda c, k=k: c.execute(
                    text("INSERT INTO t VALUES (:k, 'w')"), {"k": k}))
                order.append(f"write {k}")

        async def request() -> None:
            order.append("request")

        await asyncio.gather(worker(), request())
        assert order.index("request") < order.index("write 2"), order
    finally:
        await database.close()


async def test_reads_on_the_loop_reuse_one_connection_and_see_every_commit(tmp_path: Path
                                                                         ) -> None:
    database = SQLiteReadModels(tmp_path / "rm.db")
    try:
        await database.run(_setup)
        seen: list[object] = []

        def read(conn: Connection) -> list[tuple[int, str]]:
            seen.append(conn.connection.dbapi_connection)
            return _rows(conn)

        assert await database.run(read, write=False) == []
        await database.run(lambda c: c.execute(text("INSERT INTO t VALUES (1, 'r')")))
        assert await database.run(read, write=False) == [(1, "r")]  # no stale snapshot
        assert seen[0] is seen[1]
    finally:
        await database.close()


async def test_each_write_of_a_shared_commit_sees_its_callers_context_variables(
        tmp_path: Path) -> None:
    # A trace span or a correlation id lives in context variables: work that joins another
    # caller's commit must still see its own caller's, not the flush's.
    import contextvars

    caller: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="flush")
    database = SQLiteReadModels(tmp_path / "rm.db")
    try:
        await database.run(_setup)

        async def write(k: int) -> str:
            caller.set(f"task {k}")

            def work(conn: Connection) -> str:
                conn.execute(text("INSERT INTO t VALUES (:k, 'x')"), {"k": k})
                return caller.get()
            return await database.run(work)

        seen = await asyncio.gather(*(write(k) for k in range(5)))
        assert seen == [f"task {k}" for k in range(5)]
        assert len(await database.run(_rows, write=False)) == 5
    finally:
        await database.close()


async def test_a_shared_commit_leaves_no_cyclic_garbage(tmp_path: Path) -> None:
    # Catch-up pages and consumers write through here; a reference cycle per write would
    # leave each page's rows for the cyclic collector (it cost W3 a third of its rate).
    from tests.garbage import cyclic_garbage

    database = SQLiteReadModels(tmp_path / "rm.db")
    try:
        await database.run(_setup)

        def insert(k: int) -> Callable[[Connection], None]:
            def work(conn: Connection) -> None:
                conn.execute(text("INSERT INTO t VALUES (:k, 'x')"), {"k": k})
            return work

        await database.run(insert(0))  # the kept connection is made outside the block
        with cyclic_garbage() as garbage:
            await database.run(insert(1))
            await asyncio.gather(*(database.run(insert(k)) for k in range(2, 6)))
        assert garbage == []
    finally:
        await database.close()
