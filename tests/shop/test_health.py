"""/health is a cheap liveness check; /ready says whether the shop may take traffic (the
database answers, projections are current, the broker answers) and /status (admins) shows
what an operator should look at: failed projections, parked processes, dead letters, dead
jobs (issue #14: /health said "ok" whatever happened)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from invariant.config import Settings
from invariant.messaging import deadletters, jobs
from invariant.messaging.port import Message
from invariant.messaging.published_language import Amount
from invariant.processes import NEEDS_ATTENTION, ProcessRecord
from invariant.processes import persistence as processes
from invariant.store.records import AppendRequest, Commit, NewEvent, StreamState
from shop.notifications.application import SEND_EMAIL
from shop.ordering import published as ordering
from tests.shop.conftest import PROBLEM, ShopServer, eventually, free_port, serve, shop_settings

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)



async def readiness(server: ShopServer, status: int) -> dict[str, Any] | None:
    """The body of /ready once it answers ``status`` (None before)."""
    response = await server.client.get("/ready")
    if response.status_code != status:
        return None
    body: dict[str, Any] = response.json()
    return body


async def test_a_healthy_shop_is_alive_and_ready_with_nothing_waiting(server: ShopServer
                                                                      ) -> None:
    assert (await server.client.get("/health")).json() == {"status": "ok"}
    ready = await eventually(lambda: readiness(server, 200), what="the shop to be ready")
    assert ready == {"status": "ready", "attention": {
        "parked_processes": 0, "dead_letters": 0, "dead_jobs": 0}}
    assert (await server.client.get("/status")).status_code == 401
    status = (await server.client.get("/status", headers=await server.admin())).json()
    assert status["ready"] is True and status["reasons"] == []
    assert status["broker"] == {"name": "sql", "failing_since": None, "last_error": None}
    assert status["outbox_pending"] >= 0 and status["outbox_oldest_seconds"] >= 0
    names = {p["name"] for p in status["projections"]}
    assert names == {"inventory_levels", "ordering_orders"}
    assert all(p["state"] == "running" for p in status["projections"])
    assert (status["parked_processes"], status["dead_letters"], status["dead_jobs"]) == (
        {}, {}, {})


async def test_a_failed_projection_makes_the_shop_not_ready(server: ShopServer) -> None:
    poison = NewEvent(uuid.uuid4(), "inventory.StockLevelSet", 1, {"product_id": "mouse"})
    await server.shop.app.storage.commit(Commit(appends=(
        AppendRequest("inventory_stock-poison", StreamState.NO_STREAM, (poison,)),)))
    position = await server.shop.app.storage.head_position()
    problem = await eventually(lambda: readiness(server, 503), timeout=30,
                               what="/ready to report the failed projection")
    assert problem["type"] == "urn:shop:problem:not-ready" and problem["status"] == 503
    assert problem["reasons"] == [f"projection inventory_levels v1 failed at event {position}"]
    assert "StockLevelSet" not in problem["detail"]  # no error text without a token
    response = await server.client.get("/ready")
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"] == "5"
    assert (await server.client.get("/health")).status_code == 200  # alive all the same
    status = (await server.client.get("/status", headers=await server.admin())).json()
    assert status["ready"] is False and status["reasons"] == problem["reasons"]
    [failed] = [p for p in status["projections"] if p["state"] == "failed"]
    assert (failed["name"], failed["error_position"]) == ("inventory_levels", position)
    assert "on_hand" in failed["error"]  # why: the event lacks a field


def _park_a_process(conn: Connection) -> None:
    processes.write(conn, ProcessRecord(
        "fulfilment-o-parked", "fulfilment", "o-parked", {}, status=NEEDS_ATTENTION,
        error="a command kept failing"), NOW)


def _dead_job(conn: Connection) -> None:
    jobs.enqueue(conn, SEND_EMAIL, {"not": "an email"}, max_attempts=1, now=NOW)


async def test_parked_processes_dead_letters_and_dead_jobs_are_reported(
        server: ShopServer) -> None:
    await server.shop.read_models.run(_park_a_process)
    await server.shop.read_models.run(_dead_job)  # the worker runs it, it fails, it is dead
    usd = Amount(value=Decimal("89.00"), currency="USD")
    placed = ordering.OrderPlaced(
        order_id="o-1", customer_id="c-1", total=usd, occurred_at=NOW,
        lines=[ordering.OrderLine(product_id="mouse", name="Mouse", quantity=1,
                                  unit_price=usd)]).to_outbox(source="test", occurred_at=NOW)
    unsupported = Message(str(uuid.uuid4()), placed.message_type, "o-1",
                          placed.schema_version, placed.data, {**placed.metadata, "version": 99})
    await server.shop.broker.publish([unsupported])  # each consumer of it parks it

    async def all_reported() -> dict[str, Any] | None:
        body = await readiness(server, 200)
        counts = None if body is None else body["attention"]
        return body if counts == {"parked_processes": 1, "dead_letters": 3,
                                  "dead_jobs": 1} else None

    await eventually(all_reported, timeout=30, what="/ready to count what waits")
    status = (await server.client.get("/status", headers=await server.admin())).json()
    assert status["ready"] is True  # they wait for an operator; the shop still serves
    assert status["parked_processes"] == {"fulfilment": 1}
    assert status["dead_letters"] == {"analytics": 1, "billing": 1, "notifications": 1}
    assert status["dead_jobs"] == {SEND_EMAIL: 1}
    letters = await server.shop.read_models.run(deadletters.list_parked, write=False)
    assert {letter.message.message_id for letter in letters} == {unsupported.message_id}


class NatsServer:
    """A NATS JetStream server of this test's own, to stop and start again."""

    def __init__(self, port: int, store: Path) -> None:
        self.port, self.store = port, store
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            "nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-js",
            "-sd", str(self.store),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await eventually(self._listening, what=f"nats-server on port {self.port}")

    async def _listening(self) -> bool | None:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.close()
            return True
        return None

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


async def test_a_broker_that_does_not_answer_makes_the_shop_not_ready_until_it_is_back(
        tmp_path: Path) -> None:
    nats = NatsServer(free_port(), tmp_path / "nats")
    settings = Settings.from_env({
        "INVARIANT_STORE": "sqlite", "INVARIANT_SQLITE_PATH": str(tmp_path / "shop.db"),
        "INVARIANT_BROKER": "nats", "INVARIANT_BROKER_URL": f"nats://127.0.0.1:{nats.port}"})
    await nats.start()
    try:
        async with serve(shop_settings(tmp_path, settings)) as server:
            await eventually(lambda: readiness(server, 200), what="the shop to be ready")
            await nats.stop()
            problem = await eventually(lambda: readiness(server, 503), timeout=30,
                                       what="/ready to see the broker gone")
            [reason] = problem["reasons"]
            assert reason.startswith("the broker (nats) does not answer since ")
            status = (await server.client.get("/status", headers=await server.admin())).json()
            assert status["broker"]["failing_since"] is not None
            # Which call failed last (a fetch, an ack, a publish) depends on timing; each
            # is reported as the adapter's BrokerError naming NATS.
            assert status["broker"]["last_error"].startswith("BrokerError: "), status
            assert "NATS" in status["broker"]["last_error"], status
            await nats.start()
            await eventually(lambda: readiness(server, 200), timeout=30,
                             what="the shop to be ready again")
    finally:
        await nats.stop()



async def test_the_backlog_intake_respects_counts_every_worker_and_is_documented(
    tmp_path: Path, backend: Settings
) -> None:
    from invariant.http import Backpressure
    from shop.platform.backpressure import shop_backlog
    from shop.platform.http import create_app

    async with serve(shop_settings(tmp_path, backend, backlog_limit=0,
                                   backlog_wait=0.5, backlog_oldest=0.25)) as server:
        backlog = shop_backlog(server.shop)
        assert (backlog.limit, backlog.oldest) == (0, 0.25)
        await backlog.measure()
        assert set(backlog.waiting) >= {"outbox", "processes", "jobs"}
        assert all(count >= 0 for count in backlog.waiting.values())
        assert set(backlog.ages) == set(backlog.waiting)  # every worker says its oldest
        assert all(age >= 0 for age in backlog.ages.values())
        app = create_app(server.shop, manage=False)
        assert [(m.kwargs["exempt"], m.kwargs["wait"]) for m in app.user_middleware
                if m.cls is Backpressure] == [(("/admin/", "/console"), 0.5)]
        spec = (await server.client.get("/openapi.json")).json()
        placing = spec["paths"]["/orders/{order_id}/place"]["post"]
        assert "Retry-After" in placing["responses"]["503"]["description"]


async def test_an_idle_shop_has_no_backlog_after_orders_so_intake_is_never_held_for_ever(
    tmp_path: Path, backend: Settings
) -> None:
    """Every worker's count returns to 0 once the work is done: a count that stayed up
    (events no worker will ever handle, a group nobody consumes) would hold intake for
    good once it passed SHOP_BACKLOG_LIMIT."""
    from shop.platform.backpressure import shop_backlog
    from tests.shop.shopping import place, settled

    async with serve(shop_settings(tmp_path, backend)) as server:
        headers = await server.customer("idle@example.com")
        for _ in range(3):
            await settled(server, headers, await place(server, headers, ("mouse", 1)))
        await server.mail("idle@example.com", "shipped")
        backlog = shop_backlog(server.shop)

        async def drained() -> bool | None:
            await backlog.measure()
            return True if backlog.total == 0 else None
        await eventually(drained, what="every worker's backlog to be 0")
        assert backlog.failures == {}
        assert backlog.age == 0.0  # nothing waits, so nothing is old
