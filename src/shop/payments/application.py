"""Payments' use cases: charge an order (one attempt at a time) and refund it.

Published to other contexts: the commands :class:`ChargePayment` and :class:`RefundPayment`
and the events fulfilment reacts to (:class:`PaymentCharged`, :class:`PaymentDeclined`,
:class:`PaymentTimedOut`, :class:`PaymentRefunded`).
"""

from __future__ import annotations

from typing import Any, Protocol

from invariant.application import AnyCommandHandler, Command, UnitOfWork
from invariant.clock import Clock
from invariant.domain import Money
from invariant.messaging.published_language import Amount
from shop.kernel import OrderId
from shop.payments import published
from shop.payments.domain import (
    Approved,
    ChargeOutcome,
    Declined,
    Payment,
    PaymentCharged,
    PaymentDeclined,
    PaymentRefunded,
    PaymentTimedOut,
)
from shop.payments.messages import ChargePayment, RefundPayment

SOURCE = "payments"



COMMANDS: tuple[type[Command[Any]], ...] = (ChargePayment, RefundPayment)


class Gateway(Protocol):
    """The payment provider as payments sees it (the anti-corruption layer implements it)."""

    async def charge(self, order_id: str, customer_id: str, attempt: int, amount: Money
                     ) -> ChargeOutcome:
        """Charge ``amount`` once per order and attempt, however often asked."""

    async def refund(self, order_id: str, charge_id: str) -> str:
        """Refund the charge (once); the provider's refund reference."""


class PaymentHandlers:
    """The command handlers, with the gateway (the anti-corruption layer) and the clock."""

    def __init__(self, gateway: Gateway, clock: Clock) -> None:
        self.gateway = gateway
        self.clock = clock

    def handlers(self) -> dict[type[Command[Any]], AnyCommandHandler]:
        return {ChargePayment: self.charge, RefundPayment: self.refund}

    async def charge(self, command: ChargePayment, uow: UnitOfWork) -> str:
        payment = await uow.find_or_add(Payment, OrderId(command.order_id))
        if not payment.needs_charge(command.attempt):
            payment.refuse_closed(command.attempt)
            return "nothing to charge"
        outcome = await self.gateway.charge(command.order_id, command.customer_id,
                                            command.attempt, command.amount)
        match outcome:
            case Approved(charge_id=charge_id):
                payment.charged(command.attempt, charge_id, command.customer_id,
                                command.amount)
                now = self.clock()
                uow.emit(published.PaymentCharged(
                    order_id=command.order_id, customer_id=command.customer_id,
                    charge_id=charge_id, attempt=command.attempt,
                    amount=Amount.of(command.amount), occurred_at=now,
                ).to_outbox(source=SOURCE, stream_id=payment.stream_id()))
                return "charged"
            case Declined(reason=reason):
                payment.declined(command.attempt, reason)
                return "declined"
        payment.timed_out(command.attempt)
        return "timed out"

    async def refund(self, command: RefundPayment, uow: UnitOfWork) -> str:
        payment = await uow.find_or_add(Payment, OrderId(command.order_id))
        if payment.charge is None or not payment.needs_refund():
            payment.close()
            return "nothing to refund"
        refund_id = await self.gateway.refund(command.order_id, payment.charge.charge_id)
        charge = payment.charge
        payment.refunded_as(refund_id)
        now = self.clock()
        uow.emit(published.PaymentRefunded(
            order_id=command.order_id, customer_id=charge.customer_id, refund_id=refund_id,
            amount=Amount.of(charge.amount), occurred_at=now,
        ).to_outbox(source=SOURCE, stream_id=payment.stream_id()))
        return "refunded"




__all__ = ["COMMANDS", "ChargePayment", "PaymentCharged", "PaymentDeclined",
           "PaymentHandlers", "PaymentRefunded", "PaymentTimedOut", "RefundPayment"]
