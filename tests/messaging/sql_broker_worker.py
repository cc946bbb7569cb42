"""A relay or consumer process on the SQL broker, for the crash test (killed with SIGKILL
mid-batch). Everything lives in the application's one database (the embedded mode).

python -m tests.messaging.sql_broker_worker relay|consume URL [SCHEMA]
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence

from sqlalchemy import Connection

from invariant.messaging.consumer import Consumer
from invariant.messaging.port import Message
from invariant.messaging.relay import OutboxRelay
from invariant.messaging.sql_broker import SqlBroker
from invariant.projections.database import ReadModelDatabase
from tests.messaging.helpers import effects_metadata, record_effect


class SlowSqlBroker(SqlBroker):
    async def publish(self, batch: Sequence[Message]) -> None:
        await super().publish(batch)
        await asyncio.sleep(0.2)  # published, not yet marked: the window a kill hits


def slow_effect(conn: Connection, message: Message) -> None:
    record_effect(conn, message)
    time.sleep(0.003)


async def main(mode: str, url: str, schema: str | None) -> None:
    db = ReadModelDatabase.for_url(url, schema=schema)
    stop = asyncio.Event()
    broker: SqlBroker
    if mode == "relay":
        broker = SlowSqlBroker(db, visibility=1.0)
        await broker.connect()
        await OutboxRelay(db, broker, batch_size=20, lease=1.0).run(stop=stop, idle=0.02)
    else:
        broker = SqlBroker(db, visibility=1.0)
        await broker.connect()
        await db.run(effects_metadata.create_all)
        consumer = Consumer("effects", db, slow_effect)
        await consumer.setup()
        print("ready", flush=True)
        await consumer.consume(broker, stop=stop, batch=50, poll=0.2)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
