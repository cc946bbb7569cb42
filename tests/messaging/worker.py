"""A relay or consumer process for the crash tests (killed with SIGKILL mid-batch).

python -m tests.messaging.worker relay EVENTS_DB EXCHANGE
python -m tests.messaging.worker consume EFFECTS_DB EXCHANGE
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from invariant.messaging.brokers.rabbitmq import RabbitMQBroker
from invariant.messaging.port import Message
from invariant.sql.database import SQLiteReadModels
from tests.messaging.conftest import RABBITMQ_URL
from tests.messaging.helpers import run_worker


class SlowRabbit(RabbitMQBroker):
    async def publish(self, batch: Sequence[Message]) -> None:
        await super().publish(batch)
        await asyncio.sleep(0.2)  # published, not yet marked: the window a kill hits


async def main(mode: str, path: str, exchange: str) -> None:
    db = SQLiteReadModels(path)
    broker = SlowRabbit(RABBITMQ_URL, exchange=exchange, prefetch=50)
    await broker.connect()
    await run_worker(mode, db, broker)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
