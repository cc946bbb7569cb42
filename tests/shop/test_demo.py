"""``make demo``: the walkthrough passes on a shop of its own and over a real broker, waits for
invoices, analytics and emails to catch up before it judges, and fails (exit status 1,
saying what differed) when an outcome is not the expected one."""

from __future__ import annotations

import io
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from invariant.config import Settings
from shop.config import ShopSettings
from shop.demo import run_demo
from shop.demo.outcomes import CASES, Downstream
from tests.shop.conftest import SECRET, ShopServer, serve, shop_settings


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=160, color_system=None), out


def last_line(out: io.StringIO) -> str:
    return out.getvalue().rstrip().splitlines()[-1]


async def test_make_demo_passes_on_a_shop_of_its_own(tmp_path: Path) -> None:
    screen, out = console()

    status = await run_demo(ShopSettings(secret=SECRET), None, screen, data=tmp_path / "demo")

    assert status == 0, out.getvalue()
    assert last_line(out) == ("PASS: 4 orders as expected (1 shipped, 3 cancelled); "
                              "invoices, analytics and emails agree")
    assert "Analytics (this walkthrough's orders): 4 placed, 3 cancelled, 1 shipped" \
        in out.getvalue()


async def test_an_outcome_that_differs_fails_naming_it(tmp_path: Path) -> None:
    settings = shop_settings(tmp_path, Settings(store="sqlite", sqlite_path=tmp_path / "s.db"))
    async with serve(settings) as server:
        admin = await server.admin()
        refused = await server.client.put("/admin/shipping/failures", headers=admin,
                                          json={"refuse": True})
        assert refused.status_code == 200, refused.text  # the order that ships cannot
        screen, out = console()

        status = await run_demo(settings, server.base_url, screen)

    assert status == 1, out.getvalue()
    verdict = last_line(out)
    assert verdict.startswith("FAIL: order 2 (An order that ships): cancelled (shipment "
                              "refused"), verdict
    assert verdict.endswith("expected shipped"), verdict  # the other orders went as planned


@pytest.mark.postgres
async def test_the_demo_waits_for_a_real_broker_before_judging(distributed: ShopServer
                                                               ) -> None:
    # On NATS, analytics and emails arrive well after the orders settle: the summary used
    # to count 2 cancelled orders and 9 emails where there were 3 and 10.
    screen, out = console()

    status = await run_demo(distributed.shop.settings, distributed.base_url, screen)

    assert status == 0, out.getvalue()
    assert last_line(out).startswith("PASS: 4 orders as expected")


# -- settling and judging, without a shop --------------------------------------------------------


def order(order_id: str, status: str, reason: str | None = None,
          tracking: str | None = None) -> dict[str, Any]:
    return {"order_id": order_id, "status": status, "cancel_reason": reason,
            "tracking_number": tracking}


def mail(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    return message


ORDERS = [order("o-1", "shipped", tracking="TRK-1"), order("o-2", "cancelled", "out of stock")]


def test_the_flows_are_settled_when_everything_agrees_with_the_orders() -> None:
    downstream = Downstream(
        {"placed": 7, "shipped": 3, "cancelled": 4}, {"o-1": "paid", "o-2": "void"},
        [mail("Order o-1 received"), mail("Order o-1 shipped"), mail("Order o-2 received"),
         mail("Order o-2 cancelled")])

    assert downstream.lagging(ORDERS, {"placed": 5, "shipped": 2, "cancelled": 3}) == []


def test_whatever_has_not_caught_up_is_named() -> None:
    downstream = Downstream({"placed": 2, "shipped": 1, "cancelled": 0},
                            {"o-1": "paid", "o-2": "open"},
                            [mail("Order o-1 received"), mail("Order o-1 shipped"),
                             mail("Order o-2 received")])

    assert downstream.lagging(ORDERS, {}) == [
        "analytics counts 0 cancelled orders, expected 1",
        "the invoice of order o-2 is open",
        "no 'cancelled' email for order o-2 yet",
    ]


def test_a_paid_invoice_of_a_cancelled_order_waits_for_its_refund() -> None:
    downstream = Downstream({}, {"o-2": "paid"}, [])

    assert "the invoice of order o-2 is paid" in downstream.lagging([ORDERS[1]], {})


@pytest.mark.parametrize(("got", "problem"), [
    (order("o", "cancelled", "shipment refused: carrier"),
     "cancelled (shipment refused: carrier), expected shipped"),
    (order("o", "shipped"), "shipped without a tracking number"),
])
def test_an_order_that_should_ship_is_judged(got: dict[str, Any], problem: str) -> None:
    assert CASES[0].differences(got) == [problem]


def test_a_cancellation_for_another_reason_is_a_difference() -> None:
    stock = CASES[1]
    assert stock.differences(order("o", "cancelled", stock.reason)) == []
    assert stock.differences(order("o", "cancelled", "payment declined 3 times")) == [
        "cancelled because 'payment declined 3 times', expected "
        "'out of stock: poster: 2 wanted, 1 available'"]
