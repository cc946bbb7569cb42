"""What inventory offers other contexts' process managers (fulfilment): the commands it
accepts and the events it answers with. In one process they travel on the bus and the
event log; between services as messages through the broker. Other contexts import this
module, never inventory's application or infrastructure.

* commands: :class:`ReserveStock` (with :class:`StockLine`), :class:`ReleaseStock`,
  :class:`CommitStock`;
* events: :class:`StockReserved`, :class:`StockReservationRejected` (stored as
  ``inventory.<name>``).
"""

from __future__ import annotations

from dataclasses import dataclass

from invariant.application import Command
from invariant.domain import FieldError, ValidationError
from shop.inventory.domain import MAX_UNITS, StockReservationRejected, StockReserved
from shop.kernel import check_ids, id_problems

MAX_LINES = 100


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


__all__ = [
    "MAX_LINES", "CommitStock", "ReleaseStock", "ReserveStock", "StockLine",
    "StockReservationRejected", "StockReserved",
]
