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
from invariant.domain import FieldError, ValidationError
from shop.inventory.domain import (
    MAX_UNITS,
    Reservation,
    ReservedLine,
    Stock,
    StockCommitted,
    StockReleased,
    StockReservationRejected,
    StockReserved,
    check_units,
)
from shop.kernel import OrderId, ProductId, check_ids, id_problems

MAX_LINES = 100


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


@dataclass(frozen=True)
class StockLine:
    """Units of one product an order wants."""

    product_id: str
    quantity: int


@dataclass(frozen=True, kw_only=True)
class ReserveStock(Command[str]):
    """Hold every line for the order, or nothing. Idempotent per order."""

    order_id: str
    lines: tuple[StockLine, ...]

    def validate(self) -> None:
        problems = id_problems({"order_id": self.order_id})
        if not isinstance(self.lines, tuple) or not 1 <= len(self.lines) <= MAX_LINES:
            problems.append(FieldError("lines", f"must hold 1 to {MAX_LINES} lines",
                                       "invalid_lines"))
        else:
            for i, line in enumerate(self.lines):
                problems += id_problems({f"lines.{i}.product_id":
                                         getattr(line, "product_id", None)})
                quantity = getattr(line, "quantity", None)
                if isinstance(quantity, bool) or not isinstance(quantity, int) \
                        or not 1 <= quantity <= MAX_UNITS:
                    problems.append(FieldError(f"lines.{i}.quantity",
                                               f"must be a whole number from 1 to {MAX_UNITS}",
                                               "out_of_range"))
        if problems:
            raise ValidationError(problems, subject="ReserveStock")

    def wanted(self) -> dict[str, int]:
        """Quantity per product (a product named twice wants the sum)."""
        totals: dict[str, int] = {}
        for line in self.lines:
            totals[line.product_id] = totals.get(line.product_id, 0) + line.quantity
        return totals


@dataclass(frozen=True, kw_only=True)
class ReleaseStock(Command[str]):
    """Give back exactly what the order holds; nothing when it holds nothing (idempotent)."""

    order_id: str

    def validate(self) -> None:
        check_ids("ReleaseStock", order_id=self.order_id)


@dataclass(frozen=True, kw_only=True)
class CommitStock(Command[str]):
    """The order shipped: the units it holds leave on-hand stock (idempotent)."""

    order_id: str

    def validate(self) -> None:
        check_ids("CommitStock", order_id=self.order_id)


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
