"""The workloads, written once against :class:`benchmarks.systems.BenchSystem`.

* W1  sequential: open every account, then the seeded deposits, one command at a time.
* W1c concurrent: the same commands from ``plan.senders`` concurrent senders; a sender sends its
  next command only once the previous one is acknowledged (durable).
* W2  cold load of one long stream, without and with a snapshot (median of ``plan.load_runs``).

Every workload checks the results it produced (balances) outside the timed region.
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from typing import Any

from benchmarks.plan import DEPOSIT, LOAD_WARMUP, OPENING_BALANCE, Plan
from benchmarks.systems import BenchSystem

Record = dict[str, Any]
WORKLOADS = ("W1", "W1c", "W2")
VERIFY_SAMPLE = 50


def record(workload: str, system: BenchSystem, value: float, unit: str) -> Record:
    return {
        "workload": workload,
        "backend": system.backend,
        "system": system.name,
        "value": round(value, 3),
        "unit": unit,
    }


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def _drive(
    command: Callable[[uuid.UUID], Awaitable[int]],
    targets: Iterable[uuid.UUID],
    senders: int,
    latencies: list[float],
) -> int:
    """Run ``command`` for every target from ``senders`` concurrent senders; total retries."""
    perf = time.perf_counter
    work = iter(targets)
    retries = 0

    async def sender() -> None:
        nonlocal retries
        for target in work:  # one shared iterator: each target is sent exactly once
            t = perf()
            retries += await command(target)
            latencies.append(perf() - t)

    if senders == 1:
        await sender()
    else:
        await asyncio.gather(*(sender() for _ in range(senders)))
    return retries


async def w1(system: BenchSystem, plan: Plan, *, concurrent: bool) -> list[Record]:
    name = "W1c" if concurrent else "W1"
    senders = plan.senders if concurrent else 1
    latencies: list[float] = []
    gc.collect()
    start = time.perf_counter()
    retries = await _drive(system.open_account, plan.accounts, senders, latencies)
    retries += await _drive(system.deposit, plan.deposits, senders, latencies)
    elapsed = time.perf_counter() - start
    assert len(latencies) == plan.commands
    await verify_balances(system, plan)
    latencies.sort()
    out = [
        record(name, system, plan.commands / elapsed, "commands/s"),
        record(f"{name}-p50", system, _percentile(latencies, 0.50) * 1000, "ms"),
        record(f"{name}-p99", system, _percentile(latencies, 0.99) * 1000, "ms"),
    ]
    if concurrent:
        out.append(record(f"{name}-retries", system, retries, "retries"))
    return out


async def verify_balances(system: BenchSystem, plan: Plan) -> None:
    expected = plan.expected_balances()
    sample = random.Random(7).sample(plan.accounts, min(VERIFY_SAMPLE, len(plan.accounts)))
    for account in sample:
        got = await system.load_balance(account)
        if got != expected[account]:
            raise AssertionError(
                f"{system.name}/{system.backend}: account {account} has {got}, "
                f"expected {expected[account]}"
            )


async def w2(system: BenchSystem, plan: Plan) -> list[Record]:
    account, events = plan.long_stream_id, plan.long_stream
    await system.build_stream(account, events)
    expected = OPENING_BALANCE + DEPOSIT * (events - 1)
    out = []
    for snapshot, name in ((False, "W2"), (True, "W2-snapshot")):
        times = await _time_loads(system, account, expected, plan.load_runs, snapshot=snapshot)
        out.append(record(name, system, statistics.median(times) * 1000, "ms"))
    return out


async def _time_loads(
    system: BenchSystem, account: uuid.UUID, expected: Decimal, runs: int, *, snapshot: bool
) -> list[float]:
    perf = time.perf_counter
    for _ in range(LOAD_WARMUP):
        await system.load_balance(account, snapshot=snapshot)
    times = []
    for _ in range(runs):
        gc.collect()
        t = perf()
        balance = await system.load_balance(account, snapshot=snapshot)
        times.append(perf() - t)
        if balance != expected:
            raise AssertionError(
                f"{system.name}/{system.backend}: long stream has {balance}, expected {expected}"
            )
    return times


async def run_workload(system: BenchSystem, plan: Plan, workload: str) -> list[Record]:
    if workload == "W1":
        return await w1(system, plan, concurrent=False)
    if workload == "W1c":
        return await w1(system, plan, concurrent=True)
    if workload == "W2":
        return await w2(system, plan)
    raise ValueError(f"unknown workload {workload!r}")
