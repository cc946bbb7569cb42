"""The outbox relay: in order per stream, in batches, marked published, several relays
sharing the work, lag reported — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, MetaData, insert, text

from invariant.clock import to_micros, utc_now
from invariant.hosting.broker_watch import BrokerWatch
from invariant.messaging.brokers.inprocess import InProcessBroker
from invariant.messaging.brokers.sql import SqlBroker
from invariant.messaging.errors import BrokerError
from invariant.messaging.port import Message
from invariant.messaging.relay import OutboxRelay
from invariant.sql import outbox
from invariant.sql.database import ReadModelDatabase, SQLiteReadModels
from invariant.sql.outbox_table import outbox_table, outbox_written
from invariant.store import SQLiteStorage
from invariant.store.port import EventStorage
from invariant.store.postgres import PostgresStorage
from tests.conftest import POSTGRES_DSN, fresh_pg_schema
from tests.messaging.helpers import CountingBroker, commit_events


def database(url: str, schema: str | None) -> ReadModelDatabase:
    return ReadModelDatabase.for_url(url, schema=schema)


def by_stream(published: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    """The ``n`` of each message, per stream, in the order given."""
    found: dict[str, list[int]] = {}
    for stream, n in published:
        found.setdefault(stream, []).append(n)
    return found


def in_stream_order(broker: InProcessBroker) -> dict[str, list[int]]:
    return by_stream((m.stream_id, int(m.data["n"])) for m in broker._log)


async def test_the_relay_publishes_every_row_in_order_and_marks_it_published(
    app_db: tuple[EventStorage, str, str | None]
) -> None:
    storage, url, schema = app_db
    total = await commit_events(storage, streams=3, per_stream=40)
    db = database(url, schema)
    broker = InProcessBroker()
    relay = OutboxRelay(db, broker, batch_size=25)
    await relay.setup()
    assert (await relay.lag()).pending == total
    batches = []
    while moved := await relay.run_once():
        batches.append(moved)
    assert sum(batches) == total
    assert max(batches) == 25
    assert all(ns == list(range(40)) for ns in in_stream_order(broker).values())
    assert len(in_stream_order(broker)) == 3
    assert (await relay.lag()).pending == 0
    assert await storage.read_outbox(limit=10) == []  # marked as the adapter marks them
    await db.close()


async def test_two_relays_share_the_work_and_publish_each_row_once(
    app_db: tuple[EventStorage, str, str | None]
) -> None:
    storage, url, schema = app_db
    total = await commit_events(storage, streams=6, per_stream=30, per_commit=3)
    inner = InProcessBroker()
    counting = CountingBroker(inner, delay=0.01)
    dbs = [database(url, schema) for _ in range(2)]
    relays = [OutboxRelay(db, counting, batch_size=7) for db in dbs]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop=stop, idle=0.01)) for r in relays]
    async with asyncio.timeout(30):
        while (await relays[0].lag()).pending:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks)
    assert len(counting.published) == total
    assert set(counting.published.values()) == {1}
    assert all(r.published > 0 for r in relays)  # both took part
    assert all(ns == list(range(30)) for ns in in_stream_order(inner).values())
    for db in dbs:
        await db.close()


async def test_a_dead_relays_claims_are_taken_over_after_the_lease(
    app_db: tuple[EventStorage, str, str | None]
) -> None:
    storage, url, schema = app_db
    total = await commit_events(storage, streams=2, per_stream=10)
    db = database(url, schema)
    dead = OutboxRelay(db, InProcessBroker(), batch_size=8, lease=0.5)
    await dead.setup()
    now = to_micros(dead.clock())
    claimed = await db.run(lambda conn: dead._claim(conn, now))  # claims, then dies
    assert len(claimed) == 8
    broker = InProcessBroker()
    heir = OutboxRelay(db, broker, batch_size=100, lease=0.5)
    # acc-0 is claimed by the dead relay: the heir publishes acc-1 only, and waits
    assert await heir.run_once() == 10
    assert await heir.run_once() == 0
    assert {m.stream_id for m in broker._log} == {"acc-1"}
    await asyncio.sleep(0.6)  # the lease expires
    while await heir.run_once():
        pass
    assert len(broker._log) == total
    assert all(ns == list(range(10)) for ns in in_stream_order(broker).values())
    # Settled: every row marked published, its claim (the dead relay's taken over) gone.
    assert (await heir.lag()).pending == 0
    assert await db.run(lambda conn: conn.execute(
        text("SELECT count(*) FROM invariant_outbox_claims")).scalar_one(), write=False) == 0
    await db.close()


@contextlib.asynccontextmanager
async def idle_relay(url: str, schema: str | None, *, listen: bool = False
                     ) -> AsyncIterator[InProcessBroker]:
    """A relay that would look at the outbox again in an hour, once it waits; its broker."""
    db, broker, stop = database(url, schema), InProcessBroker(), asyncio.Event()
    await broker.declare("g")
    relay = OutboxRelay(db, broker)
    await relay.setup()
    task = asyncio.create_task(relay.run(stop=stop, idle=3600, listen=listen))
    try:
        while not outbox.COMMITTED.waiting and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.001)  # until it found the outbox empty
        yield broker
    finally:
        stop.set()
        await task
        await db.close()


async def published(broker: InProcessBroker) -> list[tuple[str, str, dict[str, Any]]]:
    """(stream, type, data) of what the relay publishes next: the fetch waits at most a
    minute, and is woken by the publish."""
    return [(d.message.stream_id, d.message.message_type, d.message.data)
            for d in await broker.fetch("g", max_messages=10, timeout=60)]


async def test_an_idle_relay_is_woken_by_a_commit_instead_of_its_next_poll(
    app_db: tuple[EventStorage, str, str | None]
) -> None:
    storage, url, schema = app_db
    async with idle_relay(url, schema) as broker:
        await commit_events(storage, streams=1, per_stream=3)
        assert [data["n"] for _, _, data in await published(broker)] == [0, 1, 2]


async def test_an_idle_relay_is_woken_by_a_transaction_that_wrote_outbox_rows(
    app_db: tuple[EventStorage, str, str | None]
) -> None:
    """State-stored aggregates and applications write outbox rows through the read-model
    database; ``outbox_written`` wakes the relays once the transaction has committed."""
    _, url, schema = app_db
    table = outbox_table(MetaData())

    def write(conn: Connection) -> None:
        conn.execute(insert(table).values(
            message_id=uuid.uuid4(), stream_id="thing-1", message_type="ThingDone",
            schema_version=1, position=None, data={"n": 7}, metadata={},
            created_at=utc_now(), published_at=None))
        outbox_written(conn)

    async with idle_relay(url, schema) as broker:
        db = database(url, schema)
        await db.run(write)
        await db.close()
        assert await published(broker) == [("thing-1", "ThingDone", {"n": 7})]


@pytest.mark.postgres
async def test_a_listening_relay_on_postgresql_is_woken_by_another_processs_commit() -> None:
    """``invariant relay run`` in a process of its own: the application's commits wake it by
    NOTIFY (PostgreSQL's), not its next poll."""
    async with fresh_pg_schema() as schema:
        storage = PostgresStorage(POSTGRES_DSN, schema=schema)
        await storage.setup()
        await storage.close()
        await _woken_by_another_process(POSTGRES_DSN, schema)


async def _woken_by_another_process(url: str, schema: str) -> None:
    script = (
        "import asyncio, sys, uuid\n"
        "from invariant.store.postgres import PostgresStorage\n"
        "from invariant.store.records import AppendRequest, Commit, NewEvent, StreamState\n"
        "async def main():\n"
        "    storage = PostgresStorage(sys.argv[1], schema=sys.argv[2])\n"
        "    event = NewEvent(uuid.uuid4(), 'Happened', 1, {'n': 5}, {})\n"
        "    await storage.commit(Commit(appends=(AppendRequest('elsewhere-1', "
        "StreamState.ANY, (event,)),)))\n"
        "    await storage.close()\n"
        "asyncio.run(main())\n")
    async with idle_relay(url, schema, listen=True) as broker:
        other = await asyncio.create_subprocess_exec(sys.executable, "-c", script, url, schema)
        assert await other.wait() == 0
        assert await published(broker) == [("elsewhere-1", "Happened", {"n": 5})]


async def test_lag_reports_pending_rows_and_the_oldest_age(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "events.db")
    await storage.setup()
    await commit_events(storage, streams=1, per_stream=4)
    db = SQLiteReadModels(tmp_path / "events.db")
    relay = OutboxRelay(db, InProcessBroker())
    await relay.setup()
    lag = await relay.lag()
    assert lag.pending == 4
    assert lag.oldest_age_seconds >= 0
    count = await db.run(lambda c: c.execute(text("SELECT count(*) FROM invariant_outbox_claims")
                                             ).scalar_one(), write=False)
    assert count == 0
    await db.close()
    await storage.close()


async def test_the_relay_runs_as_its_own_process_in_the_distributed_mode(
    tmp_path: Path
) -> None:
    """``invariant relay run`` publishes to Redis; ``invariant relay lag`` reports."""
    import os
    import sys
    import uuid

    from invariant.messaging.brokers.redis_streams import RedisStreamsBroker
    from invariant.testing.broker_contract import drain
    from tests.messaging.conftest import REDIS_URL, require_port

    require_port("Redis", 6379)
    storage = SQLiteStorage(tmp_path / "app.db")
    await storage.setup()
    total = await commit_events(storage, streams=4, per_stream=25)
    channel = f"t{uuid.uuid4().hex[:8]}"
    consumer = RedisStreamsBroker(REDIS_URL, stream=f"{channel}:messages")
    await consumer.connect()
    await consumer.declare("g")
    env = {**os.environ, "INVARIANT_SQLITE_PATH": str(tmp_path / "app.db")}
    cli = [sys.executable, "-c", "from invariant.cli import app; app()"]
    lag = await asyncio.create_subprocess_exec(*cli, "relay", "lag", env=env,
                                               stdout=asyncio.subprocess.PIPE)
    assert (await lag.communicate())[0].decode().startswith(f"pending {total},")
    proc = await asyncio.create_subprocess_exec(
        *cli, "relay", "run", "--broker", REDIS_URL, "--channel", channel, "--seconds", "2",
        env=env, stdout=asyncio.subprocess.PIPE)
    try:
        got = await drain(consumer, "g", total, seconds=20)
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        client = consumer._client()
        keys = [k async for k in client.scan_iter(f"{channel}:*")]
        await client.delete(*keys)
        await consumer.close()
        await storage.close()
    assert out.decode().strip() == f"published {total} message(s)"
    assert len({d.message.message_id for d in got}) == total


# -- a broker in the outbox's own database: one transaction per batch ----------------------


async def broker_messages(db: ReadModelDatabase) -> list[tuple[str, int]]:
    """(stream, n) of every message the SQL broker stores, in publish order."""
    def read(conn: Connection) -> list[tuple[str, int]]:
        rows = conn.execute(text(
            "SELECT stream_id, body FROM invariant_broker_messages ORDER BY id")).all()
        return [(r[0], int(Message.decode(r[1]).data["n"])) for r in rows]
    return await db.run(read, write=False)


async def claim_rows(db: ReadModelDatabase) -> int:
    return int(await db.run(lambda conn: conn.execute(
        text("SELECT count(*) FROM invariant_outbox_claims")).scalar_one(), write=False))


async def test_a_broker_in_the_outbox_database_takes_each_batch_in_one_transaction(
    app_db: tuple[EventStorage, str, str | None]
) -> None:
    """Rows go from the outbox into the broker and are marked in one transaction: no claim
    is ever written, and a group declared before gets every message once, in order."""
    storage, url, schema = app_db
    total = await commit_events(storage, streams=3, per_stream=20)
    db = database(url, schema)
    broker = SqlBroker(db)
    await broker.connect()
    await broker.declare("g")
    relay = OutboxRelay(db, BrokerWatch(broker), batch_size=25)  # as the host wraps it
    await relay.setup()
    batches = []
    while moved := await relay.run_once():
        batches.append(moved)
        assert await claim_rows(db) == 0
    assert sum(batches) == total
    assert max(batches) == 25
    assert (await relay.lag()).pending == 0
    stored = await broker_messages(db)
    assert len(stored) == total
    assert all(ns == list(range(20)) for ns in by_stream(stored).values())
    deliveries = await broker.fetch("g", max_messages=100, timeout=0)
    assert len(deliveries) == total
    await broker.close()
    await db.close()


async def test_a_batch_that_fails_in_the_broker_stays_in_the_outbox(
    app_db: tuple[EventStorage, str, str | None]
) -> None:
    """The broker's part fails inside the transaction: the rows are not marked published
    (nothing half done), and the next batch takes them."""
    storage, url, schema = app_db
    total = await commit_events(storage, streams=2, per_stream=5)
    db = database(url, schema)
    broker = SqlBroker(db)
    await broker.connect()
    relay = OutboxRelay(db, broker)
    await relay.setup()
    real = broker.publish_in

    def failing(conn: Connection, batch: Any) -> int:
        real(conn, batch)  # stored, then the transaction fails
        raise RuntimeError("the disk is full")

    broker.publish_in = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="disk is full"):
        await relay.run_once()
    assert (await relay.lag()).pending == total
    assert await broker_messages(db) == []
    broker.publish_in = real  # type: ignore[method-assign]
    assert await relay.run_once() == total
    assert len(await broker_messages(db)) == total
    await broker.close()
    await db.close()


async def test_two_relays_into_a_broker_in_the_same_database_store_each_row_once(
    app_db: tuple[EventStorage, str, str | None]
) -> None:
    storage, url, schema = app_db
    total = await commit_events(storage, streams=6, per_stream=30, per_commit=3)
    dbs = [database(url, schema) for _ in range(2)]
    brokers = [SqlBroker(db) for db in dbs]
    for broker in brokers:
        await broker.connect()
    relays = [OutboxRelay(db, broker, batch_size=7) for db, broker in zip(dbs, brokers,
                                                                          strict=True)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop=stop, idle=0.01)) for r in relays]
    async with asyncio.timeout(30):
        while (await relays[0].lag()).pending:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks)
    stored = await broker_messages(dbs[0])
    assert len(stored) == len(set(stored)) == total
    assert all(ns == list(range(30)) for ns in by_stream(stored).values())
    for broker, db in zip(brokers, dbs, strict=True):
        await broker.close()
        await db.close()


async def test_a_fetch_waiting_on_the_broker_is_woken_by_the_relays_commit(
    app_db: tuple[EventStorage, str, str | None]
) -> None:
    storage, url, schema = app_db
    db = database(url, schema)
    broker = SqlBroker(db, poll_interval=3600)
    await broker.connect()
    await broker.declare("g")
    relay = OutboxRelay(db, broker)
    await relay.setup()
    waiting = asyncio.create_task(broker.fetch("g", max_messages=10, timeout=60))
    await asyncio.sleep(0.05)
    await commit_events(storage, streams=1, per_stream=2)
    assert await relay.run_once() == 2
    async with asyncio.timeout(5):  # not the hour's poll
        deliveries = await waiting
    assert [d.message.data["n"] for d in deliveries] == [0, 1]
    await broker.close()
    await db.close()


async def test_a_relay_into_a_closed_sql_broker_fails_with_broker_error(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "app.db")
    await storage.setup()
    await commit_events(storage, streams=1, per_stream=1)
    db = SQLiteReadModels(tmp_path / "app.db")
    broker = SqlBroker(db)
    await broker.connect()
    relay = OutboxRelay(db, broker)
    await broker.close()
    with pytest.raises(BrokerError, match="closed"):
        await relay.run_once()
    assert (await relay.lag()).pending == 1
    await db.close()
    await storage.close()


async def test_a_wrapper_of_the_sql_broker_is_published_to_through_its_publish(
        tmp_path: Path) -> None:
    """Only a broker that says it stores in the outbox's database (the SQL broker, or the
    host's BrokerWatch around it) is moved into in one transaction: a wrapper of its own
    (counting, say) still gets every batch through ``publish``."""
    storage = SQLiteStorage(tmp_path / "app.db")
    await storage.setup()
    total = await commit_events(storage, streams=2, per_stream=3)
    db = SQLiteReadModels(tmp_path / "app.db")
    inner = SqlBroker(db)
    await inner.connect()
    counting = CountingBroker(inner)
    counting.broker = inner  # type: ignore[attr-defined]  # a wrapper naming its broker
    relay = OutboxRelay(db, counting)
    assert await relay.run_once() == total
    assert sum(counting.published.values()) == total
    assert len(await broker_messages(db)) == total
    await inner.close()
    await db.close()
    await storage.close()
