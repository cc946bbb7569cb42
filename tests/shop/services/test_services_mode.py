"""shop as services, as real processes on PostgreSQL and NATS (see ``conftest``): the
demo passes through the gateway; services killed with SIGKILL mid-stream lose and double
nothing; catalog stopped is a quick 503 that heals; a service cannot read another's
tables."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections import Counter
from decimal import Decimal
from typing import Any

import asyncpg
import httpx2 as httpx
import pytest
from rich.console import Console

from shop.config import ShopSettings
from shop.demo import run_demo
from shop.platform.ownership import service_dsn
from tests.conftest import POSTGRES_DSN
from tests.shop.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, eventually
from tests.shop.console.kit import ConsoleClient
from tests.shop.services.conftest import Running

pytestmark = [pytest.mark.postgres, pytest.mark.services_mode,
              pytest.mark.xdist_group("services-mode"),
              pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(600)]

Headers = dict[str, str]
PRODUCTS = ("mouse", "webcam", "usb-hub", "desk-lamp")
SETTLED = ("shipped", "cancelled")


async def test_the_demo_passes_through_the_gateway(running: Running) -> None:
    settings = ShopSettings(data=running.plan.data, admin_email=ADMIN_EMAIL,
                            admin_password=ADMIN_PASSWORD, secret=running.plan.secret)
    console = Console(record=True, width=120)
    status = await run_demo(settings, running.gateway.base_url, console, settle_timeout=90)
    assert status == 0, console.export_text()[-3000:]
    assert "PASS" in console.export_text()


async def test_a_service_cannot_read_another_s_tables(running: Running) -> None:
    ordering = service_dsn(POSTGRES_DSN, running.plan.owner("ordering"))
    inventory = running.plan.owner("inventory").schema
    conn = await asyncpg.connect(ordering)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await conn.fetch(f'SELECT * FROM "{inventory}".invariant_events')
    finally:
        await conn.close()


async def test_the_gateway_s_correlation_id_is_carried_by_the_service_s_events(
        running: Running) -> None:
    customer = await running.gateway.customer("flow@example.com")
    answer = await running.gateway.client.post(
        "/orders", headers={**customer, "X-Correlation-ID": "trace-me-42"})
    assert answer.status_code == 201 and answer.headers["X-Correlation-ID"] == "trace-me-42"
    order_id = answer.json()["order_id"]
    ordering = running.plan.owner("ordering")
    conn = await asyncpg.connect(service_dsn(POSTGRES_DSN, ordering))
    try:
        found = await conn.fetch(
            f'SELECT metadata->>\'correlation_id\' AS c FROM "{ordering.schema}".'
            "invariant_events WHERE stream_id LIKE $1", f"%{order_id}")
    finally:
        await conn.close()
    assert [row["c"] for row in found] == ["trace-me-42"]


async def test_each_service_s_console_logs_in_through_identity(running: Running) -> None:
    # An operator sees and fixes a service's own parts (here ordering's projection) at
    # that service's /console, as an admin of identity.
    async with httpx.AsyncClient(base_url=running.supervisor.url("ordering"),
                                 timeout=30) as http:
        console = ConsoleClient(http)
        assert (await console.log_in(ADMIN_EMAIL, "not the password")).status_code != 303
        assert (await console.log_in(ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
        page = await console.page("/projections/table")
        assert page.status_code == 200
        assert 'id="projection-ordering_orders-v1"' in page.text


async def test_services_killed_mid_stream_lose_and_double_nothing(running: Running) -> None:
    gateway, supervisor = running.gateway, running.supervisor
    admin = await gateway.admin()
    await _expect(gateway, "PUT", "/admin/payments/provider", 200, admin, {"mode": "approve"})
    customers = [await gateway.customer(f"kill{n}@example.com") for n in range(3)]
    stock_before = await _stock(gateway, admin)
    placed: list[tuple[str, Headers, str]] = []
    stream = asyncio.create_task(_order_stream(gateway, customers, placed, count=30))

    for victim in ("inventory", "payments", "notifications"):
        await _until(lambda: len(placed) >= 5 + 8 * len(supervisor.exited()), placed)
        await supervisor.kill(victim)  # SIGKILL: nothing flushed, claims left behind
        await asyncio.sleep(1.0)
        await supervisor.restart(victim)
    await stream

    orders = {order_id: await _settled(gateway, headers, order_id)
              for order_id, headers, _ in placed}
    shipped = [o for o in orders.values() if o["status"] == "shipped"]
    assert shipped, "no order shipped"
    units = Counter(product for order_id, _, product in placed
                    if orders[order_id]["status"] == "shipped")

    async def stock_adds_up() -> bool | None:
        now = await _stock(gateway, admin)
        expected = {p: (stock_before[p][0] - units[p], stock_before[p][1]) for p in PRODUCTS}
        return True if {p: now[p] for p in PRODUCTS} == expected else None

    await eventually(stock_adds_up, timeout=60, what="stock to add up: on hand less shipped")
    for headers in customers:
        await _money_adds_up(gateway, headers, {order_id: orders[order_id]
                                                for order_id, whose, _ in placed
                                                if whose is headers})
    await _one_email_each(running, orders)


async def test_catalog_stopped_is_a_quick_503_then_works_again(running: Running) -> None:
    gateway, supervisor = running.gateway, running.supervisor
    customer = await gateway.customer("breaker@example.com")
    order_id = (await _expect(gateway, "POST", "/orders", 201, customer))["order_id"]
    await supervisor.stop("catalog")
    try:
        # Both instances of ordering ask catalog; each opens its own circuit to it.
        answers = [await gateway.client.post(f"/orders/{order_id}/items", headers=customer,
                                             json={"product_id": "mouse", "quantity": 1})
                   for _ in range(16)]
        assert {a.status_code for a in answers} == {503}, [a.text for a in answers]
        assert all(a.headers.get("Retry-After") for a in answers)
        for last in answers[-2:]:  # one from each instance
            assert "catalog is unavailable" in last.json()["detail"], last.text
            assert "circuit open" in last.json()["detail"], last.text
    finally:
        await supervisor.restart("catalog")

    async def added() -> bool | None:
        # Twice in a row: the gateway takes ordering's two instances in turn, and each
        # closes its own circuit to catalog.
        for _ in range(2):
            answer = await gateway.client.post(
                f"/orders/{order_id}/items", headers=customer,
                json={"product_id": "mouse", "quantity": 1})
            if answer.status_code != 201:
                return None
        return True

    await eventually(added, timeout=30, what="the breakers to close once catalog is back")


# -- helpers ----------------------------------------------------------------------------------

async def _expect(gateway: Any, method: str, path: str, status: int, headers: Headers,
                  json: Any = None) -> Any:
    answer = await gateway.client.request(method, path, headers=headers, json=json)
    assert answer.status_code == status, f"{method} {path}: {answer.status_code} {answer.text}"
    return answer.json()


async def _order_stream(gateway: Any, customers: list[Headers],
                        placed: list[tuple[str, Headers, str]], *, count: int) -> None:
    """``count`` orders of one unit each, a few per second, round the customers."""
    pairs = zip(range(count), itertools.cycle(customers), itertools.cycle(PRODUCTS),
                strict=False)
    for _, headers, product in pairs:
        order_id = (await _expect(gateway, "POST", "/orders", 201, headers))["order_id"]
        await _expect(gateway, "POST", f"/orders/{order_id}/items", 201, headers,
                      {"product_id": product, "quantity": 1})
        await _expect(gateway, "POST", f"/orders/{order_id}/place", 202, headers)
        placed.append((order_id, headers, product))
        await asyncio.sleep(0.3)


async def _until(condition: Any, placed: list[Any]) -> None:
    async def ready() -> bool | None:
        return True if condition() else None
    await eventually(ready, timeout=120, what=f"more orders placed (placed {len(placed)})")


async def _settled(gateway: Any, headers: Headers, order_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        answer = await gateway.client.get(f"/orders/{order_id}", headers=headers)
        if answer.status_code != 200:
            return None  # a service restarting: ask again
        body: dict[str, Any] = answer.json()
        phase = (body["fulfilment"] or {}).get("phase")
        return body if body["status"] in SETTLED and phase in SETTLED else None
    return await eventually(probe, timeout=120, what=f"order {order_id} to settle")


async def _stock(gateway: Any, admin: Headers) -> dict[str, tuple[int, int]]:
    """(on hand, reserved) of each product."""
    body = await _expect(gateway, "GET", "/admin/inventory?limit=100", 200, admin)
    return {item["product_id"]: (item["on_hand"], item["reserved"]) for item in body["items"]}


async def _money_adds_up(gateway: Any, headers: Headers,
                         orders: dict[str, dict[str, Any]]) -> None:
    """Each shipped order paid once in full; each cancelled one void or refunded in full."""
    def final(invoice: dict[str, Any]) -> bool:
        # A cancelled order's invoice may pass through "paid" on its way to "refunded": the
        # refund is its own command to payments, settled after the order itself.
        shipped = orders[invoice["order_id"]]["status"] == "shipped"
        return invoice["status"] in (("paid",) if shipped else ("void", "refunded"))

    async def invoices() -> dict[str, dict[str, Any]] | None:
        body = await _expect(gateway, "GET", "/billing/invoices?limit=100", 200, headers)
        found = {i["order_id"]: i for i in body["items"] if i["order_id"] in orders}
        settled = all(final(i) for i in found.values())
        return found if settled and len(found) == len(orders) else None

    for order_id, invoice in (await eventually(
            invoices, timeout=60,
            what="invoices to settle: shipped paid, cancelled void or refunded")).items():
        total = Decimal(invoice["total"]["amount"])
        if orders[order_id]["status"] == "shipped":
            assert invoice["status"] == "paid" and Decimal(invoice["paid"]["amount"]) == total
            assert invoice["refunded"] is None, invoice
        elif invoice["status"] == "refunded":
            assert Decimal(invoice["refunded"]["amount"]) == Decimal(invoice["paid"]["amount"])
        else:
            assert invoice["status"] == "void" and invoice["paid"] is None, invoice


async def _one_email_each(running: Running, orders: dict[str, dict[str, Any]]) -> None:
    """One "received" email and one "shipped" or "cancelled" email per order, no more."""
    async def counted() -> Counter[tuple[str, str]] | None:
        subjects = Counter(
            (match.group(1), match.group(2))
            for mail in running.gateway.mails()
            if (match := re.fullmatch(r"Order (\w+) (received|shipped|cancelled)",
                                      str(mail["Subject"]))) and match.group(1) in orders)
        return subjects if len(subjects) == 2 * len(orders) else None

    subjects = await eventually(counted, timeout=90, what="an email per notification")
    for order_id, order in orders.items():
        assert subjects[(order_id, "received")] == 1, order_id
        assert subjects[(order_id, order["status"])] == 1, (order_id, order["status"])
    assert all(n == 1 for n in subjects.values()), subjects
