"""The order fulfilment process manager as a specification, with the exported test kit."""

from __future__ import annotations

from examples.orders.application import (
    CancelOrder,
    ChargePayment,
    CompleteOrder,
    RefundPayment,
    ReleaseInventory,
    ReserveInventory,
    ShipOrder,
)
from examples.orders.domain import (
    InventoryReservationFailed,
    InventoryReserved,
    OrderPlaced,
    OrderShipped,
    PaymentCharged,
    PaymentDeclined,
    ShipmentFailed,
)
from examples.orders.process import OrderFulfilment
from invariant.processes import COMPLETED, FAILED, RUNNING, command_id_for
from invariant.testing import ManualClock, ProcessScenario

PLACED = OrderPlaced("o-1", "c-1", "sku-1", 2, 100)


def charge(attempt: int) -> ChargePayment:
    return ChargePayment(order_id="o-1", amount=100, attempt=attempt)


def scenario() -> ProcessScenario:
    return ProcessScenario(OrderFulfilment(), clock=ManualClock())


def test_an_order_placed_starts_a_payment_with_a_30_second_deadline() -> None:
    s = scenario().when(PLACED)
    s.then_sent(charge(1)).then_state(phase="payment", attempt=1).then_status(RUNNING)
    s.then_deadlines(payment=30.0)


def test_the_happy_path_reserves_ships_and_completes() -> None:
    s = scenario().given(PLACED).when(PaymentCharged("o-1", 100, 1))
    s.then_sent(ReserveInventory(order_id="o-1", sku="sku-1", quantity=2, stock=10))
    s.then_deadlines(inventory=60.0)
    s.when(InventoryReserved("o-1", "sku-1", 2)).then_sent(ShipOrder(order_id="o-1"))
    s.then_deadlines()
    s.when(OrderShipped("o-1")).then_sent(CompleteOrder(order_id="o-1")).then_status(COMPLETED)
    s.then_ids_are_deterministic()


def test_a_declined_payment_is_tried_three_times_then_the_order_is_cancelled() -> None:
    s = scenario().given(PLACED)
    s.when(PaymentDeclined("o-1", 1, "no")).then_sent(charge(2)).then_state(attempt=2)
    s.when(PaymentDeclined("o-1", 2, "no")).then_sent(charge(3))
    s.when(PaymentDeclined("o-1", 3, "no"))
    s.then_sent(RefundPayment(order_id="o-1"),
                CancelOrder(order_id="o-1", reason="payment declined 3 times"))
    s.then_status(FAILED).then_deadlines()


def test_duplicate_and_out_of_order_events_change_nothing() -> None:
    s = scenario().given(PLACED, PaymentDeclined("o-1", 1, "no"))
    s.when(PaymentDeclined("o-1", 1, "no")).then_nothing_sent().then_state(attempt=2)
    s.when(InventoryReserved("o-1", "sku-1", 2)).then_nothing_sent()  # before payment
    s.when(OrderShipped("o-1")).then_nothing_sent().then_state(phase="payment")
    s.when(PLACED).then_nothing_sent()
    s.when(PaymentCharged("o-1", 100, 1)).then_state(phase="inventory")
    s.when(PaymentCharged("o-1", 100, 2)).then_nothing_sent()


def test_the_payment_timeout_counts_as_a_failed_attempt_and_fires_once() -> None:
    s = scenario().given(PLACED)
    s.when_time_passes(seconds=29).then_nothing_sent()
    s.when_time_passes(seconds=1).then_sent(charge(2)).then_deadlines(payment=30.0)
    s.when_time_passes(seconds=30).then_sent(charge(3))
    s.when_time_passes(seconds=30).then_status(FAILED)
    s.then_sent(RefundPayment(order_id="o-1"),
                CancelOrder(order_id="o-1", reason="payment timed out 3 times"))
    s.when_time_passes(seconds=300).then_nothing_sent()


def test_the_awaited_event_cancels_the_timeout() -> None:
    s = scenario().given(PLACED, PaymentCharged("o-1", 100, 1))
    s.when_time_passes(seconds=31).then_nothing_sent()  # payment's deadline is gone
    s.when(InventoryReserved("o-1", "sku-1", 2)).then_sent(ShipOrder(order_id="o-1"))
    s.when_time_passes(seconds=120).then_nothing_sent()


def test_the_inventory_timeout_undoes_the_payment_and_whatever_was_reserved() -> None:
    s = scenario().given(PLACED, PaymentCharged("o-1", 100, 1))
    s.when_time_passes(seconds=60)
    s.then_sent(ReleaseInventory(order_id="o-1"), RefundPayment(order_id="o-1"),
                CancelOrder(order_id="o-1", reason="inventory timed out"))
    s.then_status(FAILED)
    s.when(InventoryReserved("o-1", "sku-1", 2)).then_nothing_sent()  # too late: ignored


def test_refusals_at_each_later_step_compensate() -> None:
    s = scenario().given(PLACED, PaymentCharged("o-1", 100, 1))
    s.when(InventoryReservationFailed("o-1", "none left"))
    s.then_sent(RefundPayment(order_id="o-1"),
                CancelOrder(order_id="o-1", reason="inventory refused"))
    t = scenario().given(PLACED, PaymentCharged("o-1", 100, 1),
                         InventoryReserved("o-1", "sku-1", 2))
    t.when(ShipmentFailed("o-1", "no"))
    t.then_sent(ReleaseInventory(order_id="o-1"), RefundPayment(order_id="o-1"),
                CancelOrder(order_id="o-1", reason="shipping refused"))


def test_command_ids_derive_from_the_process_and_the_decision() -> None:
    s = scenario().when(PLACED)
    assert s.sent[0].command_id == command_id_for("order-fulfilment-o-1", "charge/1")
    again = scenario().when(PLACED)
    assert again.sent[0].command_id == s.sent[0].command_id
