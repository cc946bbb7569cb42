"""The seed's order saga, orchestrated, on SQLite and PostgreSQL: completion, a failure at
each step compensated in reverse, payment retries, idempotent steps, parking and resuming."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from examples.orders.saga import ORDER_SAGA
from invariant.domain import DomainError
from invariant.processes import (
    COMPENSATING,
    COMPLETED,
    FAILED,
    NEEDS_ATTENTION,
    RetryPolicy,
    Saga,
    SagaOrchestrator,
    Step,
    StepContext,
)
from invariant.processes import persistence as process_state
from tests.processes.conftest import Env


def order(order_id: str, **knobs: Any) -> dict[str, Any]:
    return {"order_id": order_id, "customer_id": "c-1", "sku": "sku-1", "quantity": 2,
            "amount": 100, **knobs}


async def test_a_saga_runs_every_step_once_and_completes(env: Env) -> None:
    done = await env.app.saga.execute("s-ok", order("ok"))
    assert (done.status, done.step, done.state["completed"]) == (COMPLETED, 5, [0, 1, 2, 3, 4])
    assert await env.app.side_effects("ok") == {"InventoryReserved": 1, "PaymentCharged": 1,
                                                "OrderShipped": 1}


@pytest.mark.parametrize(("knobs", "failed_step", "effects"), [
    ({"stock": 1}, "reserve-inventory", {}),
    ({"declines": 3}, "charge-payment", {"InventoryReserved": 1, "InventoryReleased": 1}),
    ({"ship_fails": True}, "ship", {"InventoryReserved": 1, "InventoryReleased": 1,
                                    "PaymentCharged": 1, "PaymentRefunded": 1}),
])
async def test_a_failing_step_compensates_the_completed_ones_in_reverse(
        env: Env, knobs: dict[str, Any], failed_step: str, effects: dict[str, int]) -> None:
    done = await env.app.saga.execute("s-1", order("o-1", **knobs))
    assert done.status == FAILED and done.state["failed_step"] == failed_step
    assert done.error is not None and failed_step in done.error
    assert done.state["completed"] == []
    assert await env.app.side_effects("o-1") == effects
    cancelled = [e for e in await env.app.store.read_all(event_types=["OrderCancelled"])]
    assert len(cancelled) == 1  # the first step's compensation ran last


async def test_payment_is_retried_within_its_budget(env: Env) -> None:
    done = await env.app.saga.execute("s-1", order("o-1", declines=2))
    assert done.status == COMPLETED
    charged = await env.app.store.read_all(event_types=["PaymentCharged", "PaymentDeclined"])
    assert [getattr(e.event, "attempt", None) for e in charged] == [1, 2, 3]


async def test_compensations_run_in_reverse_order(sqlite_env: Env) -> None:
    calls: list[str] = []

    def step(name: str, fail: bool = False) -> Step:
        async def action(ctx: StepContext) -> None:
            calls.append(f"do {name}")
            if fail:
                raise DomainError(f"{name} refused")

        async def undo(ctx: StepContext) -> None:
            calls.append(f"undo {name}")

        return Step(name, action, undo)

    saga = Saga("abc", (step("a"), step("b"), step("c", fail=True)))
    runner = SagaOrchestrator(saga, sqlite_env.database, clock=sqlite_env.clock)
    done = await runner.execute("x", {})
    assert done.status == FAILED
    assert calls == ["do a", "do b", "do c", "undo b", "undo a"]


async def test_running_a_saga_twice_at_once_does_each_step_once(env: Env) -> None:
    other = env.another_worker().saga
    await env.app.saga.start("s-1", order("o-1", declines=1))
    first, second = await asyncio.gather(env.app.saga.run("s-1"), other.run("s-1"))
    assert first.status == second.status == COMPLETED
    assert await env.app.side_effects("o-1") == {"InventoryReserved": 1, "PaymentCharged": 1,
                                                 "OrderShipped": 1}


async def test_starting_a_saga_twice_starts_it_once(env: Env) -> None:
    await env.app.saga.start("s-1", order("o-1"))
    again = await env.app.saga.start("s-1", order("o-2"))
    assert again.state["data"]["order_id"] == "o-1"


async def test_a_saga_resumes_from_its_stored_state_in_another_worker(env: Env) -> None:
    await env.app.saga.start("s-1", order("o-1"))
    # A worker that ran the first two steps and died before saving the second's end:
    await env.app.saga._forward(await env.app.saga.load("s-1"))
    record = await env.app.saga.load("s-1")
    step = ORDER_SAGA.steps[record.step]
    await env.app.saga._begin(record, "action")
    await step.action(env.app.saga._context(record, step, "action"))

    recovered = await env.another_worker().saga.recover()
    assert [r.status for r in recovered] == [COMPLETED]
    assert (await env.app.side_effects("o-1"))["InventoryReserved"] == 1


async def test_a_compensation_that_keeps_failing_parks_the_saga_until_resumed(env: Env) -> None:
    broken = {"refund": True}

    async def fail_then_refund(ctx: StepContext) -> None:
        if broken["refund"]:
            raise ConnectionError("payment provider unreachable")

    async def declined(ctx: StepContext) -> None:
        raise DomainError("card declined")

    saga = Saga("parking", (Step("charge", _ok, fail_then_refund), Step("ship", declined)),
                compensation_retry=RetryPolicy(attempts=3, first_delay=0.001))
    runner = SagaOrchestrator(saga, env.database, clock=env.clock)
    parked = await runner.execute("p-1", {})
    assert parked.status == NEEDS_ATTENTION
    assert parked.error is not None and "failed 3 times" in parked.error
    assert "payment provider unreachable" in parked.error
    assert (await runner.recover()) == []  # parked sagas wait for an operator

    broken["refund"] = False
    resumed = await runner.resume("p-1")
    assert resumed.status == FAILED and resumed.error is None


async def _ok(ctx: StepContext) -> None:
    return None


def test_the_states_are_the_issue_s() -> None:
    assert {COMPENSATING, NEEDS_ATTENTION} <= set(process_state.STATUSES)
