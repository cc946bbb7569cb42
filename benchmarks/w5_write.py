"""W5's write side, one phase per process (run by :mod:`benchmarks.w5`).

* ``fill``: fill the store with ``--events`` events over ``--events / 10`` accounts, each
  opened and credited nine times in one command, from concurrent senders (a measured
  write: fill time and events/s);
* ``workloads``: W1 and W1c on an empty store and on the full one, interleaved, and W2 with
  a snapshot in the full store, through the same systems and workloads as the main suite;
* ``writers``: deposits to the filled accounts from the W1c senders until SIGTERM, noting
  when each command was acknowledged (W5 measures their rate during a rebuild).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from benchmarks.plan import SEED, SENDERS, make_plan
from benchmarks.run_one import DEFAULT_DSN
from benchmarks.systems import BenchSystem, make_system
from benchmarks.workloads import Record, _drive, record, w1, w2

DEPOSITS_PER_STREAM = 9  # ten events per stream: 1,000,000 events over 100,000 streams
FILL_SENDERS = 16
FILL_SEED = 5
W1C_SEED = SEED + 1  # W1 and W1c open their own accounts in the same store
WARM_UP_SCALE = 0.02
RUN_SEED_STEP = 1000  # each run of W1/W1c its own accounts (clear of the seeds above + 10)


def fill_accounts(events: int) -> list[uuid.UUID]:
    """The accounts of a store filled with ``events`` events (the same in every process)."""
    rnd = random.Random(FILL_SEED)
    streams = max(1, events // (DEPOSITS_PER_STREAM + 1))
    return [uuid.UUID(int=rnd.getrandbits(128), version=4) for _ in range(streams)]


@asynccontextmanager
async def opened(args: argparse.Namespace, where: str, concurrency: int
                 ) -> AsyncIterator[BenchSystem]:
    """The system on the ``full`` or ``empty`` store, set up for ``concurrency`` senders."""
    path = Path(args.sqlite_dir) / f"{args.system}-{where}.db"
    schema = args.schema_full if where == "full" else args.schema_empty
    system = make_system(args.system, args.backend, path=path, dsn=args.postgres_dsn,
                         schema=schema)
    if args.system == "raw" and args.backend == "sqlite":
        concurrency = 1  # one connection; its commands never yield, so they run in turn
    await system.setup(concurrency=concurrency)
    try:
        yield system
    finally:
        await system.teardown()


async def fill(args: argparse.Namespace) -> list[Record]:
    accounts = fill_accounts(args.events)
    events = len(accounts) * (DEPOSITS_PER_STREAM + 1)
    async with opened(args, "full", FILL_SENDERS) as system:
        latencies: list[float] = []
        started = time.perf_counter()
        retries = await _drive(lambda a: system.fill_account(a, DEPOSITS_PER_STREAM),
                               accounts, FILL_SENDERS, latencies)
        elapsed = time.perf_counter() - started
        assert retries == 0, f"{retries} retries filling new streams"
        return [record("W5-events", system, events, "events"),
                record("W5-fill", system, events / elapsed, "events/s"),
                record("W5-fill-s", system, elapsed, "s")]


def paired_medians(empty: list[float], full: list[float]) -> tuple[float, float, float]:
    """The median rate on each store, and the median of the runs' full/empty ratios (each
    run's pair measured one after the other)."""
    ratios = [f / e for e, f in zip(empty, full, strict=True)]
    return statistics.median(empty), statistics.median(full), statistics.median(ratios)


async def workloads(args: argparse.Namespace) -> list[Record]:
    """W1 and W1c, empty then full store for each (interleaved, so that drift of the
    machine hits both alike; each store warmed by the same short run first), then W2 in
    the full store. With ``--runs N`` each pair is measured N times (other accounts each
    time): the rates are the medians of the runs, the ratio the median of each run's
    full/empty (a pair measured side by side, so a slow moment of the machine counts in
    one ratio, not in the median)."""
    out: list[Record] = []
    for concurrent, seed in ((False, SEED), (True, W1C_SEED)):
        if concurrent and args.system == "raw" and args.backend == "sqlite":
            continue  # as in the main suite: the W1c target is against raw sequential W1
        rates: dict[str, list[float]] = {"empty": [], "full": []}
        for run in range(args.runs):
            run_seed = seed + RUN_SEED_STEP * run
            plan = make_plan(args.w1_scale, run_seed)
            for where in ("empty", "full"):
                async with opened(args, where, plan.senders if concurrent else 1) as system:
                    # Both stores are warmed alike before they are measured: the first
                    # commands on a store pay for its opening (its file's first pages read,
                    # the writer, the checkpoint thread), in the full store as in the empty.
                    await w1(system, make_plan(WARM_UP_SCALE, run_seed + 10),
                             concurrent=concurrent)
                    first = (await w1(system, plan, concurrent=concurrent))[0]
                    rates[where].append(first["value"])
        name = "W5-W1c" if concurrent else "W5-W1"
        empty, full, ratio = paired_medians(rates["empty"], rates["full"])
        out += [record(f"{name}-empty", system, empty, "commands/s"),
                record(f"{name}-full", system, full, "commands/s"),
                record(f"{name}-ratio", system, ratio, "x")]
    async with opened(args, "full", 1) as system:
        # a 10,000-event stream at the default scale (W2 of the main suite)
        for r in await w2(system, make_plan(min(1.0, 4 * args.w1_scale), SEED + 2)):
            out.append({**r, "workload": f"W5-{r['workload']}"})
    return out


async def writers(args: argparse.Namespace) -> list[float]:
    """Deposits from the W1c senders until SIGTERM; the time (epoch s) of each ack."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    accounts = fill_accounts(args.events)
    acks: list[float] = []

    def targets() -> Iterator[uuid.UUID]:
        rnd = random.Random(SEED + 3)
        while not stop.is_set():
            yield rnd.choice(accounts)

    async with opened(args, "full", SENDERS) as system:
        async def deposit(account: uuid.UUID) -> int:
            retries = await system.deposit(account)
            acks.append(time.time())
            await asyncio.sleep(0)  # raw's commands never yield: let SIGTERM's handler run
            return retries

        print("writing", flush=True)  # the parent starts its clock here
        senders = 1 if args.system == "raw" and args.backend == "sqlite" else SENDERS
        await _drive(deposit, targets(), senders, [])
    return acks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.w5_write")
    p.add_argument("phase", choices=("fill", "workloads", "writers"))
    p.add_argument("--backend", required=True)
    p.add_argument("--system", required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--w1-scale", type=float, default=0.25)
    p.add_argument("--runs", type=int, default=1,
                   help="workloads: W1/W1c pairs (empty, full) measured this many times")
    p.add_argument("--sqlite-dir", default=".")
    p.add_argument("--schema-full", default="")
    p.add_argument("--schema-empty", default="")
    p.add_argument("--postgres-dsn", default=DEFAULT_DSN)
    p.add_argument("--result", type=Path, required=True)
    args = p.parse_args(argv)
    work = {"fill": fill, "workloads": workloads, "writers": writers}[args.phase]
    result: Any = asyncio.run(work(args))
    args.result.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
