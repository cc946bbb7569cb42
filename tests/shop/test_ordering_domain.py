"""The order aggregate as a specification: the cart, the credit limit, placing,
cancelling and shipping; and the ids its commands accept (no server)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from invariant.application import Command
from invariant.domain import DomainError, Money, NotFoundError, ValidationError
from shop.kernel import CustomerId, OrderId
from shop.ordering.application import AddItem, ChangeQuantity, RemoveItem, StartOrder
from shop.ordering.domain import (
    CANCELLED,
    PLACED,
    SHIPPED,
    CreditLimitExceeded,
    CreditLimits,
    ItemAdded,
    ItemQuantityChanged,
    ItemRemoved,
    Order,
    OrderCancelled,
    OrderNotModifiable,
    OrderPlaced,
    OrderShipped,
)
from tests.money import usd

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
LIMITS = CreditLimits()


def draft() -> Order:
    order = Order.start(OrderId("o-1"), CustomerId("c-1"), NOW)
    order.mark_saved()
    return order


def test_a_new_order_is_an_empty_draft_of_its_customer() -> None:
    order = draft()
    assert order.status == "draft" and order.total() is None
    assert order.belongs_to(CustomerId("c-1")) and not order.belongs_to(CustomerId("c-2"))


def test_items_are_priced_when_added_and_summed_into_the_total() -> None:
    order = draft()
    order.add_item("keyboard", "Keyboard", usd("89.00"), 2, LIMITS)
    order.add_item("mouse", "Mouse", usd("29.50"), 1, LIMITS)
    assert order.total() == usd("207.50")
    assert [type(e) for e in order.pending_events] == [ItemAdded, ItemAdded]


def test_adding_a_product_again_raises_its_quantity() -> None:
    order = draft()
    order.add_item("mouse", "Mouse", usd("29.50"), 1, LIMITS)
    order.add_item("mouse", "Mouse", usd("29.50"), 2, LIMITS)
    assert order.lines["mouse"].quantity == 3
    assert isinstance(order.pending_events[-1], ItemQuantityChanged)


def test_quantities_change_and_items_are_removed() -> None:
    order = draft()
    order.add_item("mouse", "Mouse", usd("29.50"), 1, LIMITS)
    order.change_quantity("mouse", 4, LIMITS)
    assert order.total() == usd("118.00")
    order.remove_item("mouse")
    assert order.total() is None and isinstance(order.pending_events[-1], ItemRemoved)


@pytest.mark.parametrize("quantity", [0, -1, 100])
def test_a_quantity_outside_1_to_99_is_refused(quantity: int) -> None:
    with pytest.raises(ValidationError):
        draft().add_item("mouse", "Mouse", usd("29.50"), quantity, LIMITS)


def test_removing_an_item_the_order_does_not_have_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        draft().remove_item("mouse")


def test_the_total_may_never_exceed_the_credit_limit() -> None:
    order = draft()
    order.add_item("monitor", "Monitor", usd("249.00"), 4, LIMITS)  # 996.00
    with pytest.raises(CreditLimitExceeded) as refused:
        order.add_item("mouse", "Mouse", usd("29.50"), 1, LIMITS)
    assert refused.value.limit == usd("1000.00")
    with pytest.raises(CreditLimitExceeded):
        order.change_quantity("monitor", 5, LIMITS)
    assert order.total() == usd("996.00")  # nothing changed


def test_a_customer_may_have_another_limit() -> None:
    limits = CreditLimits(overrides={"c-1": usd("50.00")})
    with pytest.raises(CreditLimitExceeded):
        draft().add_item("mouse", "Mouse", usd("29.50"), 2, limits)
    other = Order.start(OrderId("o-2"), CustomerId("c-2"), NOW)
    other.add_item("mouse", "Mouse", usd("29.50"), 2, limits)


def test_placing_checks_the_limit_again() -> None:
    order = draft()
    order.add_item("mouse", "Mouse", usd("29.50"), 10, LIMITS)
    with pytest.raises(CreditLimitExceeded):
        order.place(CreditLimits(Decimal("100.00")), NOW)
    assert order.status == "draft"


def test_one_currency_per_order() -> None:
    order = draft()
    order.add_item("mouse", "Mouse", usd("29.50"), 1, LIMITS)
    with pytest.raises(DomainError, match="in USD"):
        order.add_item("poster", "Poster", Money.of("15.00", "EUR"), 1, LIMITS)


def test_an_empty_order_cannot_be_placed() -> None:
    with pytest.raises(DomainError, match="empty"):
        draft().place(LIMITS, NOW)


def test_placing_records_the_lines_and_total_and_freezes_the_cart() -> None:
    order = draft()
    order.add_item("mouse", "Mouse", usd("29.50"), 2, LIMITS)
    order.place(LIMITS, NOW)
    placed = order.pending_events[-1]
    assert isinstance(placed, OrderPlaced)
    assert placed.total == usd("59.00") and placed.customer_id == "c-1"
    assert [(x.product_id, x.quantity) for x in placed.lines] == [("mouse", 2)]
    assert order.status == PLACED
    with pytest.raises(OrderNotModifiable):
        order.add_item("keyboard", "Keyboard", usd("89.00"), 1, LIMITS)
    with pytest.raises(OrderNotModifiable):
        order.place(LIMITS, NOW)


def placed() -> Order:
    order = draft()
    order.add_item("mouse", "Mouse", usd("29.50"), 1, LIMITS)
    order.place(LIMITS, NOW)
    order.mark_saved()
    return order


def test_cancelling_twice_records_one_cancellation() -> None:
    order = placed()
    assert order.cancel("changed my mind", NOW) is True
    assert order.cancel("again", NOW) is False
    assert [type(e) for e in order.pending_events] == [OrderCancelled]
    assert order.status == CANCELLED and order.reason == "changed my mind"


def test_a_shipped_order_cannot_be_cancelled_and_ships_once() -> None:
    order = placed()
    assert order.mark_shipped("TRK-1", NOW) is True
    assert order.mark_shipped("TRK-1", NOW) is False
    assert order.status == SHIPPED and order.tracking_number == "TRK-1"
    with pytest.raises(OrderNotModifiable):
        order.cancel("too late", NOW)
    assert [type(e) for e in order.pending_events] == [OrderShipped]


def test_a_cancelled_order_never_ships() -> None:
    order = placed()
    order.cancel("out of stock", NOW)
    assert order.mark_shipped("TRK-1", NOW) is False
    assert order.status == CANCELLED


def test_history_rebuilds_the_same_order() -> None:
    order = Order.start(OrderId("o-1"), CustomerId("c-1"), NOW)
    order.add_item("mouse", "Mouse", usd("29.50"), 1, LIMITS)
    order.add_item("keyboard", "Keyboard", usd("89.00"), 1, LIMITS)
    order.remove_item("mouse")
    order.place(LIMITS, NOW)
    again = Order.rehydrate(OrderId("o-1"), order.pending_events)
    assert again.status == PLACED and again.total() == usd("89.00")
    assert again.customer_id == CustomerId("c-1") and again.version == order.version


@pytest.mark.parametrize("command", [
    StartOrder(order_id="o 1", customer_id="c-1"),
    AddItem(order_id="o-1", customer_id="c-1", product_id="mouse/../x", quantity=1),
    ChangeQuantity(order_id="o-1", customer_id="", product_id="mouse", quantity=2),
    RemoveItem(order_id="o-1", customer_id="c-1", product_id="m" * 65),
])
def test_order_commands_accept_only_the_kernels_ids(command: Command) -> None:
    # The shared kernel's rule, the one routes and other contexts apply too.
    with pytest.raises(ValidationError) as caught:
        command.validate()
    assert caught.value.subject == type(command).__name__
    assert [e.code for e in caught.value.errors] == ["invalid_id"]


def test_order_commands_with_kernel_ids_are_valid() -> None:
    StartOrder(order_id="0f8c2d1e", customer_id="3b1f-77:a").validate()
    AddItem(order_id="o-1", customer_id="c-1", product_id="usb.mouse_2", quantity=1).validate()
