"""Commands of the order fulfilment's contexts and their handlers (the fake services)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from examples.orders.domain import (
    EVENTS,
    Order,
    OrderId,
    OrderPlaced,
    Payment,
    Reservation,
    Shipment,
)
from invariant.application import Aggregates, Command, CommandBus, UnitOfWork, default_middleware
from invariant.domain import AggregateRoot
from invariant.store import EventRegistry, EventStorage, EventStore


@dataclass(frozen=True, kw_only=True)
class PlaceOrder(Command[None]):
    order_id: str
    customer_id: str
    sku: str
    quantity: int
    amount: int
    declines: int = 0
    stock: int = 10
    ship_fails: bool = False
    coordinator: str = "process-manager"


@dataclass(frozen=True, kw_only=True)
class CompleteOrder(Command[None]):
    order_id: str


@dataclass(frozen=True, kw_only=True)
class CancelOrder(Command[None]):
    order_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ReserveInventory(Command[bool]):
    order_id: str
    sku: str
    quantity: int
    stock: int


@dataclass(frozen=True, kw_only=True)
class ReleaseInventory(Command[None]):
    order_id: str


@dataclass(frozen=True, kw_only=True)
class ChargePayment(Command[bool]):
    order_id: str
    amount: int
    attempt: int
    declines: int = 0


@dataclass(frozen=True, kw_only=True)
class RefundPayment(Command[None]):
    order_id: str


@dataclass(frozen=True, kw_only=True)
class ShipOrder(Command[bool]):
    order_id: str
    fails: bool = False


@dataclass(frozen=True, kw_only=True)
class CancelShipment(Command[None]):
    order_id: str


COMMANDS: tuple[type[Command], ...] = (
    PlaceOrder, CompleteOrder, CancelOrder, ReserveInventory, ReleaseInventory, ChargePayment,
    RefundPayment, ShipOrder, CancelShipment)

A = TypeVar("A", bound=AggregateRoot[Any])


async def _get(uow: UnitOfWork, cls: type[A], order_id: str) -> A:
    """The context's aggregate of the order, created on first use."""
    return await uow.find_or_add(cls, OrderId(order_id))


async def place_order(c: PlaceOrder, uow: UnitOfWork) -> None:
    uow.add(Order.place(OrderPlaced(c.order_id, c.customer_id, c.sku, c.quantity, c.amount,
                                    c.declines, c.stock, c.ship_fails, c.coordinator)))


async def complete_order(c: CompleteOrder, uow: UnitOfWork) -> None:
    (await uow.get(Order, OrderId(c.order_id))).complete()


async def cancel_order(c: CancelOrder, uow: UnitOfWork) -> None:
    (await uow.get(Order, OrderId(c.order_id))).cancel(c.reason)


async def reserve_inventory(c: ReserveInventory, uow: UnitOfWork) -> bool:
    return (await _get(uow, Reservation, c.order_id)).reserve(c.sku, c.quantity, c.stock)


async def release_inventory(c: ReleaseInventory, uow: UnitOfWork) -> None:
    (await _get(uow, Reservation, c.order_id)).release()


async def charge_payment(c: ChargePayment, uow: UnitOfWork) -> bool:
    return (await _get(uow, Payment, c.order_id)).charge(c.amount, c.attempt, c.declines)


async def refund_payment(c: RefundPayment, uow: UnitOfWork) -> None:
    (await _get(uow, Payment, c.order_id)).refund()


async def ship_order(c: ShipOrder, uow: UnitOfWork) -> bool:
    return (await _get(uow, Shipment, c.order_id)).ship(c.fails)


async def cancel_shipment(c: CancelShipment, uow: UnitOfWork) -> None:
    (await _get(uow, Shipment, c.order_id)).cancel()


HANDLERS: dict[type[Command], Callable[[Any, UnitOfWork], Any]] = {
    PlaceOrder: place_order, CompleteOrder: complete_order, CancelOrder: cancel_order,
    ReserveInventory: reserve_inventory, ReleaseInventory: release_inventory,
    ChargePayment: charge_payment, RefundPayment: refund_payment, ShipOrder: ship_order,
    CancelShipment: cancel_shipment,
}


def orders_store(storage: EventStorage) -> EventStore:
    return EventStore(storage, EventRegistry(EVENTS))


def orders_bus(store: EventStore) -> CommandBus:
    """The command bus of the fake services, with idempotency by command id."""
    return CommandBus(Aggregates(store, cache_size=0), HANDLERS,
                      middleware=default_middleware(store.storage, retries=5),
                      commands=COMMANDS)
