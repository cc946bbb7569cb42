"""Ordering over HTTP: a customer's cart, placing and cancelling orders, and following them.

Every route is for the signed-in customer's own orders: another customer's order is 404.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from shop.kernel import TEXT_LINE
from shop.ordering.application import (
    AddItem,
    CancelOrder,
    ChangeQuantity,
    GetOrder,
    ListOrders,
    OrderSummary,
    OrderView,
    PlaceOrder,
    RemoveItem,
    StartOrder,
)
from shop.ordering.domain import MAX_QUANTITY
from shop.ordering.messages import MAX_REASON, FulfilmentStatus, GetFulfilmentStatus
from shop.platform.auth import CurrentUser
from shop.platform.routing import ID_PATTERN, Body, IdPath, Integer, MoneyOut, Page, Paging, ShopDep


class LineOut(BaseModel):
    product_id: str
    name: str
    quantity: int
    unit_price: MoneyOut
    subtotal: MoneyOut


class FulfilmentOut(BaseModel):
    """How far fulfilment got. ``phase``: pending (not picked up yet), reserving (stock),
    charging (payment; ``payment_attempts`` so far), shipping, marking (shipment made, order
    being marked shipped), shipped, cancelled (``reason`` says why) or needs-attention (an
    operator must look at it)."""

    phase: str
    payment_attempts: int
    tracking_number: str | None
    reason: str | None


class OrderOut(BaseModel):
    order_id: str
    status: str = Field(description="draft, placed, shipped or cancelled")
    lines: list[LineOut]
    total: MoneyOut | None
    started_at: datetime | None
    placed_at: datetime | None
    cancel_reason: str | None
    tracking_number: str | None
    fulfilment: FulfilmentOut | None


class OrderSummaryOut(BaseModel):
    order_id: str
    status: str
    items: int
    total: MoneyOut | None
    started_at: datetime


class NewItem(Body):
    product_id: str = Field(pattern=ID_PATTERN, max_length=64)
    quantity: Integer = Field(default=1, ge=1, le=MAX_QUANTITY)


class QuantityChange(Body):
    quantity: Integer = Field(ge=1, le=MAX_QUANTITY)


class Cancellation(Body):
    reason: str = Field(default="cancelled by the customer", min_length=1,
                        max_length=MAX_REASON, pattern=TEXT_LINE.pattern,
                        description="One line of text, not blank")


def _order_out(view: OrderView, fulfilment: FulfilmentStatus | None) -> OrderOut:
    return OrderOut(
        order_id=view.order_id, status=view.status,
        lines=[LineOut(product_id=x.product_id, name=x.name, quantity=x.quantity,
                       unit_price=MoneyOut.of(x.unit_price), subtotal=MoneyOut.of(x.subtotal))
               for x in view.lines],
        total=None if view.total is None else MoneyOut.of(view.total),
        started_at=view.started_at, placed_at=view.placed_at,
        cancel_reason=view.cancel_reason,
        tracking_number=view.tracking_number or (
            None if fulfilment is None else fulfilment.tracking_number),
        fulfilment=None if fulfilment is None else FulfilmentOut(
            phase=fulfilment.phase, payment_attempts=fulfilment.payment_attempts,
            tracking_number=fulfilment.tracking_number, reason=fulfilment.reason))


def _summary_out(s: OrderSummary) -> OrderSummaryOut:
    return OrderSummaryOut(order_id=s.order_id, status=s.status, items=s.items,
                           total=None if s.total is None else MoneyOut.of(s.total),
                           started_at=s.started_at)


async def _current(shop: ShopDep, order_id: str, customer_id: str) -> OrderOut:
    view: OrderView = await shop.queries.ask(GetOrder(order_id, customer_id))
    fulfilment: FulfilmentStatus | None = None
    if view.placed_at is not None:
        fulfilment = await shop.queries.ask(GetFulfilmentStatus(order_id))
    return _order_out(view, fulfilment)


def router() -> APIRouter:
    api = APIRouter(prefix="/orders", tags=["ordering"])

    @api.post("", status_code=status.HTTP_201_CREATED)
    async def start_order(shop: ShopDep, user: CurrentUser) -> OrderOut:
        """Open a new, empty draft order (a cart)."""
        order_id = uuid.uuid4().hex
        await shop.commands.dispatch(StartOrder(order_id=order_id, customer_id=user.user_id))
        return await _current(shop, order_id, user.user_id)

    @api.get("")
    async def list_orders(shop: ShopDep, user: CurrentUser, paging: Paging
                          ) -> Page[OrderSummaryOut]:
        """Your orders, newest first (a read model: a change shows up within moments)."""
        found = await shop.queries.ask(ListOrders(user.user_id, paging.offset, paging.limit))
        return paging.page([_summary_out(s) for s in found.items], found.total)

    @api.get("/{order_id}")
    async def get_order(order_id: IdPath, shop: ShopDep, user: CurrentUser) -> OrderOut:
        """One of your orders, with how far its fulfilment got."""
        return await _current(shop, order_id, user.user_id)

    @api.post("/{order_id}/items", status_code=status.HTTP_201_CREATED)
    async def add_item(order_id: IdPath, item: NewItem, shop: ShopDep,
                       user: CurrentUser) -> OrderOut:
        """Add a product at its current price (to its line, if the order has one)."""
        await shop.commands.dispatch(AddItem(order_id=order_id, customer_id=user.user_id,
                                             product_id=item.product_id,
                                             quantity=item.quantity))
        return await _current(shop, order_id, user.user_id)

    @api.patch("/{order_id}/items/{product_id}")
    async def change_quantity(order_id: IdPath, product_id: IdPath,
                              change: QuantityChange, shop: ShopDep, user: CurrentUser
                              ) -> OrderOut:
        await shop.commands.dispatch(ChangeQuantity(
            order_id=order_id, customer_id=user.user_id, product_id=product_id,
            quantity=change.quantity))
        return await _current(shop, order_id, user.user_id)

    @api.delete("/{order_id}/items/{product_id}")
    async def remove_item(order_id: IdPath, product_id: IdPath, shop: ShopDep,
                          user: CurrentUser) -> OrderOut:
        await shop.commands.dispatch(RemoveItem(order_id=order_id, customer_id=user.user_id,
                                                product_id=product_id))
        return await _current(shop, order_id, user.user_id)

    @api.post("/{order_id}/place", status_code=status.HTTP_202_ACCEPTED)
    async def place_order(order_id: IdPath, shop: ShopDep, user: CurrentUser
                          ) -> OrderOut:
        """Place the order: fulfilment (stock, payment, shipping) goes on in the
        background; follow it with GET /orders/{order_id}."""
        await shop.commands.dispatch(PlaceOrder(order_id=order_id, customer_id=user.user_id))
        return await _current(shop, order_id, user.user_id)

    @api.post("/{order_id}/cancel")
    async def cancel_order(order_id: IdPath, shop: ShopDep, user: CurrentUser,
                           cancellation: Cancellation | None = None) -> OrderOut:
        """Cancel an order that has not shipped; what fulfilment did so far is undone
        (stock released, payment refunded)."""
        reason = (cancellation or Cancellation()).reason
        await shop.commands.dispatch(CancelOrder(order_id=order_id, reason=reason,
                                                 customer_id=user.user_id))
        return await _current(shop, order_id, user.user_id)

    return api
