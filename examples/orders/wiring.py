"""How order fulfilment is put together on one database (SQLite file or PostgreSQL schema)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from examples.orders.application import COMMANDS, orders_bus, orders_store
from examples.orders.domain import SIDE_EFFECTS
from examples.orders.process import OrderFulfilment
from examples.orders.saga import ORDER_SAGA
from invariant.application import CommandBus
from invariant.clock import Clock, utc_now
from invariant.processes import ProcessRunner, SagaOrchestrator
from invariant.projections import ReadModelDatabase
from invariant.store import EventStorage, EventStore


@dataclass
class Fulfilment:
    """The store, the services' command bus, the saga and the process manager's runner."""

    store: EventStore
    bus: CommandBus
    saga: SagaOrchestrator
    runner: ProcessRunner

    async def setup(self) -> None:
        await self.runner.setup()

    async def side_effects(self, order_id: str) -> Counter[str]:
        """How often each side effect happened for ``order_id`` (read from the log)."""
        names = [e.event_type for e in SIDE_EFFECTS]
        seen: Counter[str] = Counter()
        for envelope in await self.store.read_all(event_types=names, limit=1_000_000):
            if getattr(envelope.event, "order_id", None) == order_id:
                seen[envelope.event_type] += 1
        return seen


def fulfilment(storage: EventStorage, database: ReadModelDatabase, *, clock: Clock = utc_now,
               **saga_options: object) -> Fulfilment:
    store = orders_store(storage)
    bus = orders_bus(store)
    saga = SagaOrchestrator(ORDER_SAGA, database, bus=bus, clock=clock,
                            **saga_options)  # type: ignore[arg-type]
    runner = ProcessRunner(store, database, bus, [OrderFulfilment()], commands=COMMANDS,
                           clock=clock)
    return Fulfilment(store, bus, saga, runner)
