"""Example 71/73/82: the order saga, orchestrated: place → reserve → charge → ship → complete.

Each step sends one command with a deterministic id; a refused step raises, the saga then
compensates the completed steps in reverse (ship ↔ cancel shipment, charge ↔ refund,
reserve ↔ release, place ↔ cancel order).
"""

from __future__ import annotations

from examples.orders.application import (
    CancelOrder,
    CancelShipment,
    ChargePayment,
    CompleteOrder,
    PlaceOrder,
    RefundPayment,
    ReleaseInventory,
    ReserveInventory,
    ShipOrder,
)
from invariant.domain import DomainError
from invariant.processes import Saga, Step, StepContext


class StepRefused(DomainError):
    """A service said no (no stock, card declined, carrier refused)."""


async def place(ctx: StepContext) -> None:
    d = ctx.data
    await ctx.send(PlaceOrder(order_id=d["order_id"], customer_id=d["customer_id"],
                              sku=d["sku"], quantity=d["quantity"], amount=d["amount"],
                              declines=d.get("declines", 0), stock=d.get("stock", 10),
                              ship_fails=d.get("ship_fails", False), coordinator="saga"))


async def cancel(ctx: StepContext) -> None:
    await ctx.send(CancelOrder(order_id=ctx.data["order_id"], reason="saga compensated"))


async def reserve(ctx: StepContext) -> None:
    d = ctx.data
    result = await ctx.send(ReserveInventory(order_id=d["order_id"], sku=d["sku"],
                                             quantity=d["quantity"], stock=d.get("stock", 10)))
    if not result.value:
        raise StepRefused(f"inventory refused order {d['order_id']}")


async def release(ctx: StepContext) -> None:
    await ctx.send(ReleaseInventory(order_id=ctx.data["order_id"]))


async def charge(ctx: StepContext) -> None:
    d = ctx.data
    result = await ctx.send(ChargePayment(order_id=d["order_id"], amount=d["amount"],
                                          attempt=ctx.attempt, declines=d.get("declines", 0)),
                            key=str(ctx.attempt))
    if not result.value:
        raise StepRefused(f"payment declined for order {d['order_id']} (attempt {ctx.attempt})")


async def refund(ctx: StepContext) -> None:
    await ctx.send(RefundPayment(order_id=ctx.data["order_id"]))


async def ship(ctx: StepContext) -> None:
    d = ctx.data
    result = await ctx.send(ShipOrder(order_id=d["order_id"], fails=d.get("ship_fails", False)))
    if not result.value:
        raise StepRefused(f"shipping refused order {d['order_id']}")


async def cancel_shipment(ctx: StepContext) -> None:
    await ctx.send(CancelShipment(order_id=ctx.data["order_id"]))


async def complete(ctx: StepContext) -> None:
    await ctx.send(CompleteOrder(order_id=ctx.data["order_id"]))


ORDER_SAGA = Saga("order-saga", (
    Step("place", place, cancel),
    Step("reserve-inventory", reserve, release),
    Step("charge-payment", charge, refund, attempts=3),
    Step("ship", ship, cancel_shipment),
    Step("complete", complete),
))
