"""Ordering's domain: an order from its draft (the cart) to shipped or cancelled.

Pure: the standard library, invariant's domain kit and shop's shared kernel only. The rules:

* items change only while the order is a draft; quantities are 1 to ``MAX_QUANTITY``;
* one currency per order (the first item's);
* the credit limit: the total may never exceed the customer's limit (:class:`CreditLimits`),
  checked on every change and again when the order is placed;
* a placed order is cancelled (by the customer or by fulfilment) or shipped, never both;
  repeating a cancellation or a shipment changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from invariant.domain import (
    AggregateRoot,
    DomainError,
    DomainEvent,
    NotFoundError,
    ValidationError,
)
from shop.kernel import CustomerId, Money, OrderId

MAX_QUANTITY = 99
MAX_LINES = 50
DRAFT, PLACED, SHIPPED, CANCELLED = "draft", "placed", "shipped", "cancelled"


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One product of an order, priced when it was added."""

    product_id: str
    name: str
    unit_price: Money
    quantity: int

    @property
    def subtotal(self) -> Money:
        return self.unit_price.multiply(self.quantity)


# -- events ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class OrderStarted(DomainEvent):
    """A customer opened a draft order."""

    event_type = "ordering.OrderStarted"
    order_id: str
    customer_id: str
    started_at: datetime


@dataclass(frozen=True)
class ItemAdded(DomainEvent):
    """A product was put in the draft, priced as the catalog sold it then."""

    event_type = "ordering.ItemAdded"
    order_id: str
    line: OrderLine


@dataclass(frozen=True)
class ItemQuantityChanged(DomainEvent):
    """The quantity of a product in the draft changed."""

    event_type = "ordering.ItemQuantityChanged"
    order_id: str
    product_id: str
    quantity: int


@dataclass(frozen=True)
class ItemRemoved(DomainEvent):
    """A product was taken out of the draft."""

    event_type = "ordering.ItemRemoved"
    order_id: str
    product_id: str


@dataclass(frozen=True)
class OrderPlaced(DomainEvent):
    """The customer committed to buy: fulfilment starts from here."""

    event_type = "ordering.OrderPlaced"
    order_id: str
    customer_id: str
    lines: tuple[OrderLine, ...]
    total: Money
    placed_at: datetime


@dataclass(frozen=True)
class OrderCancelled(DomainEvent):
    """The order was cancelled (a draft, or a placed order before it shipped)."""

    event_type = "ordering.OrderCancelled"
    order_id: str
    reason: str
    cancelled_at: datetime


@dataclass(frozen=True)
class OrderShipped(DomainEvent):
    """The order's parcel left with the carrier."""

    event_type = "ordering.OrderShipped"
    order_id: str
    tracking_number: str
    shipped_at: datetime


EVENTS: tuple[type[DomainEvent], ...] = (
    OrderStarted, ItemAdded, ItemQuantityChanged, ItemRemoved, OrderPlaced, OrderCancelled,
    OrderShipped)


# -- errors and policies ---------------------------------------------------------------------

class CreditLimitExceeded(DomainError):
    """The order's total would go above the customer's credit limit."""

    def __init__(self, total: Money, limit: Money) -> None:
        self.total, self.limit = total, limit
        super().__init__(f"the order total would be {total}, above your credit limit of "
                         f"{limit}; remove items or lower quantities")


class OrderNotModifiable(DomainError):
    """The order is no longer a draft (or not in the state the operation needs)."""


class CreditLimits:
    """The credit-limit policy: how much one order of a customer may total.

    Every customer gets ``default`` (in the order's currency) unless ``overrides`` names
    another limit for them.
    """

    def __init__(self, default: Decimal = Decimal("1000.00"),
                 overrides: dict[str, Money] | None = None) -> None:
        self.default = default
        self.overrides = dict(overrides or {})

    def limit_for(self, customer_id: CustomerId, currency: str) -> Money:
        special = self.overrides.get(customer_id.value)
        if special is not None and special.currency.code == currency:
            return special
        return Money.of(self.default, currency)


def check_quantity(quantity: int) -> None:
    """Refuse a quantity that is not a whole number from 1 to ``MAX_QUANTITY``."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) \
            or not 1 <= quantity <= MAX_QUANTITY:
        raise ValidationError.single(
            "quantity", f"must be a whole number from 1 to {MAX_QUANTITY}, got {quantity!r}",
            "invalid_quantity", subject="OrderLine")


# -- the aggregate ---------------------------------------------------------------------------

class Order(AggregateRoot[OrderId]):
    """A customer's order. Its lines are kept in the order they were added."""

    category = "ordering_order"

    def __init__(self, id: OrderId) -> None:
        super().__init__(id)
        self.customer_id = CustomerId("unknown")
        self.status = DRAFT
        self.lines: dict[str, OrderLine] = {}
        self.started_at: datetime | None = None
        self.placed_at: datetime | None = None
        self.reason: str | None = None
        self.tracking_number: str | None = None

    @classmethod
    def start(cls, order_id: OrderId, customer_id: CustomerId, now: datetime) -> Order:
        order = cls(order_id)
        order.record(OrderStarted(order_id.value, customer_id.value, now))
        return order

    # -- queries -----------------------------------------------------------------------------

    @property
    def currency(self) -> str | None:
        first = next(iter(self.lines.values()), None)
        return None if first is None else first.unit_price.currency.code

    def total(self) -> Money | None:
        """The sum of the lines (None while the order is empty)."""
        return _total(list(self.lines.values()))

    def belongs_to(self, customer_id: CustomerId) -> bool:
        return self.customer_id == customer_id

    # -- the cart ----------------------------------------------------------------------------

    def add_item(self, product_id: str, name: str, unit_price: Money, quantity: int,
                 limits: CreditLimits) -> None:
        """Add ``quantity`` of a product (to its line, if it has one already)."""
        check_quantity(quantity)
        self._require(DRAFT, "add items to")
        existing = self.lines.get(product_id)
        if existing is not None:
            self.change_quantity(product_id, existing.quantity + quantity, limits)
            return
        if self.currency is not None and unit_price.currency.code != self.currency:
            raise DomainError(f"this order is in {self.currency}; {product_id} is priced in "
                              f"{unit_price.currency.code}: start another order for it")
        if len(self.lines) >= MAX_LINES:
            raise DomainError(f"an order has at most {MAX_LINES} different products")
        line = OrderLine(product_id, name, unit_price, quantity)
        self._check_limit([*self.lines.values(), line], limits)
        self.record(ItemAdded(self.id.value, line))

    def change_quantity(self, product_id: str, quantity: int, limits: CreditLimits) -> None:
        check_quantity(quantity)
        self._require(DRAFT, "change items of")
        line = self._line(product_id)
        if quantity == line.quantity:
            return
        changed = OrderLine(line.product_id, line.name, line.unit_price, quantity)
        others = [x for x in self.lines.values() if x.product_id != product_id]
        self._check_limit([*others, changed], limits)
        self.record(ItemQuantityChanged(self.id.value, product_id, quantity))

    def remove_item(self, product_id: str) -> None:
        self._require(DRAFT, "remove items from")
        self._line(product_id)
        self.record(ItemRemoved(self.id.value, product_id))

    # -- its life ----------------------------------------------------------------------------

    def place(self, limits: CreditLimits, now: datetime) -> None:
        """Commit to buy: the limit is checked again (it may have changed since)."""
        self._require(DRAFT, "place")
        lines = tuple(self.lines.values())
        total = _total(list(lines))
        if total is None:
            raise DomainError("an empty order cannot be placed: add an item first")
        self._check_limit(list(lines), limits)
        self.record(OrderPlaced(self.id.value, self.customer_id.value, lines, total, now))

    def cancel(self, reason: str, now: datetime) -> bool:
        """Cancel a draft or a placed order; False if it was cancelled already."""
        if self.status == CANCELLED:
            return False
        if self.status == SHIPPED:
            raise OrderNotModifiable(f"order {self.id} has shipped and can no longer be "
                                     "cancelled")
        self.record(OrderCancelled(self.id.value, reason, now))
        return True

    def mark_shipped(self, tracking_number: str, now: datetime) -> bool:
        """Record the shipment; False (nothing changes) unless the order is placed."""
        if self.status != PLACED:
            return False
        self.record(OrderShipped(self.id.value, tracking_number, now))
        return True

    # -- state -------------------------------------------------------------------------------

    def apply(self, event: DomainEvent) -> None:
        match event:
            case OrderStarted(customer_id=customer_id, started_at=at):
                self.customer_id, self.started_at = CustomerId(customer_id), at
            case ItemAdded(line=line):
                self.lines[line.product_id] = line
            case ItemQuantityChanged(product_id=product_id, quantity=quantity):
                line = self.lines[product_id]
                self.lines[product_id] = OrderLine(line.product_id, line.name,
                                                   line.unit_price, quantity)
            case ItemRemoved(product_id=product_id):
                del self.lines[product_id]
            case OrderPlaced(placed_at=at):
                self.status, self.placed_at = PLACED, at
            case OrderCancelled(reason=reason):
                self.status, self.reason = CANCELLED, reason
            case OrderShipped(tracking_number=tracking):
                self.status, self.tracking_number = SHIPPED, tracking

    def _require(self, status: str, doing: str) -> None:
        if self.status != status:
            raise OrderNotModifiable(f"cannot {doing} order {self.id}: it is {self.status}")

    def _line(self, product_id: str) -> OrderLine:
        line = self.lines.get(product_id)
        if line is None:
            raise NotFoundError(f"order {self.id} has no item {product_id!r}")
        return line

    def _check_limit(self, lines: list[OrderLine], limits: CreditLimits) -> None:
        total = _total(lines)
        if total is None:
            return
        limit = limits.limit_for(self.customer_id, total.currency.code)
        if total > limit:
            raise CreditLimitExceeded(total, limit)


def _total(lines: list[OrderLine]) -> Money | None:
    if not lines:
        return None
    total = lines[0].subtotal
    for line in lines[1:]:
        total = total + line.subtotal
    return total
