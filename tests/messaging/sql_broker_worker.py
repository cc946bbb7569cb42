"""A relay or consumer process on the SQL broker, for the crash test (killed with SIGKILL
mid-batch). Everything lives in the application's one database (the embedded mode).

python -m tests.messaging.sql_broker_worker relay|consume URL [SCHEMA]
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from invariant.messaging.brokers.sql import SqlBroker
from invariant.messaging.port import Message
from invariant.sql.database import ReadModelDatabase
from tests.messaging.helpers import run_worker


class SlowSqlBroker(SqlBroker):
    async def publish(self, batch: Sequence[Message]) -> None:
        await super().publish(batch)
        await asyncio.sleep(0.2)  # published, not yet marked: the window a kill hits


async def main(mode: str, url: str, schema: str | None) -> None:
    db = ReadModelDatabase.for_url(url, schema=schema)
    # the relay's publishes are slowed down, not the consumer's acknowledgements
    broker = (SlowSqlBroker if mode == "relay" else SqlBroker)(db, visibility=1.0)
    await broker.connect()
    await run_worker(mode, db, broker)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
