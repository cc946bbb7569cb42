"""What the Kafka adapter says when it cannot start (the broker contract, run against Kafka
too, is in test_brokers.py; the relay and consumer through Kafka in test_crash.py)."""

from __future__ import annotations

import socket
import uuid

import pytest

from invariant.messaging.brokers.kafka import KafkaBroker
from invariant.messaging.errors import BrokerError
from tests.messaging.kafka_server import KafkaServer


async def test_the_idempotent_producer_is_refused_by_tansu_with_advice(kafka: KafkaServer
                                                                        ) -> None:
    """Tansu answers aiokafka's InitProducerId (version 0) with UNKNOWN_SERVER_ERROR; the
    error names the option that works there. A real Kafka cluster grants it."""
    broker = KafkaBroker(kafka.bootstrap, topic=f"t{uuid.uuid4().hex[:10]}")
    try:
        if kafka.tansu:
            with pytest.raises(BrokerError, match=r"refused the idempotent producer "
                               r"\(InitProducerId: .*UnknownError.*idempotent=False"):
                await broker.connect()
        else:
            await broker.connect()
    finally:
        await broker.close()


async def test_an_unreachable_server_is_reported_as_such() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        bootstrap = f"127.0.0.1:{s.getsockname()[1]}"
    broker = KafkaBroker(bootstrap)
    with pytest.raises(BrokerError, match=f"cannot connect to Kafka at {bootstrap}: "):
        await broker.connect()
