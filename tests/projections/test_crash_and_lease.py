"""Real processes: a worker killed mid-batch and restarted ends with the read model of an
uninterrupted run; on PostgreSQL two workers share a projection through a lease."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import Connection, select

from invariant.projections import ProjectionRunner
from tests.projections.conftest import Bank
from tests.projections.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 240


def start_worker(bank: Bank, mode: str, page: int, delay: float) -> subprocess.Popen[str]:
    target = bank.schema if bank.backend == "postgres" else bank.url.removeprefix("sqlite:///")
    assert target is not None
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.projections.worker", bank.backend, target, mode,
         str(page), str(delay)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def read_lines(stream: IO[str], until: int, timeout: float) -> list[str]:
    """Lines of ``stream`` until ``until`` "page" lines were read (or EOF / timeout)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while sum(line.startswith("page") for line in lines) < until:
        if time.monotonic() > deadline:
            raise AssertionError(f"worker too slow; saw {lines[-3:]}")
        line = stream.readline()
        if not line:
            break
        lines.append(line.strip())
    return lines


async def fill(bank: Bank) -> None:
    for i in range(EVENTS // 3):
        await bank.open(f"ACC-{i:03}", "100")
        await bank.deposit(f"ACC-{i:03}", "50")
        await bank.withdraw(f"ACC-{i:03}", "30")


async def read_model(bank: Bank, ledger: Ledger) -> tuple[list[tuple[int, int]], list]:
    def read(conn: Connection) -> tuple[list[tuple[int, int]], list]:
        applied = [(r.position, r.times) for r in conn.execute(
            select(ledger.applied).order_by(ledger.applied.c.position))]
        balances = [tuple(r) for r in conn.execute(
            select(ledger.balances).order_by(ledger.balances.c.account_id))]
        return applied, balances

    return await bank.database.run(read, write=False)


async def uninterrupted(bank: Bank) -> tuple[list[tuple[int, int]], list]:
    """The same projection built beside it (version 2) in one go, in this process."""
    v2 = Ledger(version=2)
    runner = ProjectionRunner(bank.store, bank.database, [v2])
    await runner.setup()
    await runner.catch_up()
    return await read_model(bank, v2)


async def test_a_worker_killed_mid_batch_resumes_to_the_same_read_model(bank: Bank) -> None:
    await fill(bank)
    worker = start_worker(bank, "catch_up", page=8, delay=0.004)
    try:
        assert worker.stdout is not None
        lines = await asyncio.to_thread(read_lines, worker.stdout, 6, 60)
        assert "done" not in lines
        worker.send_signal(signal.SIGKILL)  # in the middle of a page, most likely mid-write
    finally:
        worker.kill()
        worker.wait()
    ledger = Ledger()
    runner = ProjectionRunner(bank.store, bank.database, [ledger])
    [killed] = await runner.status()
    assert 0 < killed.checkpoint < EVENTS  # it was interrupted

    await runner.catch_up()  # the restart

    after_restart = await read_model(bank, ledger)
    assert after_restart[0] == [(p, 1) for p in range(1, EVENTS + 1)]
    assert after_restart == await uninterrupted(bank)
    [status] = [s for s in await runner.status() if s.version == 1]
    assert (status.checkpoint, status.state) == (EVENTS, "running")


@pytest.mark.postgres
async def test_two_workers_share_a_projection_and_the_survivor_takes_over(
    pg_bank: Bank,
) -> None:
    # (On SQLite the single writer and the checkpoint check already apply nothing twice:
    # test_two_runners_on_one_projection_never_apply_an_event_twice.)
    bank = pg_bank
    await fill(bank)
    workers = [start_worker(bank, "run", page=6, delay=0.004) for _ in range(2)]
    try:
        for w in workers:  # both are set up and running before we look
            assert w.stdout is not None
            assert await asyncio.to_thread(w.stdout.readline) == "ready\n"
        ledger = Ledger()

        def appliers(conn: Connection) -> tuple[set[int], int]:
            rows = conn.execute(select(ledger.applied.c.worker)).all()
            return {r[0] for r in rows}, len(rows)

        deadline = time.monotonic() + 60
        while (found := await bank.database.run(appliers, write=False))[1] < EVENTS // 3:
            assert time.monotonic() < deadline, "the workers are too slow"
            await asyncio.sleep(0.02)
        assert len(found[0]) == 1  # a third of the way in, only the lease holder has worked
        holder = found[0].pop()
        os.kill(holder, signal.SIGKILL)
        survivor = next(w for w in workers if w.pid != holder)

        runner = ProjectionRunner(bank.store, bank.database, [ledger])
        await runner.wait_until("ledger", EVENTS, timeout=60)

        applied, balances = await read_model(bank, ledger)
        assert applied == [(p, 1) for p in range(1, EVENTS + 1)]  # none applied twice

        def by_worker(conn: Connection) -> dict[int, list[int]]:
            rows = conn.execute(select(ledger.applied.c.worker, ledger.applied.c.position))
            out: dict[int, list[int]] = {}
            for worker, position in rows:
                out.setdefault(worker, []).append(position)
            return out

        split = await bank.database.run(by_worker, write=False)
        assert set(split) == {holder, survivor.pid}  # the survivor took over
        assert max(split[holder]) < min(split[survivor.pid])  # never both at once
        assert (applied, balances) == await uninterrupted(bank)
    finally:
        for w in workers:
            w.kill()
            w.wait()

