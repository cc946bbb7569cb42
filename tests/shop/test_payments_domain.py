"""Payments without a server: the payment aggregate, the anti-corruption layer in front of
the fake provider, and the handlers on a command bus over an in-memory store."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from invariant.application import Aggregates, CommandBus, default_middleware
from invariant.domain import Money
from invariant.store import EventRegistry, EventStore, MemoryStorage
from shop.kernel import OrderId
from shop.payments.application import COMMANDS, ChargePayment, PaymentHandlers, RefundPayment
from shop.payments.domain import (
    CLOSED_REASON,
    EVENTS,
    Approved,
    Declined,
    Payment,
    PaymentCharged,
    PaymentDeclined,
    TimedOut,
)
from shop.payments.infrastructure import PaymentGateway, from_minor, to_minor
from shop.payments.provider import FakePaymentProvider

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
AMOUNT = Money.of("89.00", "USD")


# -- the aggregate ---------------------------------------------------------------------------

def test_a_payment_is_charged_once_whatever_the_attempts() -> None:
    payment = Payment(OrderId("o-1"))
    payment.declined(1, "insufficient funds")
    payment.charged(2, "ch_1", "c-1", AMOUNT)
    payment.charged(2, "ch_2", "c-1", AMOUNT)
    payment.charged(3, "ch_3", "c-1", AMOUNT)
    assert [type(e) for e in payment.pending_events] == [PaymentDeclined, PaymentCharged]
    assert payment.charge is not None and payment.charge.charge_id == "ch_1"
    assert not payment.needs_charge(3)


def test_an_attempt_has_one_outcome() -> None:
    payment = Payment(OrderId("o-1"))
    payment.timed_out(1)
    payment.declined(1, "late answer")
    assert len(payment.pending_events) == 1 and payment.needs_charge(2)


def test_a_refund_happens_once_and_closes_the_payment() -> None:
    payment = Payment(OrderId("o-1"))
    payment.charged(1, "ch_1", "c-1", AMOUNT)
    payment.refunded_as("re_1")
    payment.refunded_as("re_2")
    assert len(payment.pending_events) == 2 and payment.refunded
    assert not payment.needs_refund()


def test_a_closed_payment_refuses_late_charges() -> None:
    payment = Payment(OrderId("o-1"))
    payment.close()
    assert not payment.needs_charge(1)
    payment.refuse_closed(1)
    declined = payment.pending_events[-1]
    assert isinstance(declined, PaymentDeclined) and declined.reason == CLOSED_REASON


# -- the anti-corruption layer ---------------------------------------------------------------

def test_money_crosses_the_boundary_as_exact_minor_units() -> None:
    assert to_minor(Money.of("89.00", "USD")) == 8900
    assert to_minor(Money.of("1500", "JPY")) == 1500
    assert from_minor(2950, "usd") == Money.of("29.50", "USD")
    assert from_minor(1500, "jpy") == Money.of("1500", "JPY")


async def test_the_gateway_translates_the_providers_answers() -> None:
    provider = FakePaymentProvider()
    gateway = PaymentGateway(provider, timeout=0.05)
    approved = await gateway.charge("o-1", "c-1", 1, AMOUNT)
    assert isinstance(approved, Approved) and approved.charge_id.startswith("ch_")
    provider.mode = "decline"
    assert await gateway.charge("o-2", "c-1", 1, AMOUNT) == Declined("insufficient funds")
    provider.mode = "timeout"
    assert await gateway.charge("o-3", "c-1", 1, AMOUNT) == TimedOut()
    assert provider.charges == 1


async def test_a_repeated_charge_attempt_gets_the_same_answer_and_charges_once() -> None:
    provider = FakePaymentProvider()
    gateway = PaymentGateway(provider, timeout=0.05)
    first = await gateway.charge("o-1", "c-1", 1, AMOUNT)
    provider.mode = "decline"
    assert await gateway.charge("o-1", "c-1", 1, AMOUNT) == first
    assert provider.charges == 1


async def test_refunds_are_idempotent() -> None:
    provider = FakePaymentProvider()
    gateway = PaymentGateway(provider, timeout=0.05)
    charged = await gateway.charge("o-1", "c-1", 1, AMOUNT)
    assert isinstance(charged, Approved)
    first = await gateway.refund("o-1", charged.charge_id)
    assert await gateway.refund("o-1", charged.charge_id) == first
    assert provider.refunds == 1


# -- the handlers, through a command bus ----------------------------------------------------

class Payments:
    def __init__(self) -> None:
        self.storage = MemoryStorage()
        self.store = EventStore(self.storage, EventRegistry(EVENTS))
        self.provider = FakePaymentProvider()
        handlers = PaymentHandlers(PaymentGateway(self.provider, timeout=0.05), lambda: NOW)
        self.bus = CommandBus(Aggregates(self.store), handlers.handlers(),
                              middleware=default_middleware(self.storage), commands=COMMANDS)

    def charge(self, attempt: int, order_id: str = "o-1") -> ChargePayment:
        return ChargePayment(order_id=order_id, customer_id="c-1", amount=AMOUNT,
                             attempt=attempt)

    async def events(self) -> Counter[str]:
        return Counter(e.event_type for e in await self.store.read_all(limit=1000))

    async def published(self) -> list[str]:
        return [r.message_type for r in await self.storage.read_outbox(limit=1000)
                if r.position is None]


async def test_charging_records_the_outcome_and_publishes_payment_charged() -> None:
    p = Payments()
    p.provider.mode = "decline"
    assert (await p.bus.dispatch(p.charge(1))).value == "declined"
    p.provider.mode = "timeout"
    assert (await p.bus.dispatch(p.charge(2))).value == "timed out"
    p.provider.mode = "approve"
    assert (await p.bus.dispatch(p.charge(3))).value == "charged"
    assert await p.events() == Counter({"payments.PaymentDeclined": 1,
                                        "payments.PaymentTimedOut": 1,
                                        "payments.PaymentCharged": 1})
    assert await p.published() == ["payment.charged"]


async def test_a_command_sent_twice_charges_once() -> None:
    p = Payments()
    command = p.charge(1)
    await p.bus.dispatch(command)
    again = await p.bus.dispatch(command)
    assert again.duplicate and p.provider.charges == 1
    await p.bus.dispatch(p.charge(2))  # a later attempt after a success: nothing to charge
    assert p.provider.charges == 1


async def test_a_refund_gives_the_money_back_once() -> None:
    p = Payments()
    await p.bus.dispatch(p.charge(1))
    assert (await p.bus.dispatch(RefundPayment(order_id="o-1"))).value == "refunded"
    assert (await p.bus.dispatch(RefundPayment(order_id="o-1"))).value == "nothing to refund"
    assert p.provider.refunds == 1
    assert await p.published() == ["payment.charged", "payment.refunded"]


async def test_a_refund_before_any_charge_closes_the_payment() -> None:
    p = Payments()
    assert (await p.bus.dispatch(RefundPayment(order_id="o-1"))).value == "nothing to refund"
    assert (await p.bus.dispatch(p.charge(1))).value == "nothing to charge"
    assert p.provider.charges == 0
    assert (await p.events())["payments.PaymentDeclined"] == 1


@pytest.mark.parametrize("attempt", [0, -1])
async def test_attempts_count_from_one(attempt: int) -> None:
    from invariant.domain import ValidationError

    with pytest.raises(ValidationError):
        await Payments().bus.dispatch(Payments().charge(attempt))


@pytest.mark.parametrize("refund_first", [False, True], ids=["charge first", "refund first"])
async def test_a_refund_racing_a_charge_of_the_same_order_never_keeps_the_money(
        refund_first: bool) -> None:
    """The provider answers the charge slowly; the refund arrives meanwhile (or just
    before). Whichever is handled first, the customer ends with nothing taken."""
    import asyncio

    p = Payments()
    create_charge = p.provider.create_charge

    async def slowly(request: dict[str, object]) -> dict[str, object]:
        await asyncio.sleep(0.02)
        return await create_charge(request)

    p.provider.create_charge = slowly  # type: ignore[method-assign]
    both = [p.bus.dispatch(p.charge(1)), p.bus.dispatch(RefundPayment(order_id="o-1"))]
    await asyncio.gather(*(reversed(both) if refund_first else both))
    assert p.provider.charges == p.provider.refunds, (p.provider.charges, await p.events())
    assert p.provider.charges == (0 if refund_first else 1)
