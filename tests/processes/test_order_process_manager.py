"""The order fulfilment process manager on SQLite and PostgreSQL: the seed's flows, retries,
durable timeouts (after a restart, cancelled, racing), the outbox and parking."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from examples.orders.application import PlaceOrder
from examples.orders.process import OrderFulfilment
from invariant.processes import COMPLETED, FAILED, NEEDS_ATTENTION, ProcessRunner, RetryPolicy
from invariant.processes import persistence as process_state
from invariant.processes.saga import resume_parked
from tests.processes.conftest import Env

PROCESS = "order-fulfilment-"


def place(order_id: str, **knobs: object) -> PlaceOrder:
    return PlaceOrder(order_id=order_id, customer_id="c-1", sku="sku-1", quantity=2,
                      amount=100, **knobs)  # type: ignore[arg-type]


async def process(env: Env, order_id: str) -> process_state.ProcessRecord:
    found = await env.database.run(lambda c: process_state.read(c, PROCESS + order_id),
                                   write=False)
    assert found is not None
    return found


async def test_orders_are_fulfilled_or_cancelled_with_each_side_effect_once(env: Env) -> None:
    app = env.app
    cases = {"ok": {}, "two-declines": {"declines": 2}, "three-declines": {"declines": 3},
             "no-stock": {"stock": 1}, "no-carrier": {"ship_fails": True}}
    for order_id, knobs in cases.items():
        await app.bus.dispatch(place(order_id, **knobs))
    await app.runner.run_once()

    ok, two, three, stock, carrier = [await process(env, o) for o in cases]
    assert (ok.status, two.status) == (COMPLETED, COMPLETED)
    assert two.state["attempt"] == 3
    assert three.status == FAILED and three.error == "payment declined 3 times"
    assert stock.status == FAILED and carrier.status == FAILED
    assert await app.side_effects("ok") == {"InventoryReserved": 1, "PaymentCharged": 1,
                                            "OrderShipped": 1}
    assert await app.side_effects("two-declines") == await app.side_effects("ok")
    assert await app.side_effects("three-declines") == {}
    assert await app.side_effects("no-stock") == {"PaymentCharged": 1, "PaymentRefunded": 1}
    assert await app.side_effects("no-carrier") == {
        "PaymentCharged": 1, "PaymentRefunded": 1, "InventoryReserved": 1,
        "InventoryReleased": 1}
    assert await env.database.run(lambda c: process_state.pending(c), write=False) == []


async def test_a_payment_deadline_fires_after_a_restart_and_charges_once(env: Env) -> None:
    await env.app.bus.dispatch(place("o-1"))
    await env.app.runner.catch_up(OrderFulfilment())  # the payment service never answers
    assert (await process(env, "o-1")).deadline == env.clock.now.replace() + _s(30)

    restarted = env.another_worker().runner
    env.clock.advance(seconds=29)
    assert await restarted.fire_timeouts() == 0
    env.clock.advance(seconds=1)
    assert await restarted.fire_timeouts() == 1
    assert await restarted.fire_timeouts() == 0  # fires once
    assert (await process(env, "o-1")).state["attempt"] == 2

    await restarted.run_once()  # both charges reach the service: the second is a no-op
    assert (await process(env, "o-1")).status == COMPLETED
    assert (await env.app.side_effects("o-1"))["PaymentCharged"] == 1


async def test_the_inventory_deadline_releases_only_what_was_reserved(env: Env) -> None:
    runner = env.app.runner
    await env.app.bus.dispatch(place("o-1"))
    await runner.catch_up(OrderFulfilment())
    await runner.dispatcher.dispatch_pending()  # charged
    await runner.catch_up(OrderFulfilment())  # ReserveInventory waits in the outbox
    env.clock.advance(seconds=60)
    assert await runner.fire_timeouts() == 1
    await runner.run_once()
    assert (await process(env, "o-1")).status == FAILED
    assert await env.app.side_effects("o-1") == {
        "PaymentCharged": 1, "PaymentRefunded": 1, "InventoryReserved": 1,
        "InventoryReleased": 1}


async def test_a_timeout_racing_with_the_awaited_event_has_one_outcome(env: Env) -> None:
    runner, other = env.app.runner, env.another_worker().runner
    for n in range(6):
        order = f"race-{n}"
        await env.app.bus.dispatch(place(order))
        await runner.catch_up(OrderFulfilment())
        for _ in range(2):  # two silent attempts: the third and last is pending
            env.clock.advance(seconds=30)
            await runner.fire_timeouts()
        env.clock.advance(seconds=30)
        rows = await env.database.run(lambda c: process_state.pending(c), write=False)
        charge = next(r for r in rows if r.payload.get("attempt") == 1)
        await env.app.bus.dispatch(runner.codec.decode(charge.command_type, charge.payload))
        # The charge's event and the final deadline race, in two workers.
        first, second = (runner, other) if n % 2 else (other, runner)
        await asyncio.gather(first.fire_timeouts(), second.catch_up(OrderFulfilment()))
        await runner.run_once()
        found, effects = await process(env, order), await env.app.side_effects(order)
        assert effects["PaymentCharged"] == 1
        if found.status == COMPLETED:
            assert effects["PaymentRefunded"] == 0 and effects["OrderShipped"] == 1
        else:
            assert found.status == FAILED
            assert effects["PaymentRefunded"] == 1 and effects["InventoryReserved"] == 0


async def test_two_workers_handle_each_event_once(env: Env) -> None:
    for n in range(8):
        await env.app.bus.dispatch(place(f"o-{n}", declines=n % 3))
    other = env.another_worker().runner
    await asyncio.gather(env.app.runner.run_once(), other.run_once())
    await env.app.runner.run_once()
    for n in range(8):
        assert (await process(env, f"o-{n}")).status == COMPLETED
        assert await env.app.side_effects(f"o-{n}") == {
            "InventoryReserved": 1, "PaymentCharged": 1, "OrderShipped": 1}


async def test_a_command_dispatched_again_after_a_crash_is_handled_once(env: Env) -> None:
    runner = env.app.runner
    await env.app.bus.dispatch(place("o-1"))
    await runner.catch_up(OrderFulfilment())
    (row,) = await env.database.run(lambda c: process_state.pending(c), write=False)
    # Dispatched, then the worker died before deleting the row: it is dispatched again.
    await env.app.bus.dispatch(runner.codec.decode(row.command_type, row.payload))
    await runner.run_once()
    assert (await env.app.side_effects("o-1"))["PaymentCharged"] == 1
    assert (await process(env, "o-1")).status == COMPLETED


async def test_a_command_that_keeps_failing_parks_the_process_until_resumed(env: Env) -> None:
    failing = {"on": True}

    class Flaky:
        async def dispatch(self, command: object, **kw: object) -> object:
            if failing["on"] and type(command).__name__ == "ShipOrder":
                raise RuntimeError("carrier API down")
            return await env.app.bus.dispatch(command, **kw)  # type: ignore[arg-type]

    runner = ProcessRunner(env.app.store, env.database, Flaky(),  # type: ignore[arg-type]
                           [OrderFulfilment()], commands=env.app.runner.codec._types.values(),
                           clock=env.clock, dispatch_retry=RetryPolicy(3, 0.001))
    await env.app.bus.dispatch(place("o-1"))
    await runner.run_once()
    parked = await process(env, "o-1")
    assert parked.status == NEEDS_ATTENTION
    assert parked.error is not None and "carrier API down" in parked.error
    assert len(await env.database.run(lambda c: process_state.pending(c), write=False)) == 1

    failing["on"] = False
    await env.database.run(lambda c: resume_parked(c, "order-fulfilment-o-1", env.clock()))
    await runner.run_once()
    assert (await process(env, "o-1")).status == COMPLETED
    assert (await env.app.side_effects("o-1"))["OrderShipped"] == 1


def _s(seconds: float) -> object:
    from datetime import timedelta

    return timedelta(seconds=seconds)


async def test_the_runner_follows_the_log_live(env: Env) -> None:
    task = asyncio.create_task(env.app.runner.run())
    try:
        await env.app.bus.dispatch(place("live", declines=1))
        async with asyncio.timeout(15):
            await _until_completed(env, "live")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert (await env.app.side_effects("live"))["PaymentCharged"] == 1


async def _find(env: Env, order_id: str) -> process_state.ProcessRecord | None:
    return await env.database.run(lambda c: process_state.read(c, PROCESS + order_id),
                                  write=False)


async def _until_completed(env: Env, order_id: str) -> None:
    for _ in range(1000):
        found = await _find(env, order_id)
        if found is not None and found.status == COMPLETED:
            return
        await asyncio.sleep(0.02)


async def test_a_page_of_events_is_handled_in_one_transaction(env: Env) -> None:
    for n in range(5):
        await env.app.bus.dispatch(place(f"o-{n}"))
    runner = env.app.runner
    transactions: list[object] = []
    original = env.database.run

    async def counting(work: Any, *, write: bool = True) -> Any:
        if write:
            transactions.append(work)
        return await original(work, write=write)

    runner.database = _Counting(env.database, counting)
    assert await runner.catch_up(OrderFulfilment()) == 5
    assert len(transactions) == 1, transactions  # five events, one transaction
    runner.database = env.database
    assert len(await env.database.run(lambda c: process_state.pending(c), write=False)) == 5


async def test_a_page_costs_the_same_statements_whatever_its_size(env: Env) -> None:
    from sqlalchemy import event

    database: Any = env.database
    engine = database._get_engine() if env.backend == "sqlite" else database.engine.sync_engine
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "invariant_process" in statement:  # an executemany counts once: one round trip
            seen.append(statement)

    counts, placed = [], 0
    for size in (2, 12):
        for n in range(size):
            await env.app.bus.dispatch(place(f"o-{size}-{n}"))
        placed += size
        seen.clear()
        event.listen(engine, "before_cursor_execute", before)
        try:
            assert await env.app.runner.catch_up(OrderFulfilment()) == size
        finally:
            event.remove(engine, "before_cursor_execute", before)
        counts.append(len(seen))
        pending = await env.database.run(lambda c: process_state.pending(c), write=False)
        assert len(pending) == placed  # one command per order placed
    assert counts[0] == counts[1], counts
    # the checkpoint read, locked, the processes, their new states, their commands, the
    # checkpoint moved
    assert counts[1] <= 6, counts


async def test_a_page_that_fails_keeps_the_events_before_the_failing_one(env: Env) -> None:
    for n in range(4):
        await env.app.bus.dispatch(place(f"o-{n}"))
    manager = OrderFulfilment()
    decide = manager.handle

    def fail_on_the_third(process: Any, event: Any) -> None:
        if process.correlation == "o-2":
            raise RuntimeError("cannot decide o-2")
        decide(process, event)

    manager.handle = fail_on_the_third  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="cannot decide o-2"):
        await env.app.runner.catch_up(manager)
    pending = await env.database.run(lambda c: process_state.pending(c), write=False)
    assert sorted(row.process_id for row in pending) == [PROCESS + "o-0", PROCESS + "o-1"]
    manager.handle = decide  # type: ignore[method-assign]
    assert await env.app.runner.catch_up(manager) == 2  # o-2 and o-3, nothing twice
    assert len(await env.database.run(lambda c: process_state.pending(c), write=False)) == 4


async def test_commands_of_different_processes_are_dispatched_side_by_side(env: Env) -> None:
    for n in range(4):
        await env.app.bus.dispatch(place(f"o-{n}"))
    runner = env.app.runner
    await runner.catch_up(OrderFulfilment())
    in_flight, most = 0, 0
    dispatch = runner.dispatcher.bus.dispatch

    async def overlapping(command: Any, **kwargs: Any) -> Any:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        try:
            return await dispatch(command, **kwargs)
        finally:
            in_flight -= 1

    runner.dispatcher.bus.dispatch = overlapping  # type: ignore[method-assign]
    try:
        assert await runner.dispatcher.dispatch_pending() == 4
    finally:
        runner.dispatcher.bus.dispatch = dispatch  # type: ignore[method-assign]
    assert most == 4
    await runner.run_once()
    for n in range(4):
        assert (await process(env, f"o-{n}")).status == COMPLETED


class _Counting:
    """A read-model database whose ``run`` goes through ``run``."""

    def __init__(self, inner: Any, run: Any) -> None:
        self._inner, self.run = inner, run

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_events_the_managers_do_not_handle_are_no_backlog_once_read_past(
    env: Env
) -> None:
    """The checkpoint moves only with the events a manager handles; the events of other
    types after its last one are read past, not waiting. Counted as waiting, they would
    hold an application's intake (which waits while its backlog is over a bound) for
    ever, since no new event of the manager's types would come to move the checkpoint."""
    from tests.messaging.helpers import commit_events

    await env.app.bus.dispatch(place("o-1"))
    await env.app.runner.run_once()
    assert await env.app.runner.backlog() == 0
    await commit_events(env.storage, streams=3, per_stream=50)  # types no manager reads
    assert await env.app.runner.backlog() == 150  # not read yet: it might have to act
    await env.app.runner.run_once()
    assert await env.app.runner.backlog() == 0
    assert (await process(env, "o-1")).status == COMPLETED


async def test_the_oldest_item_waiting_for_the_runner_is_an_event_or_a_command(
    env: Env
) -> None:
    """What waits for the runner ages from when it was recorded (an event it has not read)
    or decided (a command it has not dispatched)."""
    from invariant.backlog import Waiting

    runner = env.app.runner
    await env.app.bus.dispatch(place("o-1"))
    env.clock.advance(seconds=5)
    waiting = await runner.waiting()
    assert waiting.items == await runner.backlog() and waiting.items >= 1
    assert waiting.oldest == pytest.approx(5.0)  # the event, recorded 5 s ago
    for manager in runner.managers.values():
        await runner.catch_up(manager)  # decided, not dispatched
    env.clock.advance(seconds=2)
    waiting = await runner.waiting()
    assert waiting.items == await runner.backlog() and waiting.items >= 1
    assert waiting.oldest == pytest.approx(2.0)  # the command, decided 2 s ago
    await runner.run_once()
    assert await runner.waiting() == Waiting(0, 0.0)
