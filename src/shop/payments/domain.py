"""Payments' domain: one payment per order, charged at most once, refunded at most once.

Each charge attempt has one outcome (charged, declined or timed out); repeating an attempt
changes nothing. A refund closes the payment: a charge that arrives after it (a late
retry) is declined, so money is never taken for an order that was given up on.
"""

from __future__ import annotations

from dataclasses import dataclass

from invariant.domain import AggregateRoot, DomainEvent
from shop.kernel import Money, OrderId


@dataclass(frozen=True)
class PaymentCharged(DomainEvent):
    """The provider took the order's money on attempt ``attempt``."""

    event_type = "payments.PaymentCharged"
    order_id: str
    attempt: int
    charge_id: str
    customer_id: str
    amount: Money


@dataclass(frozen=True)
class PaymentDeclined(DomainEvent):
    """The provider (or a closed payment) refused attempt ``attempt``."""

    event_type = "payments.PaymentDeclined"
    order_id: str
    attempt: int
    reason: str


@dataclass(frozen=True)
class PaymentTimedOut(DomainEvent):
    """The provider did not answer attempt ``attempt`` in time."""

    event_type = "payments.PaymentTimedOut"
    order_id: str
    attempt: int


@dataclass(frozen=True)
class PaymentRefunded(DomainEvent):
    """The charge was given back (once); the payment is closed."""

    event_type = "payments.PaymentRefunded"
    order_id: str
    refund_id: str
    customer_id: str
    amount: Money


@dataclass(frozen=True)
class PaymentClosed(DomainEvent):
    """Given up on before anything was charged: later charges are refused."""

    event_type = "payments.PaymentClosed"
    order_id: str


EVENTS: tuple[type[DomainEvent], ...] = (PaymentCharged, PaymentDeclined, PaymentTimedOut,
                                         PaymentRefunded, PaymentClosed)

CLOSED_REASON = "payment closed: the order was given up on"


@dataclass(frozen=True, slots=True)
class Approved:
    """The provider took the money."""

    charge_id: str


@dataclass(frozen=True, slots=True)
class Declined:
    """The provider refused the charge."""

    reason: str


@dataclass(frozen=True, slots=True)
class TimedOut:
    """The provider did not answer in time (nothing is known to be charged)."""


ChargeOutcome = Approved | Declined | TimedOut


@dataclass(frozen=True, slots=True)
class Charge:
    """A charge the provider made."""

    charge_id: str
    customer_id: str
    amount: Money


class Payment(AggregateRoot[OrderId]):
    """The payment of one order."""

    category = "payments_payment"

    def __init__(self, id: OrderId) -> None:
        super().__init__(id)
        self.attempts: dict[int, str] = {}
        self.charge: Charge | None = None
        self.refunded = False
        self.closed = False

    def needs_charge(self, attempt: int) -> bool:
        """True when attempt ``attempt`` should go to the provider: nothing is charged yet,
        the payment is open, and that attempt has no outcome."""
        return self.charge is None and not self.closed and attempt not in self.attempts

    def refuse_closed(self, attempt: int) -> None:
        if self.closed and self.charge is None and attempt not in self.attempts:
            self.record(PaymentDeclined(self.id.value, attempt, CLOSED_REASON))

    def charged(self, attempt: int, charge_id: str, customer_id: str, amount: Money) -> None:
        if self.needs_charge(attempt):
            self.record(PaymentCharged(self.id.value, attempt, charge_id, customer_id,
                                       amount))

    def declined(self, attempt: int, reason: str) -> None:
        if self.needs_charge(attempt):
            self.record(PaymentDeclined(self.id.value, attempt, reason))

    def timed_out(self, attempt: int) -> None:
        if self.needs_charge(attempt):
            self.record(PaymentTimedOut(self.id.value, attempt))

    def needs_refund(self) -> bool:
        return self.charge is not None and not self.refunded

    def refunded_as(self, refund_id: str) -> None:
        """The provider refunded the charge."""
        if self.charge is not None and not self.refunded:
            self.record(PaymentRefunded(self.id.value, refund_id, self.charge.customer_id,
                                        self.charge.amount))

    def close(self) -> None:
        """Nothing was charged and nothing may be any more."""
        if self.charge is None and not self.closed:
            self.record(PaymentClosed(self.id.value))

    def apply(self, event: DomainEvent) -> None:
        match event:
            case PaymentCharged(attempt=attempt, charge_id=charge_id, customer_id=customer,
                                amount=amount):
                self.attempts[attempt] = "charged"
                self.charge = Charge(charge_id, customer, amount)
            case PaymentDeclined(attempt=attempt):
                self.attempts[attempt] = "declined"
            case PaymentTimedOut(attempt=attempt):
                self.attempts[attempt] = "timed out"
            case PaymentRefunded():
                self.refunded, self.closed = True, True
            case PaymentClosed():
                self.closed = True
