"""The contract every :class:`~invariant.messaging.port.Broker` adapter must keep.

Reuse it for your own adapter::

    class TestMyBroker(BrokerContract):
        dedupes = True                      # the broker drops republished message ids

        @pytest.fixture
        def broker_factory(self):
            channel = f"t{uuid.uuid4().hex[:8]}"
            return lambda: MyBroker(channel=channel, redeliver_after=1.0)

        @pytest.fixture
        def drop_connection(self):
            return lambda broker: ...       # sever the client's connection

Every broker the factory makes must use the same channel (so a second instance sees the
first one's messages) and redeliver unacknowledged messages after about a second.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import pytest

from invariant.messaging.errors import BrokerError
from invariant.messaging.port import Broker, Delivery, Message

BrokerFactory = Callable[[], Broker]
DropConnection = Callable[[Broker], Awaitable[None] | None]
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def message(n: int, stream: str = "s-1") -> Message:
    """A test message numbered ``n``."""
    return Message(str(uuid.uuid4()), "Happened", stream, 1, {"n": n}, {"source": "test"},
                   position=n)


async def drain(broker: Broker, group: str, want: int, *, ack: bool = True,
                seconds: float = 10.0) -> list[Delivery]:
    """Fetch until ``want`` deliveries came or ``seconds`` passed (acknowledging them)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    got: list[Delivery] = []
    while len(got) < want and loop.time() < deadline:
        try:
            batch = await broker.fetch(group, max_messages=want - len(got), timeout=0.5)
        except BrokerError:
            await asyncio.sleep(0.1)  # reconnecting
            continue
        for d in batch:
            if ack:
                try:
                    await d.ack()
                except BrokerError:
                    continue  # redelivered later
            got.append(d)
    return got


async def publish_retrying(broker: Broker, batch: list[Message], seconds: float = 15.0
                           ) -> None:
    """Publish, retrying while the broker reconnects (as the relay does)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        try:
            await broker.publish(batch)
            return
        except BrokerError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.2)


class BrokerContract:
    """Subclass in a test module; provide ``broker_factory`` and ``drop_connection``."""

    dedupes = True
    reports_redelivery = True

    def native_headers(self, delivery: Delivery) -> Mapping[str, str] | None:
        """The broker's own headers of ``delivery``, for brokers that have them (None: the
        trace context travels in the body's metadata only)."""
        return None

    @pytest.fixture
    def broker_factory(self) -> BrokerFactory:
        raise NotImplementedError("provide a broker_factory fixture: () -> Broker")

    @pytest.fixture
    def drop_connection(self) -> DropConnection:
        raise NotImplementedError("provide a drop_connection fixture: broker -> None")

    @pytest.fixture
    async def broker(self, broker_factory: BrokerFactory) -> AsyncIterator[Broker]:
        b = broker_factory()
        await b.connect()
        try:
            yield b
        finally:
            await b.close()

    async def test_the_w3c_trace_context_travels_with_the_message(self, broker: Broker
                                                                  ) -> None:
        context = {"traceparent": TRACEPARENT, "tracestate": "invariant=test"}
        traced = replace(message(1), metadata={"source": "test", **context})
        await broker.declare("g")
        await broker.publish([traced])
        (delivery,) = await drain(broker, "g", 1)
        assert delivery.message.metadata == traced.metadata
        headers = self.native_headers(delivery)
        if headers is not None:
            assert {k: headers.get(k) for k in context} == context

    async def test_a_group_receives_published_messages_in_order(self, broker: Broker
                                                                ) -> None:
        await broker.declare("g")
        sent = [message(i) for i in range(20)]
        await broker.publish(sent[:7])
        await broker.publish(sent[7:])
        got = await drain(broker, "g", 20)
        assert [d.message for d in got] == sent
        assert await broker.fetch("g", max_messages=10, timeout=0.3) == []

    async def test_every_group_receives_every_message(self, broker: Broker) -> None:
        await broker.declare("a")
        await broker.declare("b")
        sent = [message(i) for i in range(5)]
        await broker.publish(sent)
        for group in ("a", "b"):
            assert [d.message.message_id for d in await drain(broker, group, 5)] == [
                m.message_id for m in sent]

    async def test_a_republished_message_id_is_dropped_or_delivered_with_its_id(self, broker: Broker
                                                                   ) -> None:
        await broker.declare("g")
        sent = [message(i) for i in range(5)]
        await broker.publish(sent)
        await broker.publish(sent[2:])  # a relay that died before marking them published
        got = await drain(broker, "g", 10, seconds=1.5)
        ids = [d.message.message_id for d in got]
        if self.dedupes:
            assert ids == [m.message_id for m in sent]
        else:  # delivered again with the same id, for the consumer's inbox to drop
            assert ids == [m.message_id for m in sent + sent[2:]]

    async def test_an_unacknowledged_message_is_delivered_again(
        self, broker: Broker, broker_factory: BrokerFactory
    ) -> None:
        await broker.declare("g")
        sent = [message(i) for i in range(3)]
        await broker.publish(sent)
        first = await drain(broker, "g", 3, ack=False)
        assert len(first) == 3
        await broker.close()  # the consumer dies without acknowledging
        second = broker_factory()
        await second.connect()
        try:
            again = await drain(second, "g", 3, seconds=15)
            assert sorted(d.message.message_id for d in again) == sorted(
                m.message_id for m in sent)
            assert all(d.redelivered for d in again) or not self.reports_redelivery
        finally:
            await second.close()

    async def test_nothing_is_lost_when_the_connection_drops_mid_stream(
        self, broker: Broker, drop_connection: DropConnection
    ) -> None:
        await broker.declare("g")
        sent = [message(i, stream=f"s-{i % 3}") for i in range(60)]
        await publish_retrying(broker, sent[:30])
        got = await drain(broker, "g", 10)
        dropped = drop_connection(broker)
        if dropped is not None:
            await dropped
        for i in range(30, 60, 10):
            await publish_retrying(broker, sent[i:i + 10])
        wanted = {m.message_id for m in sent}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while not wanted <= {d.message.message_id for d in got} and loop.time() < deadline:
            got += await drain(broker, "g", 60, seconds=1)
        assert {d.message.message_id for d in got} >= wanted
        # per stream, first deliveries keep the publish order
        for stream in ("s-0", "s-1", "s-2"):
            seen: list[Any] = []
            for d in got:
                if d.message.stream_id == stream and d.message.position not in seen:
                    seen.append(d.message.position)
            assert seen == sorted(seen)
