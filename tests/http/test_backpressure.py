"""Intake refused with 503 while background work is behind, accepted once it drained."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi import FastAPI

from invariant.backlog import Backlog
from invariant.domain.errors import ConfigurationError
from invariant.http import MEDIA_TYPE, Backpressure
from invariant.messaging.brokers.inprocess import InProcessBroker
from invariant.messaging.relay import OutboxRelay
from invariant.sql.database import SQLiteReadModels
from invariant.store import SQLiteStorage
from tests.messaging.helpers import commit_events


def _app(backlog: Backlog) -> FastAPI:
    app = FastAPI()

    @app.post("/orders", status_code=202)
    async def place() -> dict[str, str]:
        return {"placed": "yes"}

    @app.get("/orders")
    async def listing() -> list[str]:
        return []

    @app.post("/admin/stock")
    async def stock() -> dict[str, str]:
        return {"set": "yes"}

    app.add_middleware(Backpressure, backlog=backlog, retry_after=2, exempt=("/admin/",))
    return app


async def test_work_is_refused_past_the_bound_and_accepted_once_the_workers_drained_it(
    tmp_path: Path
) -> None:
    storage = SQLiteStorage(tmp_path / "app.db")
    await storage.setup()
    database = SQLiteReadModels(tmp_path / "app.db")
    relay = OutboxRelay(database, InProcessBroker(), batch_size=10)
    await relay.setup()

    async def outbox() -> int:
        return (await relay.lag()).pending

    backlog = Backlog({"outbox": outbox}, limit=5, interval=0.0, max_age=0.0)
    transport = httpx.ASGITransport(app=_app(backlog))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            assert (await client.post("/orders")).status_code == 202  # nothing waits yet
            await commit_events(storage, streams=2, per_stream=4)  # 8 rows, relay idle

            refused = await client.post("/orders")
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "2"
            assert refused.headers["content-type"] == MEDIA_TYPE
            problem = refused.json()
            assert problem["type"] == "urn:invariant:problem:busy"
            assert (problem["waiting"], problem["limit"]) == (8, 5)
            assert "8 items of background work are waiting" in problem["detail"]
            assert (await client.get("/orders")).status_code == 200  # reads pass
            assert (await client.post("/admin/stock")).status_code == 200  # exempt

            assert await relay.run_once() == 8  # the worker drains the backlog
            assert (await client.post("/orders")).status_code == 202
            assert backlog.waiting == {"outbox": 0}
    finally:
        await database.close()
        await storage.close()


def test_a_negative_bound_or_a_retry_after_under_a_second_is_refused() -> None:
    async def nothing() -> int:
        return 0

    with pytest.raises(ConfigurationError, match="0 or more items"):
        Backlog({"none": nothing}, limit=-1)
    with pytest.raises(ConfigurationError, match="at least 1 second"):
        Backpressure(FastAPI(), Backlog({"none": nothing}, limit=0), retry_after=0)
