"""Kafka adapter (aiokafka): one topic, the stream id as the record key (so each stream
stays in one partition, in order), an idempotent producer (``enable_idempotence``,
``acks=all``: the producer's own retries never duplicate a record), consumer groups
committing offsets on acknowledgement.

Kafka has no de-duplication across producers: a relay that republishes a batch produces the
records again, and the consumer's inbox drops them. A new group reads the topic from the
beginning (``auto_offset_reset="earliest"``). No Kafka server runs on our CI machine: the
contract suite runs against this adapter only when ``INVARIANT_TEST_KAFKA_BOOTSTRAP`` is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from invariant.messaging.errors import BrokerError
from invariant.messaging.port import Delivery, Message

_ERRORS = (KafkaError, OSError, asyncio.TimeoutError)


class _KafkaDelivery:
    def __init__(self, consumer: Any, record: Any) -> None:
        self._consumer, self._record = consumer, record
        self._message = Message.decode(record.value)

    @property
    def message(self) -> Message:
        return self._message

    @property
    def redelivered(self) -> bool:
        return False  # Kafka cannot tell; the inbox does not need to know

    async def ack(self) -> None:
        tp = TopicPartition(self._record.topic, self._record.partition)
        try:
            await self._consumer.commit({tp: self._record.offset + 1})
        except _ERRORS as exc:
            raise BrokerError(f"Kafka commit failed (the record will be redelivered): {exc}"
                              ) from exc

    async def nack(self) -> None:
        tp = TopicPartition(self._record.topic, self._record.partition)
        self._consumer.seek(tp, self._record.offset)


class KafkaBroker:
    """Kafka at ``bootstrap`` (``host:port[,host:port]``), topic ``topic``."""

    name = "kafka"

    def __init__(self, bootstrap: str, *, topic: str = "invariant") -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._producer: Any = None
        self._consumers: dict[str, Any] = {}

    async def connect(self) -> None:
        """Start the idempotent producer."""
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True,
                                    acks="all")
        try:
            await producer.start()
        except _ERRORS as exc:
            raise BrokerError(f"cannot connect to Kafka at {self.bootstrap}: {exc}") from exc
        self._producer = producer

    async def close(self) -> None:
        """Stop the producer and the consumers."""
        producer, self._producer = self._producer, None
        consumers, self._consumers = list(self._consumers.values()), {}
        for client in [*consumers, producer]:
            if client is not None:
                await client.stop()

    async def declare(self, group: str) -> None:
        """The group's consumer (reading from the earliest offset when new)."""
        if group in self._consumers:
            return
        consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap,
                                    group_id=group, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        try:
            await consumer.start()
        except _ERRORS as exc:
            raise BrokerError(f"cannot start Kafka consumer {group!r}: {exc}") from exc
        self._consumers[group] = consumer

    async def publish(self, batch: Sequence[Message]) -> None:
        """Send every record, then wait for all acknowledgements."""
        if self._producer is None:
            raise BrokerError("KafkaBroker is not connected: call connect() first")
        try:
            sent = [await self._producer.send(
                self.topic, m.encode(), key=m.stream_id.encode(),
                headers=[("message_id", m.message_id.encode())]) for m in batch]
            await asyncio.gather(*sent)
        except _ERRORS as exc:
            raise BrokerError(f"Kafka publish failed: {exc}") from exc

    async def fetch(self, group: str, *, max_messages: int, timeout: float  # noqa: ASYNC109
                    ) -> list[Delivery]:
        """Up to ``max_messages`` records of the group's partitions."""
        await self.declare(group)
        consumer = self._consumers[group]
        try:
            batches = await consumer.getmany(timeout_ms=int(timeout * 1000),
                                             max_records=max_messages)
        except _ERRORS as exc:
            raise BrokerError(f"Kafka fetch failed: {exc}") from exc
        return [_KafkaDelivery(consumer, r) for records in batches.values() for r in records]

    def drop_connection(self) -> None:
        """Close the clients' connections (tests: they must reconnect, losing nothing)."""
        for client in [self._producer, *self._consumers.values()]:
            inner = getattr(client, "_client", None)
            for conn in list(getattr(inner, "_conns", {}).values()):
                conn.close()
