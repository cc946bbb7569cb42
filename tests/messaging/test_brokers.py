"""The broker contract, run against every adapter on its real server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import pytest

from invariant.backlog import Waiting
from invariant.messaging.brokers.inprocess import InProcessBroker
from invariant.messaging.brokers.kafka import KafkaBroker
from invariant.messaging.brokers.nats import NatsBroker
from invariant.messaging.brokers.rabbitmq import RabbitMQBroker
from invariant.messaging.brokers.redis_streams import RedisStreamsBroker
from invariant.messaging.port import Broker, CountsBacklog, Delivery, Message
from invariant.testing.broker_contract import (
    BrokerContract,
    BrokerFactory,
    DropConnection,
    drain,
    message,
)
from tests.messaging.conftest import NATS_URL, RABBITMQ_URL, REDIS_URL, require_port
from tests.messaging.kafka_server import KafkaServer, delete_topic


async def eventually_equal(read: Callable[[], Awaitable[object]], expected: object) -> bool:
    """True once ``read()`` gives ``expected`` (an acknowledgement reaches the server a
    moment after ``ack`` returns), False after 5 s."""
    for _ in range(100):
        if await read() == expected:
            return True
        await asyncio.sleep(0.05)
    return False


class TestInProcessBroker(BrokerContract):
    @pytest.fixture
    def broker_factory(self) -> BrokerFactory:
        shared = InProcessBroker()  # "reconnecting" finds the same in-memory log
        return lambda: shared

    @pytest.fixture
    def drop_connection(self) -> DropConnection:
        return lambda broker: None

    async def test_an_unacknowledged_message_is_delivered_again(
        self, broker: Broker, broker_factory: BrokerFactory
    ) -> None:
        # in process there is no second connection: a nack is how a message comes back
        await broker.declare("g")
        await broker.publish([m := message(1)])
        (d,) = await broker.fetch("g", max_messages=5, timeout=1)
        await d.nack()
        (again,) = await broker.fetch("g", max_messages=5, timeout=1)
        assert again.message == m
        assert again.redelivered


class TestNatsBroker(BrokerContract):
    def native_headers(self, delivery: Delivery) -> Mapping[str, str] | None:
        return dict(delivery._msg.headers or {})  # type: ignore[attr-defined]

    @pytest.fixture
    async def broker_factory(self) -> AsyncIterator[BrokerFactory]:
        require_port("NATS", 4222)
        stream = f"T{uuid.uuid4().hex[:10].upper()}"
        yield lambda: NatsBroker(NATS_URL, stream=stream, ack_wait=1.0,
                                   request_timeout=2.0)
        cleanup = NatsBroker(NATS_URL, stream=stream)
        await cleanup.connect()
        await cleanup._jetstream().delete_stream(stream)
        await cleanup.close()

    @pytest.fixture
    def drop_connection(self) -> DropConnection:
        def drop(broker: Broker) -> None:
            assert isinstance(broker, NatsBroker)
            broker.drop_connection()
        return drop

    async def test_a_batch_goes_side_by_side_across_streams_in_order_within_each(
        self, broker: Broker
    ) -> None:
        assert isinstance(broker, NatsBroker)
        await broker.declare("g")
        waves: list[list[str]] = []
        together = broker._publish_together

        async def counted(js: Any, messages: Any) -> None:
            waves.append([m.stream_id for m in messages])
            await together(js, messages)
        broker._publish_together = counted  # type: ignore[method-assign]
        sent = [message(i, stream=f"s-{i % 3}") for i in range(12)] + [message(12, "s-0")]
        await broker.publish(sent)
        # four round trips of one message of each stream, then s-0's last alone
        assert waves == [["s-0", "s-1", "s-2"]] * 4 + [["s-0"]]
        got = [d.message for d in await drain(broker, "g", 13)]
        for stream in ("s-0", "s-1", "s-2"):
            assert [m for m in got if m.stream_id == stream] == [
                m for m in sent if m.stream_id == stream]

    async def test_the_backlog_is_what_the_groups_have_not_acknowledged(
        self, broker: Broker
    ) -> None:
        assert isinstance(broker, CountsBacklog) and isinstance(broker, NatsBroker)
        assert await broker.backlog() == 0  # no group declared here yet
        await broker.declare("billing")
        await broker.declare("emails")
        await broker.publish([message(1), message(2), message(3)])
        assert await broker.backlog() == 6  # three for each group
        held = await broker.fetch("billing", max_messages=2, timeout=2)
        assert len(held) == 2
        assert await broker.backlog() == 6  # delivered, not acknowledged: still waiting
        for delivery in held:
            await delivery.ack()
        assert await eventually_equal(broker.backlog, 4)

    async def test_the_oldest_message_waiting_is_the_first_after_the_acknowledged_ones(
        self, broker: Broker
    ) -> None:
        """Its age is from the stream's publish time: a message delivered and not
        acknowledged still waits, one acknowledged out of order does not move it."""
        assert isinstance(broker, NatsBroker)
        assert await broker.waiting() == Waiting(0, 0.0)
        await broker.declare("billing")
        await broker.publish([message(1), message(2)])
        await asyncio.sleep(0.3)
        await broker.publish([message(3)])
        waiting = await broker.waiting()
        assert waiting.items == 3 and waiting.oldest >= 0.25  # message 1's age
        first, second = await broker.fetch("billing", max_messages=2, timeout=2)
        await second.ack()  # out of order: message 1 still waits
        assert (await broker.waiting()).oldest >= 0.25
        await first.ack()

        async def young() -> bool:
            waiting = await broker.waiting()
            return waiting.items == 1 and waiting.oldest < 0.25
        assert await eventually_equal(young, True)  # message 3, published later
        rest = await broker.fetch("billing", max_messages=1, timeout=2)
        await rest[0].ack()
        assert await eventually_equal(broker.waiting, Waiting(0, 0.0))


class TestRabbitMQBroker(BrokerContract):
    dedupes = False

    def native_headers(self, delivery: Delivery) -> Mapping[str, str] | None:
        headers = delivery._incoming.headers or {}  # type: ignore[attr-defined]
        return {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in headers.items()}

    @pytest.fixture
    async def broker_factory(self) -> AsyncIterator[BrokerFactory]:
        require_port("RabbitMQ", 5672)
        exchange = f"t{uuid.uuid4().hex[:10]}"
        yield lambda: RabbitMQBroker(RABBITMQ_URL, exchange=exchange)
        import aio_pika

        conn = await aio_pika.connect(RABBITMQ_URL)
        channel = await conn.channel()
        for group in ("g", "a", "b", "billing", "everything"):
            await channel.queue_delete(f"{exchange}.{group}")
        await channel.exchange_delete(exchange)
        await conn.close()

    @pytest.fixture
    def drop_connection(self) -> DropConnection:
        async def drop(broker: Broker) -> None:
            proc = await asyncio.create_subprocess_exec(
                "rabbitmqctl", "close_all_connections", "contract test: drop",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
        return drop


    async def test_a_group_that_names_its_types_gets_only_those_in_order(
        self, broker: Broker
    ) -> None:
        await broker.declare("billing", types={"A", "order.placed"})
        await broker.declare("everything")
        sent = [typed(1, "A"), typed(2, "B"), typed(3, "order.placed"), typed(4, "A"),
                typed(5, "order.placed.v2")]
        await broker.publish(sent)
        got = [d.message for d in await drain(broker, "everything", 5)]
        assert got == sent
        got = [d.message for d in await drain(broker, "billing", 3)]
        assert got == [sent[0], sent[2], sent[3]]  # in publish order, one stream
        assert await broker.fetch("billing", max_messages=5, timeout=0.5) == []

    async def test_a_group_that_read_every_type_keeps_only_its_types_once_it_names_them(
        self, broker: Broker, broker_factory: BrokerFactory
    ) -> None:
        await broker.declare("billing")  # an earlier version: every type
        await broker.publish([typed(1, "A"), typed(2, "B")])
        assert [d.message.data["n"] for d in await drain(broker, "billing", 2)] == [1, 2]
        await broker.close()  # the earlier version stops
        upgraded = broker_factory()  # the next version, another process
        await upgraded.connect()
        try:
            await upgraded.declare("billing", types={"A"})
            await upgraded.publish([typed(3, "B"), typed(4, "A")])
            got = await drain(upgraded, "billing", 1)
            assert [d.message.data["n"] for d in got] == [4]
            assert await upgraded.fetch("billing", max_messages=5, timeout=0.5) == []
        finally:
            await upgraded.close()

    async def test_a_type_with_a_wildcard_in_it_binds_the_group_to_every_message(
        self, broker: Broker
    ) -> None:
        await broker.declare("billing", types={"odd*type"})
        await broker.publish([typed(1, "odd*type"), typed(2, "B")])
        assert len(await drain(broker, "billing", 2)) == 2


def typed(n: int, message_type: str) -> Message:
    """Test message ``n`` of ``message_type``, all on one stream."""
    return replace(message(n), message_type=message_type)


class TestRedisStreamsBroker(BrokerContract):
    @pytest.fixture
    async def broker_factory(self) -> AsyncIterator[BrokerFactory]:
        require_port("Redis", 6379)
        stream = f"t:{uuid.uuid4().hex[:10]}"
        yield lambda: RedisStreamsBroker(REDIS_URL, stream=stream, claim_after=1.0)
        import redis.asyncio as redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(f"{stream}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()

    @pytest.fixture
    def drop_connection(self) -> DropConnection:
        async def drop(broker: Broker) -> None:
            assert isinstance(broker, RedisStreamsBroker)
            await broker.drop_connection()
        return drop


class TestKafkaBroker(BrokerContract):
    """On the Tansu broker the tests start (idempotence off: Tansu refuses it), or on the
    cluster of ``INVARIANT_TEST_KAFKA_BOOTSTRAP`` (idempotent)."""

    dedupes = False
    reports_redelivery = False

    def native_headers(self, delivery: Delivery) -> Mapping[str, str] | None:
        return {k: v.decode()
                for k, v in delivery._record.headers}  # type: ignore[attr-defined]

    @pytest.fixture
    async def broker_factory(self, kafka: KafkaServer) -> AsyncIterator[BrokerFactory]:
        topic = f"t{uuid.uuid4().hex[:10]}"
        yield lambda: KafkaBroker(kafka.bootstrap, topic=topic, idempotent=kafka.idempotent)
        await delete_topic(kafka, topic)

    @pytest.fixture
    def drop_connection(self) -> DropConnection:
        def drop(broker: Broker) -> None:
            assert isinstance(broker, KafkaBroker)
            broker.drop_connection()
        return drop
