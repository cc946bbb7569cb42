"""A relay or consumer process for the crash tests (killed with SIGKILL mid-batch).

python -m tests.messaging.worker relay EVENTS_DB EXCHANGE
python -m tests.messaging.worker consume EFFECTS_DB EXCHANGE
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence

from sqlalchemy import Connection

from invariant.messaging.consumer import Consumer
from invariant.messaging.port import Message
from invariant.messaging.rabbitmq import RabbitMQBroker
from invariant.messaging.relay import OutboxRelay
from invariant.projections.database import SQLiteReadModels
from tests.messaging.conftest import RABBITMQ_URL
from tests.messaging.helpers import effects_metadata, record_effect


class SlowRabbit(RabbitMQBroker):
    async def publish(self, batch: Sequence[Message]) -> None:
        await super().publish(batch)
        await asyncio.sleep(0.2)  # published, not yet marked: the window a kill hits


def slow_effect(conn: Connection, message: Message) -> None:
    record_effect(conn, message)
    time.sleep(0.003)


async def main(mode: str, path: str, exchange: str) -> None:
    db = SQLiteReadModels(path)
    broker = SlowRabbit(RABBITMQ_URL, exchange=exchange, prefetch=50)
    await broker.connect()
    stop = asyncio.Event()
    if mode == "relay":
        await OutboxRelay(db, broker, batch_size=20, lease=1.0).run(stop=stop, idle=0.02)
    else:
        await db.run(effects_metadata.create_all)
        consumer = Consumer("effects", db, slow_effect)
        await consumer.setup()
        print("ready", flush=True)
        await consumer.consume(broker, stop=stop, batch=50, poll=0.2)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
