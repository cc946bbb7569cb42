"""The services mode as real processes: every context its own ``python -m shop serve``
on PostgreSQL (a role and schema each, under a prefix of this run) and NATS (a stream of
this run), ordering and notifications twice, the gateway in front. One set per module."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import httpx2 as httpx
import pytest
import pytest_asyncio

from shop.deployment.plan import Plan
from shop.deployment.ports import free_run
from shop.deployment.removal import remove
from shop.deployment.supervisor import GATEWAY, Supervisor
from tests.conftest import POSTGRES_DSN, require_server
from tests.messaging.conftest import NATS_URL, REDIS_URL
from tests.shop.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, SECRET, ShopServer

SETTINGS = {"SHOP_PAYMENT_TIMEOUT": "3", "SHOP_RESERVATION_TIMEOUT": "10",
            "SHOP_PROVIDER_TIMEOUT": "0.5", "SHOP_ADMIN_EMAIL": ADMIN_EMAIL}


@dataclass
class Running:
    """The running set, and the gateway as a client sees it."""

    supervisor: Supervisor
    gateway: ShopServer

    @property
    def plan(self) -> Plan:
        return self.supervisor.plan


async def _reachable() -> None:
    import asyncpg
    import nats

    try:
        conn = await asyncpg.connect(POSTGRES_DSN, timeout=5)
        await conn.close()
    except (OSError, asyncpg.PostgresError) as exc:
        require_server("PostgreSQL", exc)
    try:
        client = await nats.connect(NATS_URL, connect_timeout=3, max_reconnect_attempts=0)
        await client.close()
    except Exception as exc:  # nats raises its own errors, not OSError
        require_server("NATS", exc)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    await _reachable()
    run = uuid.uuid4().hex[:8]
    plan = Plan(admin_dsn=POSTGRES_DSN, broker_url=NATS_URL, channel=f"svc{run}",
                data=tmp_path_factory.mktemp("services"), secret=SECRET,
                admin_password=ADMIN_PASSWORD, gateway_port=free_run(1),
                smtp_port=free_run(1), first_port=free_run(13),
                prefix=f"t{run}_", redis_url=REDIS_URL, passed_on=SETTINGS,
                pool=2)  # beside the rest of the suite on one server's max_connections
    try:
        # Thirteen processes start at once beside the rest of the suite: give them time.
        async with Supervisor(plan, ready_within=240) as supervisor, httpx.AsyncClient(
                base_url=supervisor.url(GATEWAY), timeout=30) as client:
            yield Running(supervisor, ShopServer(cast(Any, None), supervisor.url(GATEWAY),
                                                 client, plan.data / "mail"))
    finally:
        await remove(plan)

