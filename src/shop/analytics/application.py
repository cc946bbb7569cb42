"""Analytics' query and its report."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from invariant.application import Query


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
