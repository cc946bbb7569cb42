"""Kill the worker (SIGKILL) at random points of many concurrent sagas and order processes,
restart it, and check every one ended exactly once, correctly, with no side effect twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from examples.orders.domain import SIDE_EFFECTS
from examples.orders.wiring import fulfilment
from invariant.processes import COMPLETED, FAILED
from invariant.processes import persistence as process_state
from invariant.projections import ReadModelDatabase
from invariant.store.port import EventStorage
from invariant.store.postgres import PostgresStorage
from invariant.store.sqlite import SQLiteStorage
from tests.conftest import POSTGRES_DSN, fresh_pg_schema
from tests.processes.crash_worker import knobs

SAGAS = 40
PROCESSES = 10
KILLS = 4
ROOT = Path(__file__).resolve().parents[2]


async def _worker(kind: str, target: str, seed: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.processes.crash_worker", kind, target, str(SAGAS),
        str(PROCESSES), str(seed), cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)


async def _run_with_kills(kind: str, target: str) -> None:
    rng = random.Random(20261122)
    landed = 0
    for kill in range(KILLS):
        worker = await _worker(kind, target, kill)
        assert worker.stdout is not None
        line = await asyncio.wait_for(worker.stdout.readline(), 20)
        assert line.strip() == b"ready", (line, await worker.stderr.read())  # type: ignore[union-attr]
        await asyncio.sleep(rng.uniform(0.02, 0.25))  # its work takes ~0.3 s or more
        if worker.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile, unreaped
                os.kill(worker.pid, signal.SIGKILL)
        landed += await worker.wait() == -signal.SIGKILL
    assert landed >= 1  # at least one kill hit a worker in the middle of its work
    final = await _worker(kind, target, 99)
    out, err = await asyncio.wait_for(final.communicate(), 60)
    assert final.returncode == 0, err.decode()[-3000:]
    assert out.split()[-1] == b"done"


def _expected_end(n: int) -> str:
    k = knobs(n)
    fails = k.get("stock") == 1 or k.get("declines") == 3 or k.get("ship_fails")
    return FAILED if fails else COMPLETED


async def _check(storage: EventStorage, database: ReadModelDatabase) -> None:
    app = fulfilment(storage, database)
    names = [e.event_type for e in SIDE_EFFECTS] + ["OrderCompleted", "OrderCancelled"]
    effects: dict[str, Counter[str]] = {}
    for envelope in await app.store.read_all(event_types=names, limit=1_000_000):
        order = getattr(envelope.event, "order_id", "")
        effects.setdefault(order, Counter())[envelope.event_type] += 1
    rows = {r.id: r for r in await database.run(lambda c: process_state.listing(c),
                                                 write=False)}
    assert len(rows) == SAGAS + PROCESSES
    orders = [(f"saga-{n}", f"s-{n}", n) for n in range(SAGAS)]
    orders += [(f"order-fulfilment-p-{n}", f"p-{n}", n) for n in range(PROCESSES)]
    for process_id, order, n in orders:
        row, seen = rows[process_id], effects.get(order, Counter())
        assert row.status == _expected_end(n), (process_id, row.status, row.error)
        assert all(count <= 1 for count in seen.values()), (order, seen)
        assert seen["OrderCompleted"] + seen["OrderCancelled"] == 1, (order, seen)
        if row.status == COMPLETED:
            assert seen == Counter({"InventoryReserved": 1, "PaymentCharged": 1,
                                    "OrderShipped": 1, "OrderCompleted": 1}), (order, seen)
        else:  # everything done was undone
            assert seen["InventoryReserved"] == seen["InventoryReleased"], (order, seen)
            assert seen["PaymentCharged"] == seen["PaymentRefunded"], (order, seen)
            assert seen["OrderShipped"] == seen["ShipmentCancelled"], (order, seen)
    assert await database.run(lambda c: process_state.pending(c), write=False) == []


@pytest.mark.timeout(90)
async def test_sagas_and_processes_survive_sigkill_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    await _run_with_kills("sqlite", str(path))
    storage = SQLiteStorage(path)
    database = ReadModelDatabase.for_url(f"sqlite:///{path}")
    try:
        await _check(storage, database)
    finally:
        await storage.close()
        await database.close()


@pytest.mark.timeout(90)
async def test_sagas_and_processes_survive_sigkill_on_postgres() -> None:
    async with fresh_pg_schema() as schema:
        await _run_with_kills("postgres", schema)
        storage = PostgresStorage(POSTGRES_DSN, schema=schema)
        database = ReadModelDatabase.for_url(POSTGRES_DSN, schema=schema)
        try:
            await storage.setup()
            await _check(storage, database)
        finally:
            await storage.close()
            await database.close()
