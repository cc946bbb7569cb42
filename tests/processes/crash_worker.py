"""Run by the crash test as a separate process: a worker driving many order sagas and
order processes, slowed down at random so that a SIGKILL lands anywhere.

``python -m tests.processes.crash_worker sqlite|postgres PATH|SCHEMA SAGAS PROCESSES SEED``
"""

from __future__ import annotations

import asyncio
import random
import sys
from typing import Any

from examples.orders.application import PlaceOrder
from examples.orders.wiring import fulfilment
from invariant.processes import ACTIVE
from invariant.processes import persistence as process_state
from invariant.projections import ReadModelDatabase
from invariant.store.port import EventStorage
from invariant.store.postgres import PostgresStorage
from invariant.store.sqlite import SQLiteStorage
from tests.conftest import POSTGRES_DSN


def knobs(n: int) -> dict[str, Any]:
    """Every fourth order fails somewhere; some need payment retries."""
    return [{}, {"declines": 1}, {"stock": 1}, {"declines": 3}, {"ship_fails": True},
            {}, {"declines": 2}, {}][n % 8]


class SlowBus:
    """The services' bus with random pauses before and after each command."""

    def __init__(self, bus: Any, rng: random.Random) -> None:
        self._bus, self._rng = bus, rng

    async def dispatch(self, command: Any, **kw: Any) -> Any:
        await asyncio.sleep(self._rng.uniform(0, 0.004))
        result = await self._bus.dispatch(command, **kw)
        await asyncio.sleep(self._rng.uniform(0, 0.004))
        return result


async def main(kind: str, target: str, sagas: int, processes: int, seed: int) -> None:
    storage: EventStorage
    if kind == "sqlite":
        storage = SQLiteStorage(target)
        database = ReadModelDatabase.for_url(f"sqlite:///{target}")
    else:
        storage = PostgresStorage(POSTGRES_DSN, schema=target)
        database = ReadModelDatabase.for_url(POSTGRES_DSN, schema=target)
    await storage.setup()
    app = fulfilment(storage, database)
    slow = SlowBus(app.bus, random.Random(seed))
    app.saga.bus = slow  # type: ignore[assignment]
    app.runner.dispatcher.bus = slow  # type: ignore[assignment]
    await app.setup()
    print("ready", flush=True)
    for n in range(processes):
        await app.bus.dispatch(PlaceOrder(
            order_id=f"p-{n}", customer_id="c", sku="sku", quantity=2, amount=100,
            command_id=__import__("uuid").uuid5(__import__("uuid").NAMESPACE_URL, f"p-{n}"),
            **knobs(n)))
    for n in range(sagas):
        await app.saga.start(f"saga-{n}", {"order_id": f"s-{n}", "customer_id": "c",
                                           "sku": "sku", "quantity": 2, "amount": 100,
                                           **knobs(n)})
    await asyncio.gather(app.saga.recover(concurrency=sagas), _processes(app))
    print("done", flush=True)
    await storage.close()
    await database.close()


async def _processes(app: Any) -> None:
    while True:
        await app.runner.run_once()
        active = [r for s in ACTIVE for r in await app.runner.database.run(
            lambda c, s=s: process_state.listing(c, status=s, kind="order-fulfilment"),
            write=False)]
        if not active:
            return
        await asyncio.sleep(0.01)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                     int(sys.argv[5])))
