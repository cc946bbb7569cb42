"""The durable broker on the application's database (SqlBroker): the broker contract on
SQLite and PostgreSQL, then its own guarantees attacked — a restart loses nothing, an
unacknowledged delivery comes back after the visibility timeout, a republished id is stored
once, concurrent fetchers on PostgreSQL never hold the same message, waiting does not poll."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection, func, select

from invariant.messaging.brokers.sql import SqlBroker, deliveries, messages
from invariant.messaging.errors import BrokerError
from invariant.messaging.port import Broker, Delivery
from invariant.sql.database import (
    PostgresReadModels,
    ReadModelDatabase,
    SQLiteReadModels,
)
from invariant.testing.broker_contract import (
    BrokerContract,
    BrokerFactory,
    DropConnection,
    drain,
    message,
)
from tests.conftest import POSTGRES_DSN, fresh_pg_schema

T = TypeVar("T")


# -- the contract ------------------------------------------------------------------------

class TestSqlBrokerOnSQLite(BrokerContract):
    @pytest.fixture
    async def broker_factory(self, tmp_path: Path) -> AsyncIterator[BrokerFactory]:
        database = SQLiteReadModels(tmp_path / "app.db")
        yield lambda: SqlBroker(database, visibility=1.0, poll_interval=0.2)
        await database.close()

    @pytest.fixture
    def drop_connection(self) -> DropConnection:
        async def drop(broker: Broker) -> None:  # the engine's connections, thrown away
            assert isinstance(broker, SqlBroker)
            assert isinstance(broker.database, SQLiteReadModels)
            engine = broker.database._engine
            if engine is not None:
                await broker.database.run(lambda conn: None)  # the one thread is idle
                engine.dispose()
        return drop


class TestSqlBrokerOnPostgres(BrokerContract):
    @pytest.fixture
    async def broker_factory(self, pg_schema: str) -> AsyncIterator[BrokerFactory]:
        database = PostgresReadModels(POSTGRES_DSN, schema=pg_schema)
        yield lambda: SqlBroker(database, visibility=1.0, poll_interval=0.2)
        await database.close()

    @pytest.fixture
    def drop_connection(self) -> DropConnection:
        async def drop(broker: Broker) -> None:
            assert isinstance(broker, SqlBroker)
            assert await kill_pool_connections(broker.database) >= 1
        return drop


async def kill_pool_connections(database: ReadModelDatabase) -> int:
    """Terminate, server side, the connections ``database``'s pool holds."""
    import asyncpg

    def pid(conn: Connection) -> int:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    pids = set(await asyncio.gather(*(database.run(pid, write=False) for _ in range(3))))
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        return int(await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE pid = ANY($1::int[])", list(pids)))
    finally:
        await admin.close()


# -- the guarantees, on both databases ---------------------------------------------------

Reopen = Callable[[], ReadModelDatabase]


@pytest.fixture(params=["sqlite", "postgres"])
async def reopen(request: pytest.FixtureRequest, tmp_path: Path
                 ) -> AsyncIterator[Reopen]:
    """Opens the same database again (a restarted process); closes what it opened."""
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "sqlite":
            def open_db() -> ReadModelDatabase:
                return SQLiteReadModels(tmp_path / "app.db")
        else:
            schema = await stack.enter_async_context(fresh_pg_schema())

            def open_db() -> ReadModelDatabase:
                return PostgresReadModels(POSTGRES_DSN, schema=schema)
        opened: list[ReadModelDatabase] = []

        def factory() -> ReadModelDatabase:
            opened.append(open_db())
            return opened[-1]
        try:
            yield factory
        finally:
            for database in opened:
                with contextlib.suppress(Exception):
                    await database.close()


async def count(database: ReadModelDatabase, table: Any, **where: Any) -> int:
    def read(conn: Connection) -> int:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        return int(conn.execute(query).scalar_one())
    return await database.run(read, write=False)


async def test_messages_survive_a_restart_and_are_delivered(reopen: Reopen) -> None:
    database = reopen()
    broker = SqlBroker(database, visibility=0.5)
    await broker.connect()
    await broker.declare("g")
    sent = [message(i, stream=f"s-{i % 2}") for i in range(10)]
    await broker.publish(sent)
    for d in await broker.fetch("g", max_messages=3, timeout=1):
        await d.ack()  # handled before the crash
    held = await broker.fetch("g", max_messages=3, timeout=1)  # in hand when it dies
    assert [d.message for d in held] == sent[3:6]
    await broker.close()
    await database.close()  # the process is gone

    database = reopen()
    broker = SqlBroker(database, visibility=0.5)
    await broker.connect()
    later = message(10)
    await broker.publish([later])  # the group survived too: no declare after the restart
    got = await drain(broker, "g", 8, seconds=10)
    assert sorted(d.message.message_id for d in got) == sorted(
        m.message_id for m in [*sent[3:], later])
    assert {d.message.message_id for d in got if d.redelivered} == {
        m.message_id for m in sent[3:6]}
    assert [d.message for d in got if not d.redelivered] == [*sent[6:], later]
    assert await broker.pending("g") == 0
    assert await broker.fetch("g", max_messages=10, timeout=0.8) == []
    await broker.close()


async def test_an_unacknowledged_delivery_comes_back_after_the_visibility_timeout(
    reopen: Reopen
) -> None:
    database = reopen()
    broker = SqlBroker(database, visibility=0.6, poll_interval=30.0)
    await broker.declare("g")
    sent = [message(i) for i in range(3)]
    await broker.publish(sent)
    first = await broker.fetch("g", max_messages=10, timeout=1)
    assert [d.message for d in first] == sent
    assert not any(d.redelivered for d in first)
    assert await broker.fetch("g", max_messages=10, timeout=0.1) == []  # still held
    loop = asyncio.get_running_loop()
    started = loop.time()
    again = await broker.fetch("g", max_messages=10, timeout=10)
    waited = loop.time() - started
    assert [d.message for d in again] == sent
    assert all(d.redelivered for d in again)
    # woken when the claim expired, not at the 30 s poll nor the 10 s timeout
    assert 0.3 < waited < 2.0
    await first[0].nack()  # a stale nack: the message is held by `again` now
    assert await broker.fetch("g", max_messages=10, timeout=0.1) == []
    await again[0].nack()  # its holder's nack: visible at once
    (back,) = await broker.fetch("g", max_messages=10, timeout=1)
    assert back.message == sent[0]
    assert back.redelivered
    for d in [back, *again[1:]]:
        await d.ack()
    assert await broker.pending("g") == 0


async def test_a_republished_message_is_stored_once(reopen: Reopen) -> None:
    database = reopen()
    broker = SqlBroker(database)
    await broker.declare("a")
    await broker.declare("b")
    m1, m2, m3 = message(1), message(2), message(3)
    await broker.publish([m1, m2])
    await broker.publish([m1, m2, m3])  # the relay died before marking m1, m2 published
    await broker.publish([m3, m3])
    assert await count(database, messages) == 3
    assert await count(database, deliveries, grp="a") == 3
    assert await count(database, deliveries, grp="b") == 3
    got = await drain(broker, "a", 3)
    assert [d.message for d in got] == [m1, m2, m3]
    # acknowledged, then published again (a relay that was slower than the consumer):
    # still within the de-duplication window, so not delivered again
    await broker.publish([m2])
    assert await broker.fetch("a", max_messages=10, timeout=0.3) == []
    assert [d.message for d in await drain(broker, "b", 3)] == [m1, m2, m3]


async def test_message_ids_are_forgotten_after_the_dedupe_window(reopen: Reopen) -> None:
    database = reopen()
    broker = SqlBroker(database, dedupe_window=0.0)
    await broker.declare("g")
    old, held = message(1), message(2)
    await broker.publish([old, held])
    (d, _) = await broker.fetch("g", max_messages=2, timeout=1)
    await d.ack()
    await broker.publish([message(3)])  # prunes what every group acknowledged
    assert await count(database, messages) == 2  # `held` stays: not acknowledged yet
    assert await count(database, messages, message_id=old.message_id) == 0


async def test_a_group_sees_only_what_is_published_after_it_is_declared(
    reopen: Reopen
) -> None:
    database = reopen()
    broker = SqlBroker(database)
    await broker.declare("early")
    before = message(1)
    await broker.publish([before])
    await broker.declare("late")
    after = message(2)
    await broker.publish([after])
    assert [d.message for d in await drain(broker, "late", 2, seconds=1)] == [after]
    assert [d.message for d in await drain(broker, "early", 2)] == [before, after]


async def test_the_backlog_counts_only_the_groups_this_broker_serves(reopen: Reopen) -> None:
    """A group declared once and consumed no more (a retired consumer) keeps its
    deliveries in the database; they are not work for this broker's consumers, so they
    must not hold an application's intake for ever."""
    database = reopen()
    retired = SqlBroker(database)
    await retired.declare("retired")
    broker = SqlBroker(database)
    assert await broker.backlog() == 0  # it serves no group yet
    await broker.declare("billing")
    await broker.publish([message(1), message(2), message(3)])
    assert await broker.backlog() == 3
    assert await retired.backlog() == 3  # its own group's
    for delivery in await drain(broker, "billing", 3):
        await delivery.ack()
    assert await broker.backlog() == 0


async def test_the_oldest_delivery_waiting_is_aged_from_its_publish(reopen: Reopen
                                                                     ) -> None:
    from datetime import timedelta

    from invariant.backlog import Waiting
    from invariant.clock import utc_now

    later = timedelta()
    broker = SqlBroker(reopen(), clock=lambda: utc_now() + later)
    assert await broker.waiting() == Waiting(0, 0.0)
    await broker.declare("billing")
    await broker.publish([message(1), message(2)])
    later = timedelta(seconds=2)
    await broker.publish([message(3)])
    later = timedelta(seconds=3)
    waiting = await broker.waiting()
    assert waiting.items == 3 and 3.0 <= waiting.oldest < 3.5  # published at +0
    await drain(broker, "billing", 2)  # handled and acknowledged
    waiting = await broker.waiting()
    assert waiting.items == 1 and 1.0 <= waiting.oldest < 1.5  # published at +2
    await drain(broker, "billing", 1)
    assert await broker.waiting() == Waiting(0, 0.0)


async def test_a_publish_wakes_a_waiting_fetch_without_polling(reopen: Reopen) -> None:
    database = reopen()
    runs = count_runs(database)
    consumer_side = SqlBroker(database, poll_interval=30.0)
    producer_side = SqlBroker(reopen())  # another broker and connection pool, same database
    await consumer_side.declare("g")
    await producer_side.connect()
    loop = asyncio.get_running_loop()
    before = runs()
    idle = await consumer_side.fetch("g", max_messages=5, timeout=1.0)
    assert idle == []
    assert runs() - before <= 2  # looked once, then slept until the timeout
    task = asyncio.create_task(consumer_side.fetch("g", max_messages=5, timeout=20))
    await asyncio.sleep(0.3)
    sent = message(1)
    started = loop.time()
    await producer_side.publish([sent])
    (d,) = await asyncio.wait_for(task, 5)
    assert d.message == sent
    assert loop.time() - started < 1.0
    await producer_side.close()


async def test_a_closed_broker_returns_waiting_fetches_then_raises_broker_errors(
    reopen: Reopen
) -> None:
    database = reopen()
    broker = SqlBroker(database)
    await broker.declare("g")
    waiting = asyncio.create_task(broker.fetch("g", max_messages=1, timeout=30))
    await asyncio.sleep(0.2)
    await broker.close()
    assert await asyncio.wait_for(waiting, 2) == []  # a waiting fetch returns at close
    with pytest.raises(BrokerError):
        await broker.publish([message(1)])
    with pytest.raises(BrokerError):
        await broker.fetch("g", max_messages=1, timeout=0.1)
    await broker.connect()
    await broker.publish([m := message(2)])
    assert [d.message for d in await drain(broker, "g", 1)] == [m]


def count_runs(database: ReadModelDatabase) -> Callable[[], int]:
    """Counts the transactions run on ``database`` from now on."""
    inner = database.run
    runs = 0

    async def run(work: Callable[[Connection], T], *, write: bool = True) -> T:
        nonlocal runs
        runs += 1
        return await inner(work, write=write)
    database.run = run  # type: ignore[method-assign]
    return lambda: runs


# -- PostgreSQL: concurrent fetchers of one group ----------------------------------------

@pytest.mark.postgres
async def test_concurrent_fetchers_on_postgres_never_get_the_same_message(
    pg_schema: str
) -> None:
    databases = [PostgresReadModels(POSTGRES_DSN, schema=pg_schema) for _ in range(2)]
    brokers = [SqlBroker(db, visibility=60.0, poll_interval=0.05) for db in databases]
    try:
        await brokers[0].connect()
        await brokers[0].declare("g")
        total = 400
        sent = [message(i, stream=f"s-{i % 7}") for i in range(total)]
        for start in range(0, total, 50):
            await brokers[0].publish(sent[start:start + 50])
        received: list[str] = []
        held: set[str] = set()
        overlaps = 0

        async def fetcher(broker: SqlBroker) -> None:
            nonlocal overlaps
            while len(received) < total:
                batch: list[Delivery] = await broker.fetch("g", max_messages=7, timeout=0.2)
                for d in batch:
                    if d.message.message_id in held:
                        overlaps += 1
                    held.add(d.message.message_id)
                    received.append(d.message.message_id)
                await asyncio.sleep(0.001)  # handling it
                for d in batch:
                    held.discard(d.message.message_id)
                    await d.ack()

        await asyncio.wait_for(asyncio.gather(*(fetcher(brokers[i % 2]) for i in range(6))),
                               60)
        assert overlaps == 0
        assert len(received) == total  # each message handed out exactly once
        assert set(received) == {m.message_id for m in sent}
        assert await brokers[1].pending("g") == 0
    finally:
        for broker in brokers:
            await broker.close()
        for db in databases:
            await db.close()



async def test_a_group_declared_with_types_gets_only_those(reopen: Reopen) -> None:
    database = reopen()
    broker = SqlBroker(database)
    await broker.declare("picky", types=["Wanted"])
    await broker.declare("all")
    wanted = replace(message(1), message_type="Wanted")
    other = message(2)  # "Happened"
    await broker.publish([other, wanted])
    assert [d.message for d in await drain(broker, "picky", 2, seconds=1)] == [wanted]
    assert [d.message for d in await drain(broker, "all", 2)] == [other, wanted]
    assert await count(database, deliveries) == 0  # nothing was stored for "picky" to skip
    await broker.declare("picky")  # declared again without types: every type from now on
    later = message(3)
    await broker.publish([later])
    assert [d.message for d in await drain(broker, "picky", 1)] == [later]
    with pytest.raises(BrokerError, match="no message type"):
        await broker.declare("none", types=[])


async def test_the_acknowledgements_of_one_turn_are_deleted_in_one_transaction(
    reopen: Reopen
) -> None:
    database = reopen()
    broker = SqlBroker(database)
    await broker.declare("g")
    await broker.publish([message(i, stream=f"s-{i % 3}") for i in range(6)])
    fetched = await drain(broker, "g", 6, ack=False)
    transactions = 0
    run = database.run

    async def counting(work: Callable[[Connection], T], *, write: bool = True) -> T:
        nonlocal transactions
        transactions += write
        return await run(work, write=write)

    database.run = counting  # type: ignore[method-assign]
    try:
        await asyncio.gather(*(d.ack() for d in fetched))
    finally:
        database.run = run  # type: ignore[method-assign]
    assert transactions == 1
    assert await broker.pending("g") == 0
