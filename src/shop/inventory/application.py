"""Inventory's commands, queries and the events other contexts react to.

Published (fulfilment imports these): the commands :class:`SetStock`, :class:`ReserveStock`
(with :class:`StockLine`), :class:`ReleaseStock`, :class:`CommitStock`, and the events
:class:`StockReserved`, :class:`StockReservationRejected`, :class:`StockReleased`,
:class:`StockCommitted` (stored as ``inventory.<name>``).

Each handler returns the reservation's status (``"reserved"``, ``"rejected"``,
``"released"``, ``"committed"``, ``"closed"`` or ``"open"``), or the stock level for
:class:`SetStock`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from invariant.application import AnyCommandHandler, Command, Query, UnitOfWork
from shop.inventory.domain import (
    Reservation,
    ReservedLine,
    Stock,
    StockCommitted,
    StockReleased,
    StockReservationRejected,
    StockReserved,
    check_units,
)
from shop.inventory.messages import CommitStock, ReleaseStock, ReserveStock, StockLine
from shop.kernel import OrderId, ProductId, check_ids

# -- commands ------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class SetStock(Command[dict[str, int]]):
    """Admin: the units of a product on hand (at least what orders hold)."""

    product_id: str
    on_hand: int

    def validate(self) -> None:
        check_ids("SetStock", product_id=self.product_id)
        check_units("on_hand", self.on_hand, low=0)


@dataclass(frozen=True, kw_only=True)
class SeedStock(Command[bool]):
    """Start-up: stock a product that has never been stocked (a stocked one is left as is)."""

    product_id: str
    on_hand: int

    def validate(self) -> None:
        SetStock(product_id=self.product_id, on_hand=self.on_hand).validate()



COMMANDS: tuple[type[Command[Any]], ...] = (SetStock, SeedStock, ReserveStock, ReleaseStock,
                                            CommitStock)


# -- queries -------------------------------------------------------------------------------

@dataclass(frozen=True)
class GetStockLevel(Query):
    """A product's stock now (from its stream: it includes the latest writes)."""

    product_id: str

    def validate(self) -> None:
        check_ids("GetStockLevel", product_id=self.product_id)


@dataclass(frozen=True, slots=True)
class StockLevel:
    """Units of a product: on hand, held by orders, and available to new orders."""

    product_id: str
    on_hand: int
    reserved: int
    available: int

    @classmethod
    def of(cls, stock: Stock) -> StockLevel:
        return cls(stock.id.value, stock.on_hand, stock.reserved, stock.available)


# -- handlers ------------------------------------------------------------------------------

async def _stocks(uow: UnitOfWork, products: Iterable[str]) -> dict[str, Stock]:
    """The stock of each product (a never-stocked product has none available)."""
    found: dict[str, Stock] = {}
    for product in products:  # a new one is written only if it records something
        found[product] = await uow.find_or_add(Stock, ProductId(product))
    return found


async def set_stock(command: SetStock, uow: UnitOfWork) -> dict[str, int]:
    stock = (await _stocks(uow, [command.product_id]))[command.product_id]
    stock.set_level(command.on_hand)
    return {"on_hand": stock.on_hand, "reserved": stock.reserved, "available": stock.available}


async def seed_stock(command: SeedStock, uow: UnitOfWork) -> bool:
    if await uow.find(Stock, ProductId(command.product_id)) is not None:
        return False
    stock = Stock(ProductId(command.product_id))
    stock.set_level(command.on_hand)
    uow.add(stock)
    return True


async def reserve_stock(command: ReserveStock, uow: UnitOfWork) -> str:
    reservation = await uow.find_or_add(Reservation, OrderId(command.order_id))
    if reservation.status != "open":
        return reservation.status
    wanted = command.wanted()
    return reservation.reserve(wanted, await _stocks(uow, wanted))


async def release_stock(command: ReleaseStock, uow: UnitOfWork) -> str:
    reservation = await uow.find_or_add(Reservation, OrderId(command.order_id))
    stocks = await _stocks(uow, [line.product_id for line in reservation.lines])
    return reservation.release(stocks)


async def commit_stock(command: CommitStock, uow: UnitOfWork) -> str:
    reservation = await uow.find_or_add(Reservation, OrderId(command.order_id))
    stocks = await _stocks(uow, [line.product_id for line in reservation.lines])
    return reservation.commit(stocks)


HANDLERS: dict[type[Command[Any]], AnyCommandHandler] = {
    SetStock: set_stock, SeedStock: seed_stock, ReserveStock: reserve_stock,
    ReleaseStock: release_stock, CommitStock: commit_stock}

__all__ = [
    "COMMANDS", "HANDLERS", "CommitStock", "GetStockLevel", "ReleaseStock", "ReserveStock",
    "ReservedLine", "SeedStock", "SetStock", "StockCommitted", "StockLevel", "StockLine",
    "StockReleased", "StockReservationRejected", "StockReserved",
]
