"""Kill the relay, then a consumer, mid-batch with SIGKILL; restart: every event delivered,
effects applied exactly once (counted). Through RabbitMQ, which has no de-duplication of its
own, so the duplicates a killed relay causes do reach the consumer's inbox."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from invariant.messaging.consumer import Consumer
from invariant.messaging.rabbitmq import RabbitMQBroker
from invariant.messaging.relay import OutboxRelay
from invariant.projections.database import SQLiteReadModels
from invariant.store import SQLiteStorage
from tests.messaging.conftest import RABBITMQ_URL, require_port
from tests.messaging.helpers import commit_events, count_effects, record_effect

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def exchange() -> AsyncIterator[str]:
    require_port("RabbitMQ", 5672)
    name = f"crash{uuid.uuid4().hex[:8]}"
    yield name
    import aio_pika

    conn = await aio_pika.connect(RABBITMQ_URL)
    channel = await conn.channel()
    await channel.queue_delete(f"{name}.effects")
    await channel.exchange_delete(name)
    await conn.close()


async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.messaging.worker", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})


async def wait_until(predicate: object, seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while not await predicate():  # type: ignore[operator]  # noqa: ASYNC110 (polls a db)
            await asyncio.sleep(0.02)


async def test_killed_relay_and_consumer_lose_nothing_and_apply_once(
    tmp_path: Path, exchange: str
) -> None:
    events_db, effects_db = tmp_path / "events.db", tmp_path / "effects.db"
    storage = SQLiteStorage(events_db)
    await storage.setup()
    broker = RabbitMQBroker(RABBITMQ_URL, exchange=exchange)
    events, effects = SQLiteReadModels(events_db), SQLiteReadModels(effects_db)
    procs: list[asyncio.subprocess.Process] = []
    try:
        await _scenario(storage, broker, events, effects, exchange, procs)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await broker.close()
        await events.close()
        await effects.close()
        await storage.close()


async def _scenario(storage: SQLiteStorage, broker: RabbitMQBroker, events: SQLiteReadModels,
                    effects: SQLiteReadModels, exchange: str,
                    procs: list[asyncio.subprocess.Process]) -> None:
    total = await commit_events(storage, streams=5, per_stream=60)
    await broker.connect()
    await broker.declare("effects")  # the consumer's queue exists before anything is sent
    relay = OutboxRelay(events, broker, lease=1.0)
    await relay.setup()

    # the relay dies mid-stream: some rows published, the rest not
    proc = await spawn("relay", str(events.path), exchange)
    procs.append(proc)
    await wait_until(lambda: _pending_below(relay, total - 60), 30)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    assert (await relay.lag()).pending > 0

    # a consumer dies mid-batch
    consumer_proc = await spawn("consume", str(effects.path), exchange)
    procs.append(consumer_proc)
    assert consumer_proc.stdout is not None
    assert (await asyncio.wait_for(consumer_proc.stdout.readline(), 30)).strip() == b"ready"
    await wait_until(lambda: _effects_at_least(effects, 40), 30)
    consumer_proc.send_signal(signal.SIGKILL)
    await consumer_proc.wait()
    applied, _ = await effects.run(count_effects, write=False)
    assert 0 < applied < total

    # restarted in this process: a relay (taking over the dead one's claims) and a consumer
    stop = asyncio.Event()
    consumer = Consumer("effects", effects, record_effect)
    await consumer.setup()
    tasks = [asyncio.create_task(relay.run(stop=stop, idle=0.02)),
             asyncio.create_task(consumer.consume(broker, stop=stop, batch=100, poll=0.2))]
    try:
        await wait_until(lambda: _effects_at_least(effects, total), 45)
        await asyncio.sleep(1.0)  # anything redelivered late would show up as a second effect
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    rows, distinct = await effects.run(count_effects, write=False)
    print(f"restarted consumer: {consumer.outcomes}")  # duplicates the inbox dropped
    assert (rows, distinct) == (total, total)
    assert (await relay.lag()).pending == 0
    inbox_rows = await effects.run(
        lambda c: c.execute(text("SELECT count(*) FROM invariant_inbox")).scalar_one(),
        write=False)
    assert inbox_rows == total


async def _pending_below(relay: OutboxRelay, n: int) -> bool:
    return (await relay.lag()).pending < n


async def _effects_at_least(effects: SQLiteReadModels, n: int) -> bool:
    try:
        rows, _ = await effects.run(count_effects, write=False)
    except Exception:  # the table is not there yet
        return False
    return rows >= n


async def test_the_relay_loses_nothing_when_the_broker_drops_its_connection(
    tmp_path: Path, exchange: str
) -> None:
    from invariant.testing.broker_contract import drain

    storage = SQLiteStorage(tmp_path / "events.db")
    await storage.setup()
    total = await commit_events(storage, streams=4, per_stream=100)
    broker = RabbitMQBroker(RABBITMQ_URL, exchange=exchange)
    events = SQLiteReadModels(tmp_path / "events.db")
    relay = OutboxRelay(events, broker, batch_size=20)
    stop = asyncio.Event()
    try:
        await broker.connect()
        await broker.declare("effects")
        await relay.setup()
        task = asyncio.create_task(relay.run(stop=stop, idle=0.01, retry=0.2))
        await wait_until(lambda: _pending_below(relay, total - 60), 30)
        closing = await asyncio.create_subprocess_exec(
            "rabbitmqctl", "close_all_connections", "relay test: drop",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        assert await asyncio.wait_for(closing.wait(), 30) == 0
        await wait_until(lambda: _pending_below(relay, 1), 30)
        stop.set()
        await task
        ids: set[str] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while len(ids) < total and loop.time() < deadline:  # duplicates may come too
            ids |= {d.message.message_id for d in await drain(broker, "effects", total,
                                                               seconds=1)}
        assert len(ids) == total
    finally:
        stop.set()
        await broker.close()
        await events.close()
        await storage.close()
