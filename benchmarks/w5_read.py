"""W5's read side, one phase per process (run by :mod:`benchmarks.w5`).

* ``catchup``: a fresh projection (balance per account) catches up with the whole filled
  store: events/s over the whole log and over its first 100,000 events (half the log when
  it is smaller), and the peak growth of the process's memory while it runs (pages
  stream: nothing may accumulate);
* ``rebuild``: version 2 of that projection is built beside version 1 while writers keep
  writing (another process), then queries are switched to it; the wall-clock start and end
  are reported, so that the writers' rate during the rebuild can be compared with theirs
  before it.

invariant runs its :class:`ProjectionRunner` as W3 does, with the cyclic collector paused
while it catches up (``pause_gc=True``; without it, the pages read ahead survive young
collections and set off a full collection of the whole heap every 66 pages or so, about
45 ms each, 12% of the catch-up); raw runs driver code over its own table, in
pages of the same size, one transaction per page (an upsert per account and its
checkpoint). eventsourcing's runner commits once per event (W3: ~1,000 events/s), so it
would need a quarter of an hour per million events: W5 leaves it out of this side.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sqlite3
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import psutil
from sqlalchemy import Connection, func, select

from benchmarks.run_one import DEFAULT_DSN
from benchmarks.systems.raw_sys import DEPOSITED, OPENED
from benchmarks.w3 import Balances, commit_page_postgres, commit_page_sqlite
from examples.bank.domain import AccountOpened, MoneyDeposited
from examples.bank.wiring import bank_store
from invariant.domain import ProjectionError
from invariant.projections import ProjectionRunner, ReadModelDatabase, checkpoints
from invariant.sql.direct import execute_many
from invariant.store import EventStorage, SQLiteStorage
from invariant.store.batch import EventBatch

PAGE = 1000
START_EVENTS = 100_000
NAME = "w5_balances"
CENTS = Decimal(100)


class AccountBalances(Balances):
    """Balance per account in cents, from the bank's opening and deposit events."""

    name = NAME
    event_types = (AccountOpened, MoneyDeposited)

    def apply_batch(self, batch: EventBatch, conn: Connection) -> None:
        deltas: dict[str, int] = {}
        for stream_id, event in zip(batch.stream_ids, batch.events, strict=True):
            money = event.amount if type(event) is MoneyDeposited else event.initial_deposit  # type: ignore[attr-defined]
            deltas[stream_id] = deltas.get(stream_id, 0) + int(money.amount * CENTS)
        execute_many(conn, self._upsert(conn.dialect.name),
                     [{"account_id": k, "balance": v} for k, v in deltas.items()])


class Timing:
    """Events/s over the whole catch-up and over its first ``mark`` events."""

    def __init__(self, mark: int) -> None:
        self.mark = mark
        self.started = time.perf_counter()
        self.at_mark: tuple[int, float] | None = None

    def progress(self, checkpoint: int, head: int = 0) -> None:
        if self.at_mark is None and checkpoint >= self.mark:
            self.at_mark = (checkpoint, time.perf_counter() - self.started)

    def records(self, events: int, rss_before: float) -> list[tuple[str, float, str]]:
        elapsed = time.perf_counter() - self.started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        reached, took = self.at_mark or (events, elapsed)
        whole, start = events / elapsed, reached / took
        return [("W5-catchup", whole, "events/s"), ("W5-catchup-start", start, "events/s"),
                ("W5-catchup-ratio", whole / start, "x"),
                ("W5-catchup-rss", max(0.0, peak - rss_before), "MiB")]


def rss_mib() -> float:
    return float(psutil.Process().memory_info().rss) / (1024 * 1024)


# -- invariant -----------------------------------------------------------------------------


def open_invariant(args: argparse.Namespace) -> tuple[EventStorage, ReadModelDatabase]:
    if args.backend == "sqlite":
        path = Path(args.sqlite_dir) / "invariant-full.db"
        return SQLiteStorage(path), ReadModelDatabase.for_url(f"sqlite:///{path}")
    from invariant.store.postgres import PostgresStorage

    return (PostgresStorage(args.postgres_dsn, schema=args.schema_full),
            ReadModelDatabase.for_url(args.postgres_dsn, schema=args.schema_full))


async def invariant_catchup(args: argparse.Namespace) -> list[tuple[str, float, str]]:
    storage, database = open_invariant(args)
    try:
        await storage.setup()
        projection = AccountBalances()
        if args.suffix:  # a repetition under a name of its own, dropped once measured
            projection.name = NAME + args.suffix
            projection.metadata.clear()
            projection.define(projection.metadata)
        runner = ProjectionRunner(bank_store(storage), database, [projection], page_size=PAGE,
                                  pause_gc=True)
        await runner.setup()
        head = await storage.head_position()
        gc.collect()
        before = rss_mib()
        timing = Timing(min(START_EVENTS, head // 2))
        applied = await runner.catch_up(progress=timing.progress)
        out = timing.records(applied, before)
        assert applied == head, (applied, head)
        await database.run(lambda c: check(c, projection), write=False)
        if args.suffix:
            await database.run(lambda c: drop(c, projection))
        return out
    finally:
        await database.close()
        await storage.close()


def drop(conn: Connection, projection: AccountBalances) -> None:
    """A repetition's tables and checkpoint, gone."""
    projection.metadata.drop_all(conn)
    checkpoints.forget(conn, projection.name, projection.version)


def check(conn: Connection, projection: AccountBalances) -> None:
    """Every filled account holds 100.00 + 9 x 10.00."""
    table = projection.balances
    low, high = conn.execute(select(func.min(table.c.balance), func.max(table.c.balance))).one()
    assert low == high == 19_000, (low, high)


async def invariant_rebuild(args: argparse.Namespace) -> dict[str, float]:
    storage, database = open_invariant(args)
    try:
        await storage.setup()
        runner = ProjectionRunner(bank_store(storage), database,
                                  [AccountBalances(), AccountBalances(version=2)],
                                  page_size=PAGE, pause_gc=True)
        await runner.setup()
        start = time.time()
        applied = 0
        while True:  # writers keep writing: catch both versions up, then switch
            applied += await runner.catch_up(NAME)
            try:
                await runner.switch(NAME, 2)
                break
            except ProjectionError:
                continue  # version 2 is behind version 1: once more
        return {"start": start, "end": time.time(), "events": applied}
    finally:
        await database.close()
        await storage.close()


# -- raw -----------------------------------------------------------------------------------


def _cents(event_type: str, data: str | bytes) -> int:
    d = orjson.loads(data)
    if event_type == DEPOSITED:
        return int(Decimal(d["amount"]["amount"]) * CENTS)
    assert event_type == OPENED
    return int(Decimal(d["initial_deposit"]["amount"]) * CENTS)


def raw_sqlite(path: Path, table: str, progress: Callable[[int], None], *,
               drop: bool = False) -> int:
    """Raw catch-up of raw's own table into ``{table}_balances``; the events applied."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=10000"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute(f"CREATE TABLE {table}_balances (account_id TEXT PRIMARY KEY, balance INTEGER)")
    conn.execute(f"CREATE TABLE {table}_checkpoint (position INTEGER NOT NULL)")
    conn.execute(f"INSERT INTO {table}_checkpoint VALUES (0)")
    position = applied = 0
    while True:
        rows = conn.execute("SELECT position, stream_id, type, data FROM events"
                            " WHERE position > ? ORDER BY position LIMIT ?",
                            (position, PAGE)).fetchall()
        if not rows:
            break
        deltas: dict[str, int] = {}
        for _, stream, event_type, data in rows:
            deltas[stream] = deltas.get(stream, 0) + _cents(event_type, data)
        commit_page_sqlite(conn, table, position, rows[-1][0], deltas)
        position = rows[-1][0]
        applied += len(rows)
        progress(applied)
    if drop:
        conn.execute(f"DROP TABLE {table}_balances")
        conn.execute(f"DROP TABLE {table}_checkpoint")
    conn.close()
    return applied


async def raw_postgres(dsn: str, schema: str, table: str, progress: Callable[[int], None],
                       *, drop: bool = False) -> int:
    """As :func:`raw_sqlite`, with asyncpg."""
    import asyncpg

    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    await conn.execute(f"CREATE TABLE {table}_balances (account_id text PRIMARY KEY,"
                       " balance bigint);"
                       f"CREATE TABLE {table}_checkpoint (position bigint NOT NULL);"
                       f"INSERT INTO {table}_checkpoint VALUES (0)")
    position = applied = 0
    while True:
        rows = await conn.fetch("SELECT position, stream_id, type, data FROM events"
                                " WHERE position > $1 ORDER BY position LIMIT $2",
                                position, PAGE)
        if not rows:
            break
        deltas: dict[str, int] = {}
        for r in rows:
            deltas[r[1]] = deltas.get(r[1], 0) + _cents(r[2], r[3])
        await commit_page_postgres(conn, table, position, rows[-1][0], deltas)
        position = rows[-1][0]
        applied += len(rows)
        progress(applied)
    if drop:
        await conn.execute(f"DROP TABLE {table}_balances; DROP TABLE {table}_checkpoint")
    await conn.close()
    return applied


async def raw_catch_up(args: argparse.Namespace, table: str, progress: Callable[[int], None],
                       *, drop: bool = False) -> int:
    if args.backend == "sqlite":
        path = Path(args.sqlite_dir) / "raw-full.db"
        return await asyncio.to_thread(raw_sqlite, path, table, progress, drop=drop)
    return await raw_postgres(args.postgres_dsn, args.schema_full, table, progress, drop=drop)


async def raw_catchup(args: argparse.Namespace) -> list[tuple[str, float, str]]:
    gc.collect()
    before = rss_mib()
    timing = Timing(min(START_EVENTS, args.events // 2))
    applied = await raw_catch_up(args, "raw_w5" + args.suffix, timing.progress,
                                 drop=bool(args.suffix))
    return timing.records(applied, before)


async def raw_rebuild(args: argparse.Namespace) -> dict[str, float]:
    start = time.time()
    applied = await raw_catch_up(args, "raw_w5_v2", lambda n: None)
    return {"start": start, "end": time.time(), "events": applied}


PHASES: dict[tuple[str, str], Callable[[argparse.Namespace], Any]] = {
    ("catchup", "invariant"): invariant_catchup, ("rebuild", "invariant"): invariant_rebuild,
    ("catchup", "raw"): raw_catchup, ("rebuild", "raw"): raw_rebuild,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.w5_read")
    p.add_argument("phase", choices=("catchup", "rebuild"))
    p.add_argument("--backend", required=True)
    p.add_argument("--system", choices=("invariant", "raw"), required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--sqlite-dir", default=".")
    p.add_argument("--schema-full", default="")
    p.add_argument("--postgres-dsn", default=DEFAULT_DSN)
    p.add_argument("--suffix", default="",
                   help="catchup: a repetition, under names with this suffix, dropped after")
    p.add_argument("--result", type=Path, required=True)
    args = p.parse_args(argv)
    result = asyncio.run(PHASES[(args.phase, args.system)](args))
    args.result.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
