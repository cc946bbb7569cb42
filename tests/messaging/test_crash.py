"""Kill the relay, then a consumer, mid-batch with SIGKILL; restart: every event delivered,
effects applied exactly once (counted). Through RabbitMQ and Kafka, which have no
de-duplication of their own, so the duplicates a killed relay causes do reach the
consumer's inbox."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from invariant.messaging.brokers.kafka import KafkaBroker
from invariant.messaging.brokers.rabbitmq import RabbitMQBroker
from invariant.messaging.port import Broker
from invariant.messaging.relay import OutboxRelay
from invariant.sql.database import SQLiteReadModels
from invariant.store import SQLiteStorage
from tests.messaging.conftest import RABBITMQ_URL, require_port
from tests.messaging.helpers import Crashes, commit_events, pending_below, recover, wait_until
from tests.messaging.kafka_server import KafkaServer, delete_topic


@dataclass(frozen=True)
class Target:
    """The broker under test: for this process, for the worker processes
    (``tests.messaging.worker``'s arguments), and how to cut its connections.
    ``declare_ahead``: the consumer's group must exist before anything is sent (RabbitMQ
    routes only to existing queues; a new Kafka group reads its topic from the start, and
    a member held here would take partitions away from the consumer process)."""

    broker: Broker
    worker_args: tuple[str, ...]
    drop: Callable[[], Awaitable[None]]
    declare_ahead: bool


async def rabbitmq_drop() -> None:
    closing = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "close_all_connections", "relay test: drop",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    assert await asyncio.wait_for(closing.wait(), 30) == 0


@pytest.fixture(params=["rabbitmq", "kafka"])
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    name = f"crash{uuid.uuid4().hex[:8]}"
    if request.param == "kafka":
        kafka: KafkaServer = request.getfixturevalue("kafka")
        broker = KafkaBroker(kafka.bootstrap, topic=name, idempotent=kafka.idempotent)

        async def kafka_drop() -> None:
            broker.drop_connection()  # aborts the sockets, as a network failure would
        mode = "idempotent" if kafka.idempotent else "plain"
        yield Target(broker, ("kafka", name, kafka.bootstrap, mode), kafka_drop,
                     declare_ahead=False)
        await delete_topic(kafka, name)
        return
    require_port("RabbitMQ", 5672)
    yield Target(RabbitMQBroker(RABBITMQ_URL, exchange=name), ("rabbitmq", name),
                 rabbitmq_drop, declare_ahead=True)
    import aio_pika

    conn = await aio_pika.connect(RABBITMQ_URL)
    channel = await conn.channel()
    await channel.queue_delete(f"{name}.effects")
    await channel.exchange_delete(name)
    await conn.close()


async def test_killed_relay_and_consumer_lose_nothing_and_apply_once(
    tmp_path: Path, target: Target
) -> None:
    events_db, effects_db = tmp_path / "events.db", tmp_path / "effects.db"
    storage = SQLiteStorage(events_db)
    await storage.setup()
    broker = target.broker
    events, effects = SQLiteReadModels(events_db), SQLiteReadModels(effects_db)
    crashes = Crashes("tests.messaging.worker")
    try:
        total = await commit_events(storage, streams=5, per_stream=60)
        await broker.connect()
        if target.declare_ahead:
            await broker.declare("effects")
        relay = OutboxRelay(events, broker, lease=1.0)
        await relay.setup()
        await crashes.kill_relay_mid_stream(relay, total, str(events.path), *target.worker_args)
        await crashes.kill_consumer_mid_batch(effects, total, str(effects.path),
                                              *target.worker_args)
        # anything redelivered late would show up as a second effect
        await recover(relay, broker, effects, total, settle=1.0)
    finally:
        await crashes.close()
        await broker.close()
        await events.close()
        await effects.close()
        await storage.close()


async def test_the_relay_loses_nothing_when_the_broker_drops_its_connection(
    tmp_path: Path, target: Target
) -> None:
    from invariant.testing.broker_contract import drain

    storage = SQLiteStorage(tmp_path / "events.db")
    await storage.setup()
    total = await commit_events(storage, streams=4, per_stream=100)
    broker = target.broker
    events = SQLiteReadModels(tmp_path / "events.db")
    relay = OutboxRelay(events, broker, batch_size=20)
    stop = asyncio.Event()
    try:
        await broker.connect()
        await broker.declare("effects")
        await relay.setup()
        task = asyncio.create_task(relay.run(stop=stop, idle=0.01, retry=0.2))
        await wait_until(lambda: pending_below(relay, total - 60), 30)
        await target.drop()
        await wait_until(lambda: pending_below(relay, 1), 30)
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
