"""A relay or consumer process on the SQL broker, for the crash test (killed with SIGKILL
mid-batch). Everything lives in the application's one database (the embedded mode).

python -m tests.messaging.sql_broker_worker relay|consume URL [SCHEMA]
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any

from invariant.messaging.brokers.sql import SqlBroker
from invariant.messaging.port import Message
from invariant.sql.database import ReadModelDatabase
from tests.messaging.helpers import run_worker


class SlowSqlBroker(SqlBroker):
    """The relay moves each batch into this broker in one transaction (it stores in the
    outbox's database): slowed inside it, so a kill lands while a batch is stored and not
    yet committed, and the batches before are committed."""

    def publish_in(self, conn: Any, batch: Sequence[Message]) -> int:
        added = super().publish_in(conn, batch)
        time.sleep(0.2)  # stored, not yet committed: the window a kill hits
        return added


async def main(mode: str, url: str, schema: str | None) -> None:
    db = ReadModelDatabase.for_url(url, schema=schema)
    # the relay's publishes are slowed down, not the consumer's acknowledgements
    broker = (SlowSqlBroker if mode == "relay" else SqlBroker)(db, visibility=1.0)
    await broker.connect()
    await run_worker(mode, db, broker)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
