"""The order fulfilment process manager as a specification: the decisions it makes for
each event and deadline (given/when/then, a clock the test moves, no database)."""

from __future__ import annotations

from datetime import UTC, datetime

from invariant.domain import Money
from invariant.processes import COMPLETED, FAILED, RUNNING
from invariant.testing import ManualClock, ProcessScenario
from shop.fulfilment.application import OrderFulfilment
from shop.inventory.application import (
    CommitStock,
    ReleaseStock,
    ReserveStock,
    StockLine,
    StockReservationRejected,
    StockReserved,
)
from shop.ordering.application import (
    CancelOrder,
    MarkOrderShipped,
    OrderCancelled,
    OrderPlaced,
    OrderShipped,
)
from shop.ordering.domain import OrderLine
from shop.payments.application import (
    ChargePayment,
    PaymentCharged,
    PaymentDeclined,
    PaymentTimedOut,
    RefundPayment,
)
from shop.shipping.application import (
    CancelShipment,
    CreateShipment,
    ShipmentCreated,
    ShipmentRefused,
)

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
TOTAL = Money.of("118.50", "USD")
PLACED = OrderPlaced("o-1", "c-1", (
    OrderLine("keyboard", "Keyboard", Money.of("89.00", "USD"), 1),
    OrderLine("mouse", "Mouse", Money.of("29.50", "USD"), 1)), TOTAL, NOW)
RESERVE = ReserveStock(order_id="o-1", lines=(StockLine(product_id="keyboard", quantity=1),
                                              StockLine(product_id="mouse", quantity=1)))


def charge(attempt: int) -> ChargePayment:
    return ChargePayment(order_id="o-1", customer_id="c-1", amount=TOTAL, attempt=attempt)


def scenario() -> ProcessScenario:
    return ProcessScenario(OrderFulfilment(reservation_timeout=10, payment_timeout=5),
                           clock=ManualClock(NOW))


def charging() -> ProcessScenario:
    return scenario().given(PLACED, StockReserved("o-1"))


def shipping() -> ProcessScenario:
    return charging().given(PaymentCharged("o-1", 1, "ch_1", "c-1", TOTAL))


def cancelled(reason: str) -> OrderCancelled:
    return OrderCancelled("o-1", reason, NOW)


def test_a_placed_order_first_reserves_its_stock_with_a_deadline() -> None:
    s = scenario().when(PLACED)
    s.then_sent(RESERVE).then_state(phase="reserving").then_status(RUNNING)
    s.then_deadlines(reservation=10.0)


def test_the_happy_path_reserves_charges_ships_and_commits_the_stock() -> None:
    s = scenario().given(PLACED)
    s.when(StockReserved("o-1")).then_sent(charge(1)).then_deadlines(payment=5.0)
    s.when(PaymentCharged("o-1", 1, "ch_1", "c-1", TOTAL))
    s.then_sent(CreateShipment(order_id="o-1", customer_id="c-1")).then_deadlines()
    s.when(ShipmentCreated("o-1", "TRK-0123456789"))
    s.then_sent(MarkOrderShipped(order_id="o-1", tracking_number="TRK-0123456789"))
    s.then_state(phase="marking", tracking_number="TRK-0123456789")
    s.when(OrderShipped("o-1", "TRK-0123456789", NOW))
    s.then_sent(CommitStock(order_id="o-1")).then_status(COMPLETED).then_state(phase="shipped")
    s.then_ids_are_deterministic()


def test_an_order_short_of_stock_is_cancelled_and_nothing_is_charged() -> None:
    s = scenario().given(PLACED).when(StockReservationRejected("o-1", "poster: 1 left"))
    s.then_sent(CancelOrder(order_id="o-1", reason="out of stock: poster: 1 left"))
    s.then_status(FAILED).then_state(phase="cancelled", attempt=0)


def test_no_answer_from_inventory_in_time_releases_and_cancels() -> None:
    s = scenario().given(PLACED).when_time_passes(seconds=10)
    s.then_sent(ReleaseStock(order_id="o-1"),
                CancelOrder(order_id="o-1", reason="stock reservation timed out"))
    s.then_status(FAILED)


def test_a_declined_payment_is_tried_three_times_then_everything_is_undone() -> None:
    s = charging()
    s.when(PaymentDeclined("o-1", 1, "insufficient funds")).then_sent(charge(2))
    s.when(PaymentDeclined("o-1", 2, "insufficient funds")).then_sent(charge(3))
    s.when(PaymentDeclined("o-1", 3, "insufficient funds"))
    s.then_sent(ReleaseStock(order_id="o-1"), RefundPayment(order_id="o-1"),
                CancelOrder(order_id="o-1", reason="payment declined 3 times"))
    s.then_status(FAILED).then_state(attempt=3, reason="payment declined 3 times")
    s.then_ids_are_deterministic()


def test_timed_out_attempts_count_like_declines() -> None:
    s = charging()
    s.when(PaymentTimedOut("o-1", 1)).then_sent(charge(2))
    s.when_time_passes(seconds=5).then_sent(charge(3))  # attempt 2 never answered
    s.when(PaymentTimedOut("o-1", 3))
    s.then_sent(ReleaseStock(order_id="o-1"), RefundPayment(order_id="o-1"),
                CancelOrder(order_id="o-1", reason="payment timed out 3 times"))


def test_mixed_failures_say_failed() -> None:
    s = charging()
    s.when(PaymentDeclined("o-1", 1, "no"), PaymentTimedOut("o-1", 2), PaymentDeclined("o-1", 3,
                                                                                       "no"))
    s.then_state(reason="payment failed 3 times")


def test_an_answer_for_an_earlier_attempt_does_not_start_another() -> None:
    s = charging().given(PaymentTimedOut("o-1", 1))
    s.when(PaymentDeclined("o-1", 1, "late")).then_nothing_sent().then_state(attempt=2)


def test_a_late_charge_of_an_earlier_attempt_is_kept() -> None:
    s = charging().given(PaymentTimedOut("o-1", 1))
    s.when(PaymentCharged("o-1", 1, "ch_1", "c-1", TOTAL))
    s.then_sent(CreateShipment(order_id="o-1", customer_id="c-1"))


def test_a_refused_shipment_refunds_releases_and_cancels() -> None:
    s = shipping().when(ShipmentRefused("o-1", "carrier strike"))
    s.then_sent(ReleaseStock(order_id="o-1"), RefundPayment(order_id="o-1"),
                CancelOrder(order_id="o-1", reason="shipment refused: carrier strike"))
    s.then_status(FAILED)


def test_a_customer_cancel_while_reserving_releases_the_stock() -> None:
    s = scenario().given(PLACED).when(cancelled("changed my mind"))
    s.then_sent(ReleaseStock(order_id="o-1")).then_status(FAILED).then_deadlines()
    s.then_state(phase="cancelled", reason="changed my mind")


def test_a_customer_cancel_while_charging_refunds_and_releases() -> None:
    s = charging().when(cancelled("changed my mind"))
    s.then_sent(RefundPayment(order_id="o-1"), ReleaseStock(order_id="o-1"))


def test_a_customer_cancel_racing_the_shipment_undoes_all_of_it() -> None:
    s = shipping().given(ShipmentCreated("o-1", "TRK-1")).when(cancelled("changed my mind"))
    s.then_sent(CancelShipment(order_id="o-1"), RefundPayment(order_id="o-1"),
                ReleaseStock(order_id="o-1"))


def test_its_own_cancellation_echoing_back_changes_nothing() -> None:
    s = scenario().given(PLACED, StockReservationRejected("o-1", "none left"))
    s.when(cancelled("out of stock: none left")).then_nothing_sent()


def test_events_of_other_orders_do_not_touch_this_one() -> None:
    s = charging().when(PaymentDeclined("o-2", 1, "no")).then_nothing_sent()
    s.then_state("o-1", attempt=1)
