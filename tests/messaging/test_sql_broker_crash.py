"""The embedded mode with the SQL broker: the outbox, the broker's tables and the consumer's
effects all in the application's one database. Kill the relay, then a consumer, mid-batch
with SIGKILL; restart: every event delivered, its effect applied exactly once (counted).

With the in-process broker, what the killed relay had published and marked (and the killed
consumer had not handled) would be gone with the process; here it waits in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from invariant.messaging.consumer import Consumer
from invariant.messaging.relay import OutboxRelay
from invariant.messaging.sql_broker import SqlBroker
from invariant.projections.database import ReadModelDatabase
from invariant.store import SQLiteStorage
from invariant.store.port import EventStorage
from invariant.store.postgres import PostgresStorage
from tests.conftest import POSTGRES_DSN, fresh_pg_schema
from tests.messaging.helpers import commit_events, count_effects, record_effect

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgres"])
async def app_db(request: pytest.FixtureRequest, tmp_path: Path
                 ) -> AsyncIterator[tuple[EventStorage, str, str | None]]:
    """The event storage, its database URL and schema."""
    async with contextlib.AsyncExitStack() as stack:
        storage: EventStorage
        if request.param == "sqlite":
            url, schema = f"sqlite:///{tmp_path / 'app.db'}", None
            storage = SQLiteStorage(tmp_path / "app.db")
        else:
            schema = await stack.enter_async_context(fresh_pg_schema())
            url = POSTGRES_DSN
            storage = PostgresStorage(POSTGRES_DSN, schema=schema)
        await storage.setup()
        try:
            yield storage, url, schema
        finally:
            await storage.close()


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.messaging.sql_broker_worker", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})


async def wait_until(predicate: object, seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while not await predicate():  # type: ignore[operator]  # noqa: ASYNC110 (polls a db)
            await asyncio.sleep(0.02)


async def test_killed_relay_and_consumer_on_the_sql_broker_lose_nothing_and_apply_once(
    app_db: tuple[EventStorage, str, str | None]
) -> None:
    storage, url, schema = app_db
    db = ReadModelDatabase.for_url(url, schema=schema)
    broker = SqlBroker(db, visibility=1.0)
    procs: list[asyncio.subprocess.Process] = []
    args = [url] if schema is None else [url, schema]
    try:
        await _scenario(storage, db, broker, args, procs)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await broker.close()
        await db.close()


async def _scenario(storage: EventStorage, db: ReadModelDatabase, broker: SqlBroker,
                    args: list[str], procs: list[asyncio.subprocess.Process]) -> None:
    total = await commit_events(storage, streams=5, per_stream=60)
    await broker.connect()
    await broker.declare("effects")  # the consumer's group exists before anything is sent
    relay = OutboxRelay(db, broker, lease=1.0)
    await relay.setup()

    # the relay dies mid-stream: some rows published (and marked), the rest not
    proc = await spawn("relay", *args)
    procs.append(proc)
    await wait_until(lambda: _pending_below(relay, total - 60), 30)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    pending = (await relay.lag()).pending
    assert pending > 0
    # what it published is in the database, not in a dead process's memory
    assert await broker.pending("effects") >= total - pending

    # a consumer dies mid-batch (holding claimed, unacknowledged deliveries)
    consumer_proc = await spawn("consume", *args)
    procs.append(consumer_proc)
    assert consumer_proc.stdout is not None
    assert (await asyncio.wait_for(consumer_proc.stdout.readline(), 30)).strip() == b"ready"
    await wait_until(lambda: _effects_at_least(db, 40), 30)
    consumer_proc.send_signal(signal.SIGKILL)
    await consumer_proc.wait()
    applied, _ = await db.run(count_effects, write=False)
    assert 0 < applied < total

    # restarted in this process: a relay (taking over the dead one's claims) and a consumer
    stop = asyncio.Event()
    consumer = Consumer("effects", db, record_effect)
    await consumer.setup()
    tasks = [asyncio.create_task(relay.run(stop=stop, idle=0.02)),
             asyncio.create_task(consumer.consume(broker, stop=stop, batch=100, poll=0.2))]
    try:
        await wait_until(lambda: _effects_at_least(db, total), 45)
        await asyncio.sleep(1.5)  # a late redelivery (visibility 1 s) would add an effect
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    rows, distinct = await db.run(count_effects, write=False)
    print(f"restarted consumer: {consumer.outcomes}")  # duplicates the inbox dropped
    assert (rows, distinct) == (total, total)
    assert (await relay.lag()).pending == 0
    assert await broker.pending("effects") == 0
    inbox_rows = await db.run(
        lambda c: c.execute(text("SELECT count(*) FROM invariant_inbox")).scalar_one(),
        write=False)
    assert inbox_rows == total
    # republished rows (the killed relay's unmarked batch) were stored once
    stored = await db.run(lambda c: c.execute(
        text("SELECT count(*) FROM invariant_broker_messages")).scalar_one(), write=False)
    assert stored == total


async def _pending_below(relay: OutboxRelay, n: int) -> bool:
    return (await relay.lag()).pending < n


async def _effects_at_least(db: ReadModelDatabase, n: int) -> bool:
    try:
        rows, _ = await db.run(count_effects, write=False)
    except Exception:  # the table is not there yet
        return False
    return rows >= n
