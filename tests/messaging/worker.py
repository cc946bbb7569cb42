"""A relay or consumer process for the crash tests (killed with SIGKILL mid-batch).

python -m tests.messaging.worker relay|consume DB rabbitmq EXCHANGE
python -m tests.messaging.worker relay|consume DB kafka TOPIC BOOTSTRAP idempotent|plain
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from invariant.messaging.brokers.kafka import KafkaBroker
from invariant.messaging.brokers.rabbitmq import RabbitMQBroker
from invariant.messaging.port import Broker, Message
from invariant.sql.database import SQLiteReadModels
from tests.messaging.conftest import RABBITMQ_URL
from tests.messaging.helpers import run_worker


class SlowPublish:
    """Mixed into a broker: each publish lingers after the broker confirmed it."""

    async def publish(self, batch: Sequence[Message]) -> None:
        await super().publish(batch)  # type: ignore[misc]
        await asyncio.sleep(0.2)  # published, not yet marked: the window a kill hits


class SlowRabbit(SlowPublish, RabbitMQBroker):
    pass


class SlowKafka(SlowPublish, KafkaBroker):
    pass


def broker(kind: str, channel: str, *kafka: str) -> Broker:
    """The broker the arguments name (see the module docstring)."""
    if kind == "rabbitmq":
        return SlowRabbit(RABBITMQ_URL, exchange=channel, prefetch=50)
    bootstrap, mode = kafka
    return SlowKafka(bootstrap, topic=channel, idempotent=mode == "idempotent")


async def main(mode: str, path: str, *spec: str) -> None:
    db = SQLiteReadModels(path)
    worker_broker = broker(*spec)
    await worker_broker.connect()
    await run_worker(mode, db, worker_broker)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
