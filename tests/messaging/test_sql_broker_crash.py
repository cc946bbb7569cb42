"""The embedded mode with the SQL broker: the outbox, the broker's tables and the consumer's
effects all in the application's one database. Kill the relay, then a consumer, mid-batch
with SIGKILL; restart: every event delivered, its effect applied exactly once (counted).

With the in-process broker, what the killed relay had published and marked (and the killed
consumer had not handled) would be gone with the process; here it waits in the database.
"""

from __future__ import annotations

from sqlalchemy import text

from invariant.messaging.brokers.sql import SqlBroker
from invariant.messaging.relay import OutboxRelay
from invariant.sql.database import ReadModelDatabase
from invariant.store.port import EventStorage
from tests.messaging.helpers import Crashes, commit_events, recover


async def test_killed_relay_and_consumer_on_the_sql_broker_lose_nothing_and_apply_once(
    app_db: tuple[EventStorage, str, str | None]
) -> None:
    storage, url, schema = app_db
    db = ReadModelDatabase.for_url(url, schema=schema)
    broker = SqlBroker(db, visibility=1.0)
    crashes = Crashes("tests.messaging.sql_broker_worker")
    args = [url] if schema is None else [url, schema]
    try:
        total = await commit_events(storage, streams=5, per_stream=60)
        await broker.connect()
        await broker.declare("effects")  # the consumer's group exists before anything is sent
        relay = OutboxRelay(db, broker, lease=1.0)
        await relay.setup()

        # the relay dies mid-stream: some rows published (and marked), the rest not
        pending = await crashes.kill_relay_mid_stream(relay, total, *args)
        # what it published is in the database, not in a dead process's memory
        assert await broker.pending("effects") >= total - pending

        # a consumer dies mid-batch (holding claimed, unacknowledged deliveries)
        await crashes.kill_consumer_mid_batch(db, total, *args)

        # a late redelivery (visibility 1 s) would add an effect
        await recover(relay, broker, db, total, settle=1.5)
        assert await broker.pending("effects") == 0
        # republished rows (the killed relay's unmarked batch) were stored once
        stored = await db.run(lambda c: c.execute(
            text("SELECT count(*) FROM invariant_broker_messages")).scalar_one(), write=False)
        assert stored == total
    finally:
        await crashes.close()
        await broker.close()
        await db.close()
