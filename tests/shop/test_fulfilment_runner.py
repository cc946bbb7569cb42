"""The fulfilment process on the real process runner and command bus (SQLite), with a
clock the test moves: its deadlines are durable (a restarted runner fires them) and its
commands reach the other contexts' handlers once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from invariant.application import Aggregates, Command, CommandBus, UnitOfWork, default_middleware
from invariant.domain import Money
from invariant.processes import ProcessRunner
from invariant.projections import ReadModelDatabase
from invariant.store import EventRegistry, EventStore
from invariant.store.sqlite import SQLiteStorage
from invariant.testing import ManualClock
from shop.fulfilment.application import OrderFulfilment
from shop.inventory.application import CommitStock, ReleaseStock, ReserveStock
from shop.kernel import OrderId
from shop.ordering import domain as ordering
from shop.ordering.application import (
    COMMANDS as ORDERING,
)
from shop.ordering.application import (
    AddItem,
    OrderingHandlers,
    PlaceOrder,
    PricedProduct,
    StartOrder,
)
from shop.payments import domain as payments
from shop.payments.application import COMMANDS as PAYMENTS
from shop.payments.application import PaymentHandlers
from shop.payments.infrastructure import PaymentGateway
from shop.payments.provider import FakePaymentProvider
from shop.shipping.application import CancelShipment, CreateShipment

ELSEWHERE: tuple[type[Command], ...] = (ReserveStock, ReleaseStock, CommitStock,
                                        CreateShipment, CancelShipment)


@dataclass
class World:
    clock: ManualClock
    store: EventStore
    bus: CommandBus
    database: ReadModelDatabase
    received: list[Command] = field(default_factory=list)
    """Commands that reached inventory and shipping (stand-ins that never answer)."""

    def runner(self) -> ProcessRunner:
        manager = OrderFulfilment(reservation_timeout=10, payment_timeout=5)
        return ProcessRunner(self.store, self.database, self.bus, [manager],
                             commands=(*ORDERING, *PAYMENTS, *ELSEWHERE), clock=self.clock)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = ManualClock()
    storage = SQLiteStorage(tmp_path / "shop.db", clock=clock)
    await storage.setup()
    database = ReadModelDatabase.for_url(f"sqlite:///{tmp_path / 'shop.db'}")
    store = EventStore(storage, EventRegistry((*ordering.EVENTS, *payments.EVENTS)))
    received: list[Command] = []

    async def elsewhere(command: Command, uow: UnitOfWork) -> None:
        received.append(command)

    async def price(product_id: str) -> PricedProduct:
        return PricedProduct(product_id.title(), Money.of("29.50", "USD"))

    handlers: dict[type[Command], Any] = {
        **OrderingHandlers(price, clock).handlers(),
        **PaymentHandlers(PaymentGateway(FakePaymentProvider(), 0.05), clock).handlers(),
        **dict.fromkeys(ELSEWHERE, elsewhere)}
    bus = CommandBus(Aggregates(store), handlers, middleware=default_middleware(storage))
    yield World(clock, store, bus, database, received)
    await database.close()
    await storage.close()


async def test_no_answer_from_inventory_cancels_the_order_even_after_a_restart(
        world: World) -> None:
    await world.bus.dispatch(StartOrder(order_id="o-1", customer_id="c-1"))
    await world.bus.dispatch(AddItem(order_id="o-1", customer_id="c-1", product_id="mouse",
                                     quantity=2))
    await world.bus.dispatch(PlaceOrder(order_id="o-1", customer_id="c-1"))
    first = world.runner()
    await first.setup()
    await first.run_once()
    assert [type(c) for c in world.received] == [ReserveStock]

    restarted = world.runner()
    world.clock.advance(seconds=9)
    assert await restarted.fire_timeouts() == 0
    world.clock.advance(seconds=1)
    assert await restarted.fire_timeouts() == 1
    await restarted.run_once()
    await restarted.run_once()  # its own OrderCancelled comes back: nothing more to do

    assert [type(c) for c in world.received] == [ReserveStock, ReleaseStock]
    order = await world.bus.aggregates.repository(ordering.Order).load(OrderId("o-1"))
    assert order.status == ordering.CANCELLED
    assert order.reason == "stock reservation timed out"
