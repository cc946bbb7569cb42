"""W3's catch-up measured as CPU time per event, for comparing two trees on a busy machine.

Wall-clock W3 figures move by 30% or more when other processes share the machine; the CPU
time of the process around one catch-up (``time.process_time``, user + sys) moves far
less. One log is filled once; each run then catches a new projection up over it (and raw
code over the same log), several times, in a process of its own::

    python -m benchmarks.w3_cpu fill sqlite /tmp/w3.db --events 100000
    python -m benchmarks.w3_cpu fill postgres bench_w3_cpu --events 100000
    python -m benchmarks.w3_cpu compare sqlite /tmp/w3.db --trees /work/main,. --runs 6

``compare`` runs ``run`` with each tree first on ``PYTHONPATH``, alternating the order
(A, B, B, A, ...), and prints per tree the median CPU per event of invariant and of raw,
and the median of the ratio raw / invariant of each run (both measured in one process).
``run`` prints one JSON line: ``{"invariant": [[cpu, wall], ...], "raw": [...]}`` in
seconds. On PostgreSQL only the client's CPU is counted. Nothing here is published.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import w3
from invariant.projections import ProjectionRunner, ReadModelDatabase
from invariant.store import EventRegistry, EventStorage, EventStore, SQLiteStorage


async def _invariant(storage: EventStorage, database: ReadModelDatabase, events: int,
                     run: int) -> tuple[float, float]:
    class Balances(w3.Balances):
        name = f"w3_cpu_{os.getpid()}_{run}"

    store = EventStore(storage, EventRegistry([w3.Deposited]))
    runner = ProjectionRunner(store, database, [Balances()], page_size=1000, pause_gc=True)
    await runner.setup()
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    applied = await runner.catch_up()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert applied == events, (applied, events)
    return cpu, wall


async def _raw(backend: str, where: str, events: int) -> tuple[float, float]:
    if backend == "sqlite":
        conn = sqlite3.connect(where)
        conn.executescript("DROP TABLE IF EXISTS raw_balances;"
                           " DROP TABLE IF EXISTS raw_checkpoint;")
        conn.close()
    else:
        import asyncpg

        pg = await asyncpg.connect(w3.DSN, server_settings={"search_path": where})
        await pg.execute("DROP TABLE IF EXISTS raw_balances; DROP TABLE IF EXISTS raw_checkpoint")
        await pg.close()
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    if backend == "sqlite":
        w3.run_raw_sqlite(Path(where), 1000, events)
    else:
        await w3.run_raw_postgres(where, 1000, events)
    return time.process_time() - cpu, time.perf_counter() - wall


async def fill(backend: str, where: str, events: int) -> None:
    if backend == "sqlite":
        storage: EventStorage = SQLiteStorage(where)
    else:
        import asyncpg

        from invariant.store.postgres import PostgresStorage

        admin = await asyncpg.connect(w3.DSN)
        await admin.execute(f"CREATE SCHEMA {where}")
        await admin.close()
        storage = PostgresStorage(w3.DSN, schema=where)
    await storage.setup()
    await w3.fill(storage, events)
    await storage.close()
    if backend == "sqlite":
        w3.settle_sqlite(Path(where))
    else:
        await w3.settle_postgres(where)


async def run(backend: str, where: str, events: int, rounds: int) -> dict[str, Any]:
    """``rounds`` catch-ups of invariant and raw, alternating, on a copy of the SQLite file
    (the PostgreSQL schema as it is)."""
    out: dict[str, list[tuple[float, float]]] = {"invariant": [], "raw": []}
    with tempfile.TemporaryDirectory(prefix="w3-cpu-") as tmp:
        if backend == "sqlite":
            where = shutil.copy(where, str(Path(tmp) / "w3.db"))
            storage: EventStorage = SQLiteStorage(where)
            database = ReadModelDatabase.for_url(f"sqlite:///{where}")
        else:
            from invariant.store.postgres import PostgresStorage

            storage = PostgresStorage(w3.DSN, schema=where)
            database = ReadModelDatabase.for_url(w3.DSN, schema=where)
        await storage.setup()
        try:
            for i in range(rounds):
                out["invariant"].append(await _invariant(storage, database, events, i))
                out["raw"].append(await _raw(backend, str(where), events))
        finally:
            await database.close()
            await storage.close()
    return out


def compare(backend: str, where: str, events: int, trees: list[str], runs: int) -> None:
    per_tree: dict[str, dict[str, list[float]]] = {
        t: {"invariant": [], "raw": [], "ratio": []} for t in trees}
    for n in range(runs):
        for tree in (trees if n % 2 == 0 else trees[::-1]):
            root = Path(tree).resolve()
            env = {**os.environ, "PYTHONPATH": f"{root / 'src'}:{root}"}
            # This file, run against the tree's invariant and benchmarks.w3 (the tree
            # compared need not have this module).
            done = subprocess.run(
                [sys.executable, __file__, "run", backend, where, "--events", str(events)],
                env=env, cwd=root, capture_output=True, text=True, check=True)
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            for system in ("invariant", "raw"):
                per_tree[tree][system].extend(c / events * 1e6 for c, _ in figures[system])
            per_tree[tree]["ratio"].extend(
                r[0] / i[0] for i, r in zip(figures["invariant"], figures["raw"], strict=True))
    for tree, f in per_tree.items():
        print(f"W3 CPU {backend} {tree}: invariant {statistics.median(f['invariant']):.3f}"
              f" us/event, raw {statistics.median(f['raw']):.3f} us/event, raw/invariant"
              f" per run {statistics.median(f['ratio']):.3f} ({len(f['ratio'])} runs)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.w3_cpu")
    p.add_argument("command", choices=["fill", "run", "compare"])
    p.add_argument("backend", choices=["sqlite", "postgres"])
    p.add_argument("where", help="the SQLite file, or the PostgreSQL schema")
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=3, help="catch-ups per process (run)")
    p.add_argument("--runs", type=int, default=6, help="processes per tree (compare)")
    p.add_argument("--trees", default=".", help="comma-separated source trees (compare)")
    args = p.parse_args(argv)
    if args.command == "fill":
        asyncio.run(fill(args.backend, args.where, args.events))
    elif args.command == "run":
        print(json.dumps(asyncio.run(run(args.backend, args.where, args.events, args.rounds))))
    else:
        compare(args.backend, args.where, args.events, args.trees.split(","), args.runs)


if __name__ == "__main__":
    main()
