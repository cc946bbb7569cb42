"""The read models' PostgreSQL connections: pinged after being idle, not on every page."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Connection, event

from invariant.projections import PostgresReadModels
from tests.conftest import POSTGRES_DSN

pytestmark = pytest.mark.postgres


def _backend_pid(conn: Connection) -> int:
    return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _count_pings(database: PostgresReadModels) -> list[int]:
    pings: list[int] = []
    dialect: Any = database.engine.dialect
    original = dialect.do_ping

    def counting(dbapi_connection: Any) -> bool:
        pings.append(1)
        return bool(original(dbapi_connection))

    dialect.do_ping = counting
    return pings


async def test_a_connection_dropped_while_idle_is_replaced_before_use(pg_schema: str) -> None:
    database = PostgresReadModels(POSTGRES_DSN, schema=pg_schema, idle_ping=0.05)
    try:
        pings = _count_pings(database)
        pid = await database.run(_backend_pid)
        admin = await asyncpg.connect(POSTGRES_DSN)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        await asyncio.sleep(0.1)

        assert await database.run(_backend_pid) != pid  # pinged, failed, replaced
        assert pings == [1]
    finally:
        await database.close()


async def test_connections_in_steady_use_are_not_pinged(pg_schema: str) -> None:
    database = PostgresReadModels(POSTGRES_DSN, schema=pg_schema, idle_ping=60)
    try:
        pings = _count_pings(database)
        pids = {await database.run(_backend_pid) for _ in range(5)}
        assert len(pids) == 1 and pings == []
    finally:
        await database.close()


async def test_the_pool_bound_caps_the_connections_held_at_once(pg_schema: str) -> None:
    # Many services share one server's max_connections: INVARIANT_POSTGRES_POOL bounds
    # the tables' connections as it bounds the event store's.
    db = PostgresReadModels(POSTGRES_DSN, schema=pg_schema, pool=2)

    def backend(conn: Connection) -> int:
        conn.exec_driver_sql("SELECT pg_sleep(0.2)")
        return _backend_pid(conn)

    try:
        pids = await asyncio.gather(*(db.run(backend) for _ in range(6)))
    finally:
        await db.close()
    assert len(set(pids)) <= 2, pids


async def test_connections_within_the_bound_are_kept_under_load(pg_schema: str) -> None:
    # No connection is opened for one transaction and closed after it (an overflow
    # connection would be): two bursts of load open the bound's connections once.
    db = PostgresReadModels(POSTGRES_DSN, schema=pg_schema, pool=8)
    opened: list[int] = []
    event.listen(db.engine.sync_engine, "connect", lambda *_: opened.append(1))

    def backend(conn: Connection) -> int:
        conn.exec_driver_sql("SELECT pg_sleep(0.05)")
        return _backend_pid(conn)

    try:
        first = await asyncio.gather(*(db.run(backend) for _ in range(16)))
        second = await asyncio.gather(*(db.run(backend) for _ in range(16)))
    finally:
        await db.close()
    assert len(opened) == 8 and set(second) == set(first), (opened, first, second)


async def test_a_transaction_cancelled_while_it_waits_rolls_back_and_frees_its_connection(
    pg_schema: str,
) -> None:
    database = PostgresReadModels(POSTGRES_DSN, schema=pg_schema, idle_ping=60)
    try:
        await database.run(lambda c: c.exec_driver_sql("CREATE TABLE kept (n int)"))
        started = asyncio.Event()

        def slow(conn: Connection) -> None:
            conn.exec_driver_sql("INSERT INTO kept VALUES (1)")
            started.set()
            conn.exec_driver_sql("SELECT pg_sleep(5)")

        task = asyncio.create_task(database.run(slow))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        pool: Any = database.engine.pool
        assert pool.checkedout() == 0
        count = await database.run(
            lambda c: c.exec_driver_sql("SELECT count(*) FROM kept").scalar_one())
        assert count == 0
    finally:
        await database.close()


def _in_transaction_block(conn: Connection) -> bool:
    """Whether this statement runs in a transaction that an earlier statement began: one
    begun 0.2 s before it, by the statement that slept (a statement in a transaction of its
    own began it a moment before it ran: when it was prepared)."""
    conn.exec_driver_sql("SELECT pg_sleep(0.2)")
    return bool(conn.exec_driver_sql(
        "SELECT query_start - xact_start >= interval '0.15 s' FROM pg_stat_activity"
        " WHERE pid = pg_backend_pid()").scalar_one())


async def test_reads_skip_begin_and_commit_and_writes_keep_their_transaction(
    pg_schema: str,
) -> None:
    # One connection, so the write after a read runs on the connection the read used.
    database = PostgresReadModels(POSTGRES_DSN, schema=pg_schema, idle_ping=60, pool=1)
    try:
        await database.run(lambda c: c.exec_driver_sql("CREATE TABLE kept (n int)"))
        assert await database.run(_in_transaction_block, write=False) is False
        assert await database.run(_in_transaction_block) is True

        def fails_after_writing(conn: Connection) -> None:
            conn.exec_driver_sql("INSERT INTO kept VALUES (1)")
            raise RuntimeError("the work fails after its insert")

        await database.run(lambda c: c.exec_driver_sql("SELECT 1"), write=False)
        with pytest.raises(RuntimeError, match="after its insert"):
            await database.run(fails_after_writing)
        count = await database.run(
            lambda c: c.exec_driver_sql("SELECT count(*) FROM kept").scalar_one(), write=False)
        assert count == 0  # the write after a read was rolled back whole
        assert await database.run(_in_transaction_block) is True
    finally:
        await database.close()
