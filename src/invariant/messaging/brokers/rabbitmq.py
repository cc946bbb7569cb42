"""RabbitMQ adapter (aio-pika): a durable topic exchange, a durable queue per group bound to
it, publisher confirms, persistent messages carrying ``message_id``.

RabbitMQ has no de-duplication of its own (the de-duplication plugin is not part of the
server): a republished message is delivered again and the consumer's inbox drops it.
The robust connection reconnects and re-declares queues and consumers after a drop;
unacknowledged deliveries of the dropped channel are redelivered by the server.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Collection, Sequence

from invariant.extras import needs_extra
from invariant.messaging.errors import BrokerError
from invariant.messaging.port import Delivery, Message, read_body

with needs_extra("rabbitmq"):
    import aio_pika
    import aio_pika.exceptions
    import aiormq.exceptions
    from aio_pika.abc import (
        AbstractIncomingMessage,
        AbstractRobustChannel,
        AbstractRobustConnection,
        AbstractRobustExchange,
        AbstractRobustQueue,
    )

_ERRORS = (aio_pika.exceptions.AMQPException, aiormq.exceptions.AMQPError, OSError,
           asyncio.TimeoutError, RuntimeError)


def _lasting_id(incoming: AbstractIncomingMessage) -> str:
    """What names a delivery across its redeliveries: the AMQP message id when the publisher
    set one, else the digest of its body (delivery tags change with each delivery)."""
    if incoming.message_id:
        return f"rabbitmq:{incoming.message_id}"
    return f"rabbitmq:{hashlib.sha256(incoming.body).hexdigest()[:40]}"


class _RabbitDelivery:
    def __init__(self, incoming: AbstractIncomingMessage) -> None:
        self._incoming = incoming
        self._message = read_body(incoming.body, _lasting_id(incoming))

    @property
    def message(self) -> Message:
        return self._message

    @property
    def redelivered(self) -> bool:
        return bool(self._incoming.redelivered)

    async def ack(self) -> None:
        try:
            await self._incoming.ack()
        except _ERRORS as exc:
            raise BrokerError(f"RabbitMQ ack failed (the message will be redelivered): {exc}"
                              ) from exc

    async def nack(self) -> None:
        try:
            await self._incoming.nack(requeue=True)
        except _ERRORS as exc:
            raise BrokerError(f"RabbitMQ nack failed: {exc}") from exc


class RabbitMQBroker:
    """RabbitMQ at ``url`` (e.g. ``amqp://guest:guest@127.0.0.1:5672/``)."""

    name = "rabbitmq"

    def __init__(self, url: str = "amqp://guest:guest@127.0.0.1:5672/", *,
                 exchange: str = "invariant", prefetch: int = 256) -> None:
        self.url = url
        self.exchange_name = exchange
        self.prefetch = prefetch
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractRobustExchange | None = None
        self._inboxes: dict[str, asyncio.Queue[AbstractIncomingMessage]] = {}
        self._declared: set[str] = set()

    async def connect(self) -> None:
        """A robust connection, a confirming channel, the exchange."""
        if self._connection is not None:
            return
        try:
            self._connection = await aio_pika.connect_robust(self.url, timeout=5,
                                                             reconnect_interval=0.2)
            channel = await self._connection.channel(publisher_confirms=True)
            assert isinstance(channel, AbstractRobustChannel)
            self._channel = channel
            await channel.set_qos(prefetch_count=self.prefetch)
            exchange = await channel.declare_exchange(
                self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
            assert isinstance(exchange, AbstractRobustExchange)
            self._exchange = exchange
        except _ERRORS as exc:
            raise BrokerError(f"cannot connect to RabbitMQ at {self.url}: {exc}") from exc

    async def close(self) -> None:
        """Close the connection."""
        connection, self._connection = self._connection, None
        self._channel = self._exchange = None
        self._inboxes.clear()
        self._declared.clear()
        if connection is not None:
            await connection.close()

    def queue_name(self, group: str) -> str:
        """The durable queue of ``group``."""
        return f"{self.exchange_name}.{group}"

    async def declare(self, group: str, *, types: Collection[str] | None = None
                      ) -> None:
        """The group's durable queue, bound to the routing key of each of ``types`` (the
        message type), or to every message (``#``) when ``types`` is None. One queue per
        group, so a stream's messages keep their order whatever their types. A group that
        read every type before and names its types now loses its ``#`` binding, after its
        types' bindings are in place (nothing published meanwhile is missed); a type it no
        longer reads keeps its binding (AMQP cannot list them), and the consumer skips it.
        A type with ``*`` or ``#`` in it, wildcards in a binding, binds the group to every
        message instead."""
        await self._queue(group, types)
        self._declared.add(group)

    async def _queue(self, group: str, types: Collection[str] | None = None, *,
                     bind: bool = True) -> AbstractRobustQueue:
        if self._channel is None or self._exchange is None:
            raise BrokerError("RabbitMQBroker is not connected: call connect() first")
        if types is not None and any("*" in t or "#" in t for t in types):
            types = None
        try:
            queue = await self._channel.declare_queue(self.queue_name(group), durable=True)
            if bind and types is None:
                await queue.bind(self._exchange, routing_key="#")
            elif bind:
                for message_type in sorted(types or ()):
                    await queue.bind(self._exchange, routing_key=message_type)
                await queue.unbind(self._exchange, routing_key="#")
        except _ERRORS as exc:
            raise BrokerError(f"cannot declare RabbitMQ queue for {group!r}: {exc}") from exc
        assert isinstance(queue, AbstractRobustQueue)
        return queue

    async def _inbox(self, group: str) -> asyncio.Queue[AbstractIncomingMessage]:
        """The local buffer the group's consumer fills (started on the first fetch)."""
        if group not in self._inboxes:
            # A group declared here keeps its bindings; one fetched undeclared reads all.
            queue = await self._queue(group, bind=group not in self._declared)
            inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
            try:
                await queue.consume(inbox.put)
            except _ERRORS as exc:
                raise BrokerError(f"cannot consume RabbitMQ queue of {group!r}: {exc}"
                                  ) from exc
            self._inboxes[group] = inbox
        return self._inboxes[group]

    async def publish(self, batch: Sequence[Message]) -> None:
        """Publish persistent messages and wait for every confirm."""
        if self._exchange is None:
            raise BrokerError("RabbitMQBroker is not connected: call connect() first")
        exchange = self._exchange
        try:
            confirms = [
                exchange.publish(
                    aio_pika.Message(m.encode(), message_id=m.message_id, type=m.message_type,
                                     content_type="application/json",
                                     headers=dict(m.trace_headers()),
                                     delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=m.message_type, timeout=10)
                for m in batch
            ]
            # Frames go out in call order on one channel; confirms may arrive together.
            await asyncio.gather(*confirms)
        except _ERRORS as exc:
            raise BrokerError(f"RabbitMQ publish not confirmed: {exc}") from exc

    async def fetch(self, group: str, *, max_messages: int, timeout: float  # noqa: ASYNC109
                    ) -> list[Delivery]:
        """Deliveries pushed to the group's consumer (up to the prefetch)."""
        inbox = await self._inbox(group)
        out: list[Delivery] = []
        try:
            async with asyncio.timeout(timeout):
                first = await inbox.get()
        except TimeoutError:
            return out
        out.append(_RabbitDelivery(first))
        while len(out) < max_messages and not inbox.empty():
            out.append(_RabbitDelivery(inbox.get_nowait()))
        return out
