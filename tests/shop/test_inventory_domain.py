"""Inventory's model as a specification (no server): stock never goes below what orders
hold, reservations are all or nothing, released and committed once."""

from __future__ import annotations

import pytest

from invariant.domain import ValidationError
from shop.inventory.application import ReserveStock, SetStock, StockLine
from shop.inventory.domain import (
    EVENTS,
    Reservation,
    ReservationClosed,
    ReservedLine,
    Stock,
    StockBelowReserved,
    StockCommitted,
    StockLevelSet,
    StockReleased,
    StockReservationRejected,
    StockReserved,
    UnitsAllocated,
    UnitsDeallocated,
    UnitsShipped,
)
from shop.kernel import OrderId, ProductId


def stock(product: str, on_hand: int) -> Stock:
    found = Stock.rehydrate(ProductId(product), [StockLevelSet(product, on_hand)])
    return found


def reservation(order: str = "o-1") -> Reservation:
    return Reservation(OrderId(order))


def test_every_event_type_is_unique_and_prefixed_with_the_context() -> None:
    names = [e.event_type for e in EVENTS]
    assert len(set(names)) == len(names)
    assert all(name.startswith("inventory.") for name in names)
    assert StockReserved.event_type == "inventory.StockReserved"


def test_a_reservation_holds_every_line() -> None:
    stocks = {"a": stock("a", 3), "b": stock("b", 1)}
    r = reservation()
    assert r.reserve({"a": 2, "b": 1}, stocks) == "reserved"
    assert r.pending_events == (StockReserved("o-1", (ReservedLine("a", 2),
                                                      ReservedLine("b", 1))),)
    assert stocks["a"].pending_events == (UnitsAllocated("a", "o-1", 2),)
    assert (stocks["a"].available, stocks["b"].available) == (1, 0)


def test_a_reservation_short_of_one_product_holds_nothing_and_names_it() -> None:
    stocks = {"a": stock("a", 3), "b": stock("b", 1)}
    r = reservation()
    assert r.reserve({"a": 2, "b": 2}, stocks) == "rejected"
    assert r.pending_events == (StockReservationRejected("o-1", "b: 2 wanted, 1 available"),)
    assert stocks["a"].pending_events == () and stocks["a"].available == 3


def test_reserving_again_changes_nothing() -> None:
    stocks = {"a": stock("a", 3)}
    r = reservation()
    r.reserve({"a": 1}, stocks)
    r.mark_saved()
    assert r.reserve({"a": 2}, stocks) == "reserved"
    assert r.pending_events == () and stocks["a"].reserved == 1


def test_release_gives_back_exactly_what_was_held_once() -> None:
    stocks = {"a": stock("a", 3), "b": stock("b", 5)}
    r = reservation()
    r.reserve({"a": 2, "b": 1}, stocks)
    stocks["a"].allocate("o-2", 1)  # another order's units stay held
    assert r.release(stocks) == "released"
    assert (stocks["a"].reserved, stocks["b"].reserved) == (1, 0)
    assert stocks["a"].pending_events[-1] == UnitsDeallocated("a", "o-1", 2)
    assert isinstance(r.pending_events[-1], StockReleased)
    before = len(r.pending_events)
    assert r.release(stocks) == "released" and len(r.pending_events) == before


def test_releasing_before_reserving_closes_the_reservation() -> None:
    stocks = {"a": stock("a", 3)}
    r = reservation()
    assert r.release({}) == "closed"
    assert r.pending_events == (ReservationClosed("o-1"),)
    assert r.reserve({"a": 1}, stocks) == "closed" and stocks["a"].reserved == 0


def test_commit_takes_the_held_units_off_hand_once() -> None:
    stocks = {"a": stock("a", 3)}
    r = reservation()
    r.reserve({"a": 2}, stocks)
    assert r.commit(stocks) == "committed"
    assert stocks["a"].pending_events[-1] == UnitsShipped("a", "o-1", 2)
    assert (stocks["a"].on_hand, stocks["a"].reserved) == (1, 0)
    assert isinstance(r.pending_events[-1], StockCommitted)
    assert r.commit(stocks) == "committed" and r.release(stocks) == "committed"
    assert stocks["a"].on_hand == 1


def test_on_hand_cannot_drop_below_what_orders_hold() -> None:
    a = stock("a", 3)
    a.allocate("o-1", 2)
    with pytest.raises(StockBelowReserved, match="orders hold 2"):
        a.set_level(1)
    a.set_level(2)
    assert a.available == 0
    with pytest.raises(StockBelowReserved):
        a.allocate("o-2", 1)


def test_a_stock_history_rebuilds_the_same_levels() -> None:
    history = [StockLevelSet("a", 10), UnitsAllocated("a", "o-1", 3),
               UnitsAllocated("a", "o-2", 2), UnitsDeallocated("a", "o-1", 3),
               UnitsShipped("a", "o-2", 2)]
    a = Stock.rehydrate(ProductId("a"), history)
    assert (a.on_hand, a.reserved, a.available, a.version) == (8, 0, 8, 5)


@pytest.mark.parametrize("command", [
    ReserveStock(order_id="o-1", lines=()),
    ReserveStock(order_id="", lines=(StockLine("a", 1),)),
    ReserveStock(order_id="o-1", lines=(StockLine("a", 0),)),
    ReserveStock(order_id="o-1", lines=(StockLine("a b", 1),)),
    SetStock(product_id="a", on_hand=-1),
    SetStock(product_id="a", on_hand=True),
])
def test_malformed_commands_are_refused_field_by_field(command: ReserveStock | SetStock
                                                       ) -> None:
    with pytest.raises(ValidationError) as raised:
        command.validate()
    assert raised.value.errors


def test_a_product_named_twice_wants_the_sum() -> None:
    command = ReserveStock(order_id="o-1", lines=(StockLine("a", 1), StockLine("b", 2),
                                                  StockLine("a", 3)))
    assert command.wanted() == {"a": 4, "b": 2}
