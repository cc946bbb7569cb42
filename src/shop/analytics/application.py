"""Analytics' query, its report, what each integration event adds to it (:func:`tally`),
and the port of the store that keeps it (:class:`SalesReportStore`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from invariant.application import Query
from invariant.domain import Currency
from invariant.messaging.published_language import Amount, IntegrationEvent
from shop.ordering.published import OrderCancelled, OrderLine, OrderPlaced, OrderShipped
from shop.payments.published import PaymentCharged, PaymentRefunded

if TYPE_CHECKING:
    from invariant.messaging.consumer import Handler


@dataclass(frozen=True)
class GetSalesReport(Query):
    """Orders, revenue and units sold so far."""


@dataclass(frozen=True, slots=True)
class Revenue:
    """Per currency: charged, refunded, and what stays (net)."""

    currency: str
    charged: Decimal
    refunded: Decimal

    @property
    def net(self) -> Decimal:
        return self.charged - self.refunded


@dataclass(frozen=True, slots=True)
class ProductUnits:
    product_id: str
    ordered: int
    cancelled: int
    shipped: int


@dataclass(frozen=True, slots=True)
class SalesReport:
    orders_placed: int
    orders_cancelled: int
    orders_shipped: int
    revenue: list[Revenue]
    products: list[ProductUnits]

    @classmethod
    def of(cls, orders: Mapping[str, int], revenue: list[Revenue],
           products: list[ProductUnits]) -> SalesReport:
        """The report of order counters by name (see :data:`ORDER_COUNTERS`)."""
        placed, cancelled, shipped = (orders.get(name, 0) for name in ORDER_COUNTERS)
        return cls(placed, cancelled, shipped, revenue, products)


@dataclass(frozen=True, slots=True)
class Tally:
    """What one integration event adds to the report: order counters (each +1), units per
    product and money per currency (in minor units, so that sums stay exact), each change
    as ``(column, key, delta)``."""

    orders: tuple[str, ...] = ()
    units: tuple[tuple[str, str, int], ...] = ()
    money: tuple[tuple[str, str, int], ...] = ()


ORDER_COUNTERS = ("orders_placed", "orders_cancelled", "orders_shipped")
UNIT_COLUMNS = ("ordered", "cancelled", "shipped")
MONEY_COLUMNS = ("charged", "refunded")


def tally(event: IntegrationEvent) -> Tally:
    """What ``event`` adds to the report (nothing for an event analytics does not count)."""
    match event:
        case OrderPlaced(lines=lines):
            return Tally(("orders_placed",), _units("ordered", lines))
        case OrderCancelled(lines=lines):
            return Tally(("orders_cancelled",), _units("cancelled", lines))
        case OrderShipped(lines=lines):
            return Tally(("orders_shipped",), _units("shipped", lines))
        case PaymentCharged(amount=amount):
            return Tally(money=(("charged", amount.currency, minor(amount)),))
        case PaymentRefunded(amount=amount):
            return Tally(money=(("refunded", amount.currency, minor(amount)),))
    return Tally()


def _units(column: str, lines: list[OrderLine]) -> tuple[tuple[str, str, int], ...]:
    return tuple((column, line.product_id, line.quantity) for line in lines)


def minor(amount: Amount) -> int:
    """``amount`` in its currency's minor units (cents)."""
    return int(amount.value.scaleb(Currency.of(amount.currency).minor_units))


def major(units: int, currency: str) -> Decimal:
    """``units`` minor units of ``currency`` as a decimal amount (``8900`` USD: 89.00)."""
    digits = Currency.of(currency).minor_units
    return (Decimal(units).scaleb(-digits)).quantize(Decimal(1).scaleb(-digits))


class SalesReportStore(Protocol):
    """The port: where the sales report is kept. Its consumer handler adds each integration
    event's :func:`tally` exactly once per message (the SQL adapter in the inbox's
    transaction, the Redis adapter atomically with the message id in Redis itself);
    :meth:`report` reads everything counted so far."""

    @property
    def consumer(self) -> Handler:
        """The handler of analytics' consumer group."""
        ...

    async def report(self) -> SalesReport:
        """Everything counted so far."""
        ...
