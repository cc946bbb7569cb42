"""A body that is not an invariant message, put on the channel by another program or
corrupted, is parked with its bytes: the group goes on with the messages after it, on every
broker's real server, instead of failing each fetch that meets it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, update

from invariant.messaging import deadletters
from invariant.messaging.brokers.kafka import KafkaBroker
from invariant.messaging.brokers.nats import NatsBroker
from invariant.messaging.brokers.rabbitmq import RabbitMQBroker
from invariant.messaging.brokers.redis_streams import RedisStreamsBroker
from invariant.messaging.brokers.sql import SqlBroker
from invariant.messaging.brokers.sql import messages as sql_messages
from invariant.messaging.consumer import HANDLED, PARKED, SKIPPED, Consumer, subscribed
from invariant.messaging.errors import UnreadableMessageError
from invariant.messaging.port import (
    MESSAGE_ID_LENGTH,
    UNREADABLE,
    Broker,
    Message,
    read_body,
)
from invariant.retry import RetryPolicy
from invariant.sql.database import ReadModelDatabase, SQLiteReadModels
from invariant.testing.broker_contract import message
from tests.messaging.conftest import NATS_URL, RABBITMQ_URL, REDIS_URL, require_port
from tests.messaging.kafka_server import KafkaServer, delete_topic

GARBAGE = b"\xff\xfe<not json at all>"
Inject = Callable[[Broker, bytes], Awaitable[None]]


@pytest.mark.parametrize(("body", "why"), [
    (GARBAGE, "not JSON: "),
    (b"[1, 2, 3]", "a JSON list, not an object"),
    (b'{"id": "m-1"}', "no type, stream, schema, data"),
    (b'{"id": 7, "type": "t", "stream": "s", "schema": 1, "data": {}}',
     "message_id 7 is not a non-empty string"),
    (b'{"id": "m", "type": "t", "stream": "s", "schema": "one", "data": {}}',
     "schema_version 'one' is not a whole number"),
    (b'{"id": "m", "type": "t", "stream": "s", "schema": 1, "data": [1]}',
     "data and metadata must be JSON objects"),
    (b'{"id": "m", "type": "t", "stream": "s", "schema": 1, "data": {}, "created_at": 1e300}',
     "OverflowError"),
    (b'"just a string"', "a JSON str, not an object"),
    (b"", "not JSON: "),
])
def test_a_body_that_is_not_a_message_is_read_as_unreadable(body: bytes, why: str) -> None:
    m = read_body(body, "nats:S:42")
    assert m.message_type == UNREADABLE
    assert m.message_id == "unreadable:nats:S:42"
    assert base64.b64decode(m.data["body"]) == body
    assert m.data["error"].startswith("the body is not an invariant message (")
    assert why in m.data["error"]


def test_a_long_broker_id_still_fits_the_inbox() -> None:
    m = read_body(GARBAGE, "kafka:" + "t" * 200 + ":0:12345")
    assert len(m.message_id) <= MESSAGE_ID_LENGTH
    assert m.message_id.startswith("unreadable:")
    assert m.data["broker_id"] == "kafka:" + "t" * 200 + ":0:12345"
    assert read_body(GARBAGE, "kafka:" + "t" * 200 + ":0:12345") == m  # the same each time
    assert read_body(GARBAGE, "kafka:" + "t" * 200 + ":0:12346").message_id != m.message_id


def test_a_message_reads_as_itself() -> None:
    m = message(3)
    assert read_body(m.encode(), "x") == m


# -- one consumer on each real broker -------------------------------------------------------


async def inject_nats(broker: Broker, body: bytes) -> None:
    assert isinstance(broker, NatsBroker)
    await broker._jetstream().publish(f"{broker.subject}.foreign", body, stream=broker.stream)


async def inject_rabbitmq(broker: Broker, body: bytes) -> None:
    import aio_pika

    assert isinstance(broker, RabbitMQBroker) and broker._exchange is not None
    # On a routing key the group reads: it is bound to its types' keys only.
    await broker._exchange.publish(aio_pika.Message(body), routing_key="Happened")


async def inject_redis(broker: Broker, body: bytes) -> None:
    assert isinstance(broker, RedisStreamsBroker)
    await broker._client().xadd(broker.stream, {"m": body})


async def inject_kafka(broker: Broker, body: bytes) -> None:
    assert isinstance(broker, KafkaBroker)
    producer = broker._producer
    assert producer is not None
    await producer.send_and_wait(broker.topic, body, key=b"foreign")


async def inject_sql(broker: Broker, body: bytes) -> None:
    """A stored message whose body was corrupted on disk."""
    assert isinstance(broker, SqlBroker)
    victim = message(99, stream="victim")
    await broker.publish([victim])

    def corrupt(conn: Connection) -> None:
        conn.execute(update(sql_messages).where(sql_messages.c.message_id == victim.message_id)
                     .values(body=body))
    await broker.database.run(corrupt)


@contextlib.asynccontextmanager
async def nats() -> AsyncIterator[tuple[Broker, Inject]]:
    require_port("NATS", 4222)
    stream = f"U{uuid.uuid4().hex[:10].upper()}"
    broker = NatsBroker(NATS_URL, stream=stream, ack_wait=1.0, request_timeout=2.0)
    await broker.connect()
    try:
        yield broker, inject_nats
    finally:
        await broker._jetstream().delete_stream(stream)
        await broker.close()


@contextlib.asynccontextmanager
async def rabbitmq() -> AsyncIterator[tuple[Broker, Inject]]:
    require_port("RabbitMQ", 5672)
    exchange = f"u{uuid.uuid4().hex[:10]}"
    broker = RabbitMQBroker(RABBITMQ_URL, exchange=exchange)
    await broker.connect()
    try:
        yield broker, inject_rabbitmq
    finally:
        assert broker._channel is not None
        await broker._channel.queue_delete(broker.queue_name("readers"))
        await broker._channel.exchange_delete(exchange)
        await broker.close()


@contextlib.asynccontextmanager
async def redis() -> AsyncIterator[tuple[Broker, Inject]]:
    require_port("Redis", 6379)
    stream = f"u:{uuid.uuid4().hex[:10]}"
    broker = RedisStreamsBroker(REDIS_URL, stream=stream, claim_after=1.0)
    await broker.connect()
    try:
        yield broker, inject_redis
    finally:
        client = broker._client()
        keys = [k async for k in client.scan_iter(f"{stream}*")]
        if keys:
            await client.delete(*keys)
        await broker.close()


@contextlib.asynccontextmanager
async def sql(tmp_path: Path) -> AsyncIterator[tuple[Broker, Inject]]:
    database = SQLiteReadModels(tmp_path / "broker.db")
    broker = SqlBroker(database, poll_interval=0.05)
    await broker.connect()
    try:
        yield broker, inject_sql
    finally:
        await broker.close()
        await database.close()


@contextlib.asynccontextmanager
async def kafka_broker(server: KafkaServer) -> AsyncIterator[tuple[Broker, Inject]]:
    topic = f"u{uuid.uuid4().hex[:10]}"
    broker = KafkaBroker(server.bootstrap, topic=topic, idempotent=server.idempotent)
    await broker.connect()
    try:
        yield broker, inject_kafka
    finally:
        await broker.close()
        await delete_topic(server, topic)


@contextlib.asynccontextmanager
async def sqlite_db(tmp_path: Path) -> AsyncIterator[ReadModelDatabase]:
    db = SQLiteReadModels(tmp_path / "consumer.db")
    try:
        yield db
    finally:
        await db.close()


async def consume_until(consumer: Consumer, broker: Broker, handled: int, parked: int
                        ) -> None:
    async with asyncio.timeout(30):
        while consumer.outcomes[HANDLED] < handled or consumer.outcomes[PARKED] < parked:
            deliveries = await broker.fetch(consumer.name, max_messages=10, timeout=0.5)
            await consumer.consume_batch(deliveries)


async def the_group_parks_the_body_and_goes_on(broker: Broker, inject: Inject,
                                               db: ReadModelDatabase) -> None:
    seen: list[str] = []
    consumer = Consumer("readers", db,
                        subscribed(lambda conn, m: seen.append(m.message_id), ["Happened"]),
                        backoff=RetryPolicy(attempts=2, first_delay=0.01))
    await consumer.setup()
    await consumer.declare(broker)
    first, last = message(1), message(2)
    await broker.publish([first])
    await inject(broker, GARBAGE)
    await broker.publish([last])
    await consume_until(consumer, broker, handled=2, parked=1)

    assert seen == [first.message_id, last.message_id]
    [letter] = await db.run(deadletters.list_parked, write=False)
    assert letter.consumer == "readers"
    assert letter.message.message_type == UNREADABLE
    assert base64.b64decode(letter.message.data["body"]) == GARBAGE
    assert letter.error.startswith("UnreadableMessageError: the body is not an invariant "
                                   "message (not JSON: ")
    assert consumer.outcomes[SKIPPED] == 0  # parked whatever types it reads

    # Acknowledged: nothing comes back (the adapters redeliver unacknowledged ones
    # within about a second here).
    await asyncio.sleep(1.5)
    again = await broker.fetch("readers", max_messages=10, timeout=0.5)
    assert [d.message.message_id for d in again] == []

    with pytest.raises(UnreadableMessageError, match="discard it in the console"):
        await consumer.replay(letter.id)
    assert len(await db.run(deadletters.list_parked, write=False)) == 1


async def test_nats(db: ReadModelDatabase) -> None:
    async with nats() as (broker, inject):
        await the_group_parks_the_body_and_goes_on(broker, inject, db)


async def test_rabbitmq(db: ReadModelDatabase) -> None:
    async with rabbitmq() as (broker, inject):
        await the_group_parks_the_body_and_goes_on(broker, inject, db)


async def test_redis_streams(tmp_path: Path) -> None:
    async with redis() as (broker, inject), sqlite_db(tmp_path) as db:
        await the_group_parks_the_body_and_goes_on(broker, inject, db)


async def test_sql_broker(tmp_path: Path) -> None:
    async with sql(tmp_path) as (broker, inject), sqlite_db(tmp_path) as db:
        await the_group_parks_the_body_and_goes_on(broker, inject, db)


async def test_kafka(tmp_path: Path, kafka: KafkaServer) -> None:
    async with kafka_broker(kafka) as (broker, inject), sqlite_db(tmp_path) as db:
        await the_group_parks_the_body_and_goes_on(broker, inject, db)


def test_a_message_of_the_readers_type_is_untouched_by_read_body() -> None:
    m = Message("id-1", "Happened", "s", 2, {"a": 1}, {"k": "v"}, 5, None)
    assert read_body(m.encode(), "sql:1") == m
