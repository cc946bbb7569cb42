"""Ordering's use cases: the commands (also sent by fulfilment), their handlers, and the
queries the HTTP API answers.

Published to other contexts: the command classes, the domain events fulfilment reacts to
(:class:`OrderPlaced`, :class:`OrderCancelled`, :class:`OrderShipped`), the query
:class:`GetFulfilmentStatus` that the fulfilment context answers, and the DTOs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from invariant.application import AnyCommandHandler, Command, Query, UnitOfWork
from invariant.clock import Clock
from invariant.domain import Money, NotFoundError
from invariant.messaging.published_language import Amount
from shop.kernel import CustomerId, OrderId, check_ids
from shop.ordering import published
from shop.ordering.domain import (
    CreditLimits,
    Order,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderShipped,
)
from shop.ordering.messages import (
    CancelOrder,
    FulfilmentStatus,
    GetFulfilmentStatus,
    MarkOrderShipped,
)

SOURCE = "ordering"

@dataclass(frozen=True, slots=True)
class PricedProduct:
    """What ordering needs of a product for sale: its name and current price."""

    name: str
    unit_price: Money


PriceList = Callable[[str], Awaitable[PricedProduct]]
"""Looks a product up for sale (NotFoundError when it is unknown or not for sale)."""


# -- commands --------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class StartOrder(Command[str]):
    """Open a new draft order (a cart) for a customer."""

    order_id: str
    customer_id: str

    def validate(self) -> None:
        check_ids("StartOrder", order_id=self.order_id, customer_id=self.customer_id)


@dataclass(frozen=True, kw_only=True)
class AddItem(Command[None]):
    """Put ``quantity`` of a product, at its current catalog price, in a draft order."""

    order_id: str
    customer_id: str
    product_id: str
    quantity: int

    def validate(self) -> None:
        check_ids("AddItem", order_id=self.order_id, customer_id=self.customer_id,
                  product_id=self.product_id)


@dataclass(frozen=True, kw_only=True)
class ChangeQuantity(Command[None]):
    """Set the quantity of a product already in a draft order."""

    order_id: str
    customer_id: str
    product_id: str
    quantity: int

    def validate(self) -> None:
        check_ids("ChangeQuantity", order_id=self.order_id, customer_id=self.customer_id,
                  product_id=self.product_id)


@dataclass(frozen=True, kw_only=True)
class RemoveItem(Command[None]):
    """Take a product out of a draft order."""

    order_id: str
    customer_id: str
    product_id: str

    def validate(self) -> None:
        check_ids("RemoveItem", order_id=self.order_id, customer_id=self.customer_id,
                  product_id=self.product_id)


@dataclass(frozen=True, kw_only=True)
class PlaceOrder(Command[None]):
    """Commit to buy a draft order (within the credit limit); fulfilment starts."""

    order_id: str
    customer_id: str



COMMANDS: tuple[type[Command[Any]], ...] = (StartOrder, AddItem, ChangeQuantity, RemoveItem,
                                            PlaceOrder, CancelOrder, MarkOrderShipped)


class OrderingHandlers:
    """The command handlers, with what they depend on."""

    def __init__(self, prices: PriceList, clock: Clock,
                 limits: CreditLimits | None = None) -> None:
        self.prices = prices
        self.clock = clock
        self.limits = limits or CreditLimits()

    def handlers(self) -> dict[type[Command[Any]], AnyCommandHandler]:
        return {StartOrder: self.start, AddItem: self.add_item,
                ChangeQuantity: self.change_quantity, RemoveItem: self.remove_item,
                PlaceOrder: self.place, CancelOrder: self.cancel,
                MarkOrderShipped: self.mark_shipped}

    async def start(self, command: StartOrder, uow: UnitOfWork) -> str:
        uow.add(Order.start(OrderId(command.order_id), CustomerId(command.customer_id),
                            self.clock()))
        return command.order_id

    async def add_item(self, command: AddItem, uow: UnitOfWork) -> None:
        order = await _own_order(uow, command.order_id, command.customer_id)
        product = await self.prices(command.product_id)
        order.add_item(command.product_id, product.name, product.unit_price,
                       command.quantity, self.limits)

    async def change_quantity(self, command: ChangeQuantity, uow: UnitOfWork) -> None:
        order = await _own_order(uow, command.order_id, command.customer_id)
        order.change_quantity(command.product_id, command.quantity, self.limits)

    async def remove_item(self, command: RemoveItem, uow: UnitOfWork) -> None:
        order = await _own_order(uow, command.order_id, command.customer_id)
        order.remove_item(command.product_id)

    async def place(self, command: PlaceOrder, uow: UnitOfWork) -> None:
        order = await _own_order(uow, command.order_id, command.customer_id)
        now = self.clock()
        order.place(self.limits, now)
        uow.emit(published.OrderPlaced(
            **_published_order(order), occurred_at=now,
        ).to_outbox(source=SOURCE, stream_id=order.stream_id()))

    async def cancel(self, command: CancelOrder, uow: UnitOfWork) -> None:
        if command.customer_id is None:
            order = await _order(uow, command.order_id)
        else:
            order = await _own_order(uow, command.order_id, command.customer_id)
        now = self.clock()
        was_placed = order.placed_at is not None
        if order.cancel(command.reason, now) and was_placed:
            uow.emit(published.OrderCancelled(
                **_published_order(order), reason=command.reason, occurred_at=now,
            ).to_outbox(source=SOURCE, stream_id=order.stream_id()))

    async def mark_shipped(self, command: MarkOrderShipped, uow: UnitOfWork) -> None:
        order = await _order(uow, command.order_id)
        now = self.clock()
        if order.mark_shipped(command.tracking_number, now):
            uow.emit(published.OrderShipped(
                **_published_order(order), tracking_number=command.tracking_number,
                occurred_at=now,
            ).to_outbox(source=SOURCE, stream_id=order.stream_id()))


async def _order(uow: UnitOfWork, order_id: str) -> Order:
    order = await uow.find(Order, OrderId(order_id))
    if order is None:
        raise NotFoundError(f"there is no order {order_id}")
    return order


async def _own_order(uow: UnitOfWork, order_id: str, customer_id: str) -> Order:
    return owned(await uow.find(Order, OrderId(order_id)), order_id, customer_id)


def owned(order: Order | None, order_id: str, customer_id: str) -> Order:
    """The customer's order; someone else's is "not found", as if it did not exist."""
    if order is None or not order.belongs_to(CustomerId(customer_id)):
        raise NotFoundError(f"you have no order {order_id}")
    return order


def _published_order(order: Order) -> dict[str, Any]:
    total = order.total()
    assert total is not None, "only non-empty orders are published"
    return {
        "order_id": order.id.value, "customer_id": order.customer_id.value,
        "total": Amount.of(total),
        "lines": [published.OrderLine(product_id=x.product_id, name=x.name,
                                      quantity=x.quantity,
                                      unit_price=Amount.of(x.unit_price))
                  for x in order.lines.values()],
    }


# -- queries and their DTOs ------------------------------------------------------------------


@dataclass(frozen=True)
class GetOrder(Query):
    """One order of a customer (NotFoundError for someone else's)."""

    order_id: str
    customer_id: str


@dataclass(frozen=True)
class ListOrders(Query):
    """A customer's orders, newest first."""

    customer_id: str
    offset: int = 0
    limit: int = 20


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order as its customer sees it."""

    order_id: str
    customer_id: str
    status: str
    lines: tuple[OrderLine, ...]
    total: Money | None
    started_at: datetime | None
    placed_at: datetime | None
    cancel_reason: str | None
    tracking_number: str | None


@dataclass(frozen=True, slots=True)
class OrderSummary:
    """One row of a customer's order list."""

    order_id: str
    status: str
    items: int
    total: Money | None
    started_at: datetime


@dataclass(frozen=True, slots=True)
class OrderList:
    """One page of a customer's orders and how many there are in all."""

    items: list[OrderSummary]
    total: int


def order_view(order: Order) -> OrderView:
    return OrderView(order.id.value, order.customer_id.value, order.status,
                     tuple(order.lines.values()), order.total(), order.started_at,
                     order.placed_at, order.reason, order.tracking_number)


__all__ = [
    "COMMANDS", "AddItem", "CancelOrder", "ChangeQuantity", "FulfilmentStatus",
    "GetFulfilmentStatus", "GetOrder", "ListOrders", "MarkOrderShipped", "OrderCancelled",
    "OrderLine", "OrderList", "OrderPlaced", "OrderShipped", "OrderSummary", "OrderView",
    "OrderingHandlers", "PlaceOrder", "PriceList", "PricedProduct", "RemoveItem",
    "StartOrder",
]
