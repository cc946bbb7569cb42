"""``/metrics`` on a running shop: admins only, and its figures move as the shop works
(commands counted and timed, events appended, the projections' lag, a parked message in
the dead letters, a dead job, the broker's reconnects)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Connection

from invariant.clock import utc_now
from invariant.config import Settings
from invariant.domain.errors import ConfigurationError
from invariant.messaging import jobs
from invariant.messaging.errors import BrokerError
from invariant.messaging.port import Delivery, Message
from invariant.telemetry import metrics
from shop.config import ShopSettings
from shop.platform.broker_watch import BrokerWatch
from tests.shop.conftest import ShopServer, eventually, serve, shop_settings
from tests.shop.shopping import place

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _scrape(server: ShopServer, admin: dict[str, str]) -> Samples:
    response = await server.client.get("/metrics", headers=admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_only_admins_and_the_metrics_token_scrape_metrics(tmp_path: Path) -> None:
    token = "scraper-" + "s" * 40
    async with serve(replace(_settings(tmp_path), metrics_token=token)) as server:
        assert (await server.client.get("/metrics")).status_code == 401
        customer = await server.customer("nosy@shop.test")
        assert (await server.client.get("/metrics", headers=customer)).status_code == 403
        for good in (await server.admin(), {"Authorization": f"Bearer {token}"}):
            assert (await server.client.get("/metrics", headers=good)).status_code == 200
        wrong = {"Authorization": f"Bearer {token[:-1]}x"}
        assert (await server.client.get("/metrics", headers=wrong)).status_code == 401
        # the scraper's token opens /metrics only
        assert (await server.client.get("/status", headers={
            "Authorization": f"Bearer {token}"})).status_code == 401


def test_a_short_metrics_token_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="SHOP_METRICS_TOKEN must be at least 32"):
        ShopSettings.from_env({"SHOP_METRICS_TOKEN": "short"})


async def test_the_figures_move_as_the_shop_works(tmp_path: Path) -> None:
    async with serve(_settings(tmp_path)) as server:
        admin = await server.admin()
        customer = await server.customer("counted@shop.test")
        before = await _scrape(server, admin)
        order_id = await place(server, customer, ("mouse", 1))
        await server.mail("counted@shop.test", f"Order {order_id} received")
        await server.shop.broker.publish([Message(
            str(uuid.uuid4()), "order.placed", "poison", 1, {"order_id": "o-1"},
            {"version": 1})])

        def dead_job(conn: Connection) -> None:
            job = jobs.enqueue(conn, "notifications.send_email", {}, now=utc_now())
            conn.execute(jobs.jobs.update().where(jobs.jobs.c.id == job).values(
                state=jobs.DEAD))
        await server.shop.read_models.run(dead_job)

        async def parked() -> Samples | None:
            now = await _scrape(server, admin)
            return now if _value(now, "invariant_dead_letters",
                                 consumer="notifications") == 1 else None
        after = await eventually(parked, what="the poison message parked, on /metrics")

    placed = {"command": "PlaceOrder", "outcome": "ok"}
    assert _value(after, "invariant_commands_total", **placed) == _value(
        before, "invariant_commands_total", **placed) + 1
    timed = "invariant_command_duration_seconds_count"
    assert _value(after, timed, command="PlaceOrder") == _value(
        before, timed, command="PlaceOrder") + 1
    assert _value(after, "invariant_events_appended_total") > _value(
        before, "invariant_events_appended_total")
    assert _value(after, "invariant_jobs_dead", job="notifications.send_email") == 1
    assert _value(after, "invariant_database_up") == 1
    projections = [labels for name, labels in after if name == "invariant_projection_lag_events"]
    assert projections, "no projection lag reported"
    running = [dict(labels) for (name, labels), value in after.items()
               if name == "invariant_projection_state" and value == 1]
    assert {r["state"] for r in running} <= {"running", "rebuilding"}
    assert ("invariant_outbox_backlog", frozenset()) in after
    assert ("invariant_outbox_oldest_age_seconds", frozenset()) in after


class _Flaky:
    """A broker whose first fetch fails (its server was away), then answers."""

    name = "flaky"

    def __init__(self) -> None:
        self.calls = 0

    async def fetch(self, group: str, *, max_messages: int, timeout: float  # noqa: ASYNC109
                    ) -> Sequence[Delivery]:
        self.calls += 1
        if self.calls == 1:
            raise BrokerError("connection refused")
        return []


async def test_a_broker_answering_again_counts_a_reconnect() -> None:
    registry = metrics.enable_metrics()
    watch = BrokerWatch(_Flaky())  # type: ignore[arg-type]
    before = registry.get_sample_value("invariant_broker_reconnects_total",
                                       {"broker": "flaky"}) or 0.0
    with contextlib.suppress(BrokerError):
        await watch.fetch("g", max_messages=1, timeout=0)
    for _ in range(2):
        await watch.fetch("g", max_messages=1, timeout=0)
    assert registry.get_sample_value("invariant_broker_reconnects_total",
                                     {"broker": "flaky"}) == before + 1


def _settings(tmp_path: Path) -> ShopSettings:
    return shop_settings(tmp_path, Settings(store="sqlite", sqlite_path=tmp_path / "shop.db"))
