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
    with pytest.raises(ConfigurationError, match="0 seconds or more"):
        Backpressure(FastAPI(), Backlog({"none": nothing}, limit=0), wait=-1)
    with pytest.raises(ConfigurationError, match="more than 0 seconds"):
        Backlog({"none": nothing}, limit=0, pace=0)


async def test_held_requests_go_through_once_the_workers_drained_the_backlog(
    tmp_path: Path
) -> None:
    """With ``wait``, intake over the bound is held, not refused, until the workers caught
    up; however many requests are held, they share one measure per ``pace``."""
    import asyncio
    import time

    waiting = {"items": 8}
    measured = 0

    async def work() -> int:
        nonlocal measured
        measured += 1
        return waiting["items"]

    backlog = Backlog({"work": work}, limit=5, pace=0.02)
    app = _app(backlog)
    app.user_middleware[0].kwargs["wait"] = 30.0
    app.middleware_stack = None  # built again with the wait
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        began = time.monotonic()
        held = [asyncio.create_task(client.post("/orders")) for _ in range(20)]
        await asyncio.sleep(0.3)
        assert not any(task.done() for task in held)  # over the bound: held, not refused
        assert (await client.get("/orders")).status_code == 200  # reads are not held
        waiting["items"] = 5  # the workers caught up
        answers = await asyncio.gather(*held)
        elapsed = time.monotonic() - began
    assert [a.status_code for a in answers] == [202] * 20
    backpressure = app.middleware_stack
    while not isinstance(backpressure, Backpressure):
        backpressure = backpressure.app  # type: ignore[attr-defined]
    assert backpressure.held == 20
    assert measured <= elapsed / 0.02 + 2  # one measure per pace, not one per request


async def test_a_request_held_longer_than_the_wait_is_refused() -> None:
    async def stuck() -> int:
        return 8

    app = _app(Backlog({"stuck": stuck}, limit=5, pace=0.02))
    app.user_middleware[0].kwargs["wait"] = 0.2
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        refused = await client.post("/orders")
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "2"
    assert refused.json()["waiting"] == 8


async def test_a_measure_that_fails_keeps_the_last_count_and_says_why() -> None:
    counts = {"relay": 3}
    broken = False

    async def relay() -> int:
        return counts["relay"]

    async def broker() -> int:
        if broken:
            raise ConnectionError("nats is down")
        return 4

    backlog = Backlog({"relay": relay, "broker": broker}, limit=5)
    await backlog.measure()
    assert backlog.waiting == {"relay": 3, "broker": 4} and backlog.failures == {}
    broken, counts["relay"] = True, 1
    await backlog.measure()  # does not raise: intake is not answered with an error
    assert backlog.waiting == {"relay": 1, "broker": 4}
    assert backlog.failures == {"broker": "ConnectionError: nats is down"}
    broken = False
    await backlog.measure()
    assert backlog.failures == {}


async def test_work_is_held_while_the_oldest_row_waited_too_long_however_few_wait(
    tmp_path: Path
) -> None:
    """With ``oldest``, a few rows that have waited too long hold intake as a count over
    the limit would; the count still bounds too; once relayed, intake goes on."""
    from datetime import timedelta

    from invariant.clock import utc_now

    storage = SQLiteStorage(tmp_path / "app.db")
    await storage.setup()
    database = SQLiteReadModels(tmp_path / "app.db")
    later = timedelta()
    relay = OutboxRelay(database, InProcessBroker(), batch_size=100,
                        clock=lambda: utc_now() + later)
    await relay.setup()
    backlog = Backlog({"outbox": relay.waiting}, limit=5, oldest=2.0, interval=0.0,
                      max_age=0.0)
    transport = httpx.ASGITransport(app=_app(backlog))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            await commit_events(storage, streams=1, per_stream=2)  # 2 rows, just written
            assert (await client.post("/orders")).status_code == 202  # few and young

            later = timedelta(seconds=3)  # the relay has not run for 3 s
            refused = await client.post("/orders")
            assert refused.status_code == 503
            problem = refused.json()
            assert (problem["waiting"], problem["limit"]) == (2, 5)  # under the count
            assert problem["oldest"] >= 3.0 and problem["oldest_limit"] == 2.0
            assert "waited 3." in problem["detail"]
            assert (await client.get("/orders")).status_code == 200  # reads pass

            assert await relay.run_once() == 2
            assert (await client.post("/orders")).status_code == 202
            assert backlog.ages == {"outbox": 0.0}

            later = timedelta()
            await commit_events(storage, streams=2, per_stream=4)  # 8 young rows
            assert (await client.post("/orders")).json()["waiting"] == 8  # the count bounds
    finally:
        await database.close()
        await storage.close()


async def test_an_item_seen_waiting_is_taken_to_wait_on_until_measured_again() -> None:
    """A measure is kept for ``interval``; meanwhile the oldest item it saw ages with the
    clock, so a stale measure holds intake sooner, never later. A worker with nothing
    waiting has no age, however old its last measure."""
    import asyncio

    from invariant.backlog import Waiting

    seen = {"relay": Waiting(1, 0.5), "jobs": Waiting(0, 0.0)}

    async def relay() -> Waiting:
        return seen["relay"]

    async def jobs() -> Waiting:
        return seen["jobs"]

    backlog = Backlog({"relay": relay, "jobs": jobs}, limit=100, oldest=1.0,
                      interval=3600.0, max_age=3600.0)
    await backlog.measure()
    assert not await backlog.over()  # 0.5 s, and a moment
    await asyncio.sleep(0.6)
    assert backlog.age > 1.0
    assert await backlog.over()  # not measured again: the item is taken to wait on
    seen["relay"] = Waiting(0, 0.0)  # relayed meanwhile
    await backlog.measure()
    await asyncio.sleep(0.6)
    assert backlog.age == 0.0 and not await backlog.over()


async def test_held_requests_go_on_once_the_oldest_item_is_young_enough() -> None:
    import asyncio

    from invariant.backlog import Waiting

    seen = Waiting(3, 10.0)  # few, but old

    async def work() -> Waiting:
        return seen

    backlog = Backlog({"work": work}, limit=100, oldest=1.0, pace=0.02)
    app = _app(backlog)
    app.user_middleware[0].kwargs["wait"] = 30.0
    app.middleware_stack = None
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        held = [asyncio.create_task(client.post("/orders")) for _ in range(5)]
        await asyncio.sleep(0.3)
        assert not any(task.done() for task in held)
        seen = Waiting(3, 0.1)  # the same count, caught up to recent work
        answers = await asyncio.gather(*held)
    assert [a.status_code for a in answers] == [202] * 5


def test_an_oldest_wait_of_zero_or_less_is_refused() -> None:
    async def nothing() -> int:
        return 0

    with pytest.raises(ConfigurationError, match="oldest wait is more than 0 seconds"):
        Backlog({"none": nothing}, limit=0, oldest=0)


def _slow_app(max_in_flight: int, wait: float = 0.0) -> tuple[FastAPI, dict[str, int]]:
    """An app whose requests take a while, counting how many run at once."""
    import asyncio

    seen = {"now": 0, "most": 0, "done": 0}

    async def nothing() -> int:
        return 0

    app = FastAPI()

    async def slow() -> None:
        seen["now"] += 1
        seen["most"] = max(seen["most"], seen["now"])
        await asyncio.sleep(0.05)
        seen["now"] -= 1
        seen["done"] += 1

    @app.post("/orders", status_code=202)
    async def place() -> dict[str, str]:
        await slow()
        return {"placed": "yes"}

    @app.get("/orders")
    async def listing() -> list[str]:
        await slow()
        return []

    @app.post("/admin/stock")
    async def stock() -> dict[str, str]:
        await slow()
        return {"set": "yes"}

    app.add_middleware(Backpressure, backlog=Backlog({"none": nothing}, limit=5),
                       exempt=("/admin/",), wait=wait, max_in_flight=max_in_flight)
    return app, seen


async def test_at_most_max_in_flight_requests_are_handled_at_once_and_every_one_is() -> None:
    import asyncio

    app, seen = _slow_app(max_in_flight=3)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        answers = await asyncio.gather(*(client.post("/orders") for _ in range(12)),
                                       *(client.get("/orders") for _ in range(6)))
    assert [a.status_code for a in answers] == [202] * 12 + [200] * 6
    assert seen["most"] == 3  # reads take a slot too
    assert seen["done"] == 18


async def test_exempt_paths_do_not_wait_for_a_slot() -> None:
    import asyncio

    app, seen = _slow_app(max_in_flight=1)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        answers = await asyncio.gather(*(client.post("/admin/stock") for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    assert seen["most"] == 5  # an operator's requests are never queued behind customers'


async def test_a_request_that_waits_longer_than_the_wait_for_a_slot_is_refused() -> None:
    import asyncio

    app, seen = _slow_app(max_in_flight=1, wait=0.01)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        answers = await asyncio.gather(*(client.post("/orders") for _ in range(4)))
    codes = sorted(a.status_code for a in answers)
    assert codes[0] == 202 and 503 in codes
    refused = next(a for a in answers if a.status_code == 503)
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["content-type"] == MEDIA_TYPE
    body = refused.json()
    assert body["max_in_flight"] == 1
    assert "the most this service handles at once" in body["detail"]
    assert seen["done"] == codes.count(202)  # a refused request did no work


@pytest.mark.parametrize("bound", [0, -3])
def test_a_max_in_flight_under_one_is_refused(bound: int) -> None:
    async def nothing() -> int:
        return 0

    with pytest.raises(ConfigurationError, match="max_in_flight is at least 1 request"):
        Backpressure(FastAPI(), Backlog({"none": nothing}, limit=5), max_in_flight=bound)
