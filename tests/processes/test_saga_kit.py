"""The order saga as a specification, with the exported SagaScenario."""

from __future__ import annotations

from examples.orders.application import (
    CancelOrder,
    CancelShipment,
    ChargePayment,
    CompleteOrder,
    PlaceOrder,
    RefundPayment,
    ReleaseInventory,
    ReserveInventory,
    ShipOrder,
)
from examples.orders.saga import ORDER_SAGA
from invariant.processes import COMPLETED, FAILED, NEEDS_ATTENTION
from invariant.testing import SagaScenario

DATA = {"order_id": "o-1", "customer_id": "c-1", "sku": "sku-1", "quantity": 2, "amount": 100}
PLACE = PlaceOrder(order_id="o-1", customer_id="c-1", sku="sku-1", quantity=2, amount=100,
                   coordinator="saga")
RESERVE = ReserveInventory(order_id="o-1", sku="sku-1", quantity=2, stock=10)


def charge(attempt: int) -> ChargePayment:
    return ChargePayment(order_id="o-1", amount=100, attempt=attempt)


async def test_every_step_sends_its_command_and_the_saga_completes() -> None:
    async with SagaScenario(ORDER_SAGA) as s:
        s.replying(ReserveInventory, True).replying(ChargePayment, True)
        s.replying(ShipOrder, True)
        await s.when_started("saga-1", DATA)
        s.then_sent(PLACE, RESERVE, charge(1), ShipOrder(order_id="o-1"),
                    CompleteOrder(order_id="o-1"))
        s.then_status(COMPLETED).then_state(completed=[0, 1, 2, 3, 4])


async def test_a_declined_payment_is_retried_then_everything_is_undone_in_reverse() -> None:
    async with SagaScenario(ORDER_SAGA) as s:
        s.replying(ReserveInventory, True).replying(ChargePayment, False)
        await s.when_started("saga-1", DATA)
        s.then_sent(PLACE, RESERVE, charge(1), charge(2), charge(3),
                    ReleaseInventory(order_id="o-1"),
                    CancelOrder(order_id="o-1", reason="saga compensated"))
        s.then_status(FAILED).then_state(failed_step="charge-payment", completed=[])


async def test_a_refused_shipment_refunds_and_releases() -> None:
    async with SagaScenario(ORDER_SAGA) as s:
        s.replying(ReserveInventory, True).replying(ChargePayment, True)
        s.replying(ShipOrder, False)
        await s.when_started("saga-1", DATA)
        s.then_sent(PLACE, RESERVE, charge(1), ShipOrder(order_id="o-1"),
                    RefundPayment(order_id="o-1"), ReleaseInventory(order_id="o-1"),
                    CancelOrder(order_id="o-1", reason="saga compensated"))
        s.then_status(FAILED)


async def test_a_compensation_failing_past_its_budget_parks_the_saga_until_resumed() -> None:
    async with SagaScenario(ORDER_SAGA) as s:
        s.replying(ReserveInventory, False)
        s.replying(CancelOrder, *[ConnectionError("order service down")] * 5, None)
        await s.when_started("saga-1", DATA)
        s.then_status(NEEDS_ATTENTION)
        assert s.record is not None and "order service down" in (s.record.error or "")
        assert len(s.slept) == 4  # backoff between the five tries, on the test's clock
        await s.when_resumed("saga-1")
        s.then_sent(CancelOrder(order_id="o-1", reason="saga compensated"))
        s.then_status(FAILED)
        assert CancelShipment not in {type(c) for c in s.sender.sent}


async def test_an_error_that_is_not_a_refusal_repeats_the_step_never_compensates_it() -> None:
    async with SagaScenario(ORDER_SAGA) as s:
        s.replying(ReserveInventory, True).replying(ChargePayment, True)
        s.replying(ShipOrder, ConnectionError("carrier timeout"), True)
        await s.when_started("saga-1", DATA)
        s.then_status(COMPLETED)
        ships = [c for c in s.sender.sent if isinstance(c, ShipOrder)]
        assert len(ships) == 2 and ships[0].command_id == ships[1].command_id


async def test_a_step_that_keeps_erroring_parks_the_saga_and_resumes_where_it_was() -> None:
    async with SagaScenario(ORDER_SAGA) as s:
        s.replying(ReserveInventory, True).replying(ChargePayment, True)
        s.replying(ShipOrder, *[ConnectionError("carrier down")] * 5, True)
        await s.when_started("saga-1", DATA)
        s.then_status(NEEDS_ATTENTION).then_state(completed=[0, 1, 2])
        await s.when_resumed("saga-1")
        s.then_sent(ShipOrder(order_id="o-1"), CompleteOrder(order_id="o-1"))
        s.then_status(COMPLETED)
