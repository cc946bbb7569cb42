"""W3: catch-up of stored events into a balance-per-account read model, exactly once.

``python -m benchmarks.w3 [--events 100000] [--page 1000] [--backends sqlite,postgres]
[--no-eventsourcing]`` (``python -m benchmarks`` runs it as part of the suite; this module
alone runs W3 only).

The log holds ``--events`` ``Deposited`` events over 1,000 accounts. Each system reads the
whole log in pages and, per page, in one transaction: adds the page's deltas to the
balances (one upsert per account of the page) and writes its checkpoint. Measured: events
applied per second, from the first read to the last commit. Every run checks its read
model (each account's balance is the sum of its deposits, the checkpoint is the head).

* ``invariant``: :class:`ProjectionRunner` with a projection using ``apply_batch``;
* ``raw``: the driver alone (sqlite3 / asyncpg), same pages, same statements.

Prints one line per run and, with ``--json PATH``, writes records shaped like
``benchmarks/results/latest.json`` (workload ``W3``, unit ``events/s``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table
from sqlalchemy.engine import make_url
from sqlalchemy.sql.dml import Insert

from invariant.domain import DomainEvent
from invariant.projections import Projection, ProjectionRunner, ReadModelDatabase
from invariant.sql.database import dialect_insert
from invariant.sql.direct import execute_many
from invariant.store import (
    AppendRequest,
    Commit,
    EventRegistry,
    EventStorage,
    EventStore,
    NewEvent,
    SQLiteStorage,
    StreamState,
)
from invariant.store.batch import EventBatch

DSN = os.environ.get("INVARIANT_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
ACCOUNTS = 1000


@dataclass(frozen=True)
class Deposited(DomainEvent):
    amount: int


class Balances(Projection):
    """Balance per account; a page becomes one upsert per account it touches."""

    name = "w3_balances"
    event_types = (Deposited,)

    def define(self, metadata: MetaData) -> None:
        self._upserts: dict[str, Insert] = {}
        self.balances = Table(
            self.table_name("accounts"), metadata,
            Column("account_id", String(64), primary_key=True),
            Column("balance", BigInteger, nullable=False),
        )

    def apply_batch(self, batch: EventBatch, conn: Connection) -> None:
        # The batch's columns: the typed events and their streams, no envelopes needed.
        deltas: dict[str, int] = {}
        for stream_id, event in zip(batch.stream_ids, batch.events, strict=True):
            deltas[stream_id] = deltas.get(stream_id, 0) + event.amount  # type: ignore[attr-defined]
        execute_many(conn, self._upsert(conn.dialect.name),
                     [{"account_id": k, "balance": v} for k, v in deltas.items()])

    def _upsert(self, dialect: str) -> Insert:
        """``INSERT .. ON CONFLICT DO UPDATE`` adding to the balance, built once per dialect."""
        statement = self._upserts.get(dialect)
        if statement is None:
            insert = dialect_insert(dialect, self.balances)
            statement = self._upserts[dialect] = insert.on_conflict_do_update(
                index_elements=["account_id"],
                set_={"balance": self.balances.c.balance + insert.excluded.balance},
            )
        return statement


# -- the stored log ------------------------------------------------------------------------


async def fill(storage: EventStorage, events: int) -> int:
    """``events`` deposits, 1 to 9 each, round-robin over the accounts, 500 per commit."""
    per_commit = 500
    total = 0
    n = 0
    versions: dict[str, int] = {}
    while n < events:
        appends = []
        for _ in range(per_commit // 50):
            stream = f"acct-{(n // 50) % ACCOUNTS}"
            batch = [NewEvent(uuid.uuid4(), "Deposited", 1, {"amount": 1 + (n + i) % 9}, {})
                     for i in range(min(50, events - n))]
            if not batch:
                break
            total += sum(e.data["amount"] for e in batch)
            appends.append(AppendRequest(stream, versions.get(stream, StreamState.NO_STREAM),
                                         tuple(batch)))
            versions[stream] = versions.get(stream, 0) + len(batch)
            n += len(batch)
        await storage.commit(Commit(appends=tuple(appends)))
    return total


def settle_sqlite(path: Path) -> None:
    """Fold the filled log into the database file, so that neither system pays for the
    checkpoint of the fill's write-ahead log."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


async def settle_postgres(schema: str) -> None:
    """Give the planner the statistics autovacuum would have: on a freshly filled table it
    has none, reads of the log's tail by position may be planned as a scan of the whole
    rest of the log, and whichever system reads first pays for it (or neither does, once
    autovacuum has been by: the order of the runs must not decide the figures)."""
    import asyncpg

    conn = await asyncpg.connect(DSN)
    try:
        await conn.execute(f"VACUUM ANALYZE {schema}.invariant_events")
    finally:
        await conn.close()


def expected_balances(events: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in range(events):
        stream = f"acct-{(n // 50) % ACCOUNTS}"
        out[stream] = out.get(stream, 0) + 1 + n % 9
    return out


# -- invariant -----------------------------------------------------------------------------


async def run_invariant(storage: EventStorage, database: ReadModelDatabase, page: int,
                        events: int) -> float:
    store = EventStore(storage, EventRegistry([Deposited]))
    projection = Balances()
    runner = ProjectionRunner(store, database, [projection], page_size=page, pause_gc=True)
    await runner.setup()
    started = time.perf_counter()
    applied = await runner.catch_up()
    elapsed = time.perf_counter() - started
    assert applied == events, (applied, events)

    def read(conn: Connection) -> dict[str, int]:
        return {r[0]: r[1] for r in conn.execute(projection.balances.select())}

    assert await database.run(read, write=False) == expected_balances(events)
    [status] = await runner.status()
    assert status.checkpoint == events
    return events / elapsed


# -- raw drivers ---------------------------------------------------------------------------


def _typed(data: str | bytes) -> Deposited:
    """The cheapest way Python allows to turn a row into the typed event (no ``__init__``,
    one field set): what any framework that hands handlers typed events pays at least."""
    event = _new(Deposited)
    event.__dict__["amount"] = orjson.loads(data)["amount"]
    return event


_new = object.__new__


def run_raw_sqlite(path: Path, page: int, events: int, typed: bool = False) -> float:
    """Raw driver code; ``typed`` folds typed events (see :func:`_typed`) instead of the
    decoded JSON, with the cyclic GC paused while it runs, as invariant pauses it."""
    table = "raw_typed" if typed else "raw"
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=10000"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table}_balances"
                 " (account_id TEXT PRIMARY KEY, balance INTEGER NOT NULL)")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table}_checkpoint (name TEXT PRIMARY KEY,"
                 " position INTEGER NOT NULL)")
    conn.execute(f"INSERT OR IGNORE INTO {table}_checkpoint VALUES ('w3', 0)")
    gc_was = gc.isenabled()
    if typed:
        gc.disable()
    started = time.perf_counter()
    position = 0
    while True:
        rows = conn.execute(
            "SELECT position, stream_id, data FROM invariant_events"
            " WHERE position > ? AND event_type = 'Deposited' ORDER BY position LIMIT ?",
            (position, page),
        ).fetchall()
        if not rows:
            break
        deltas: dict[str, int] = {}
        if typed:
            for _, stream, data in rows:
                deltas[stream] = deltas.get(stream, 0) + _typed(data).amount
        else:
            for _, stream, data in rows:
                deltas[stream] = deltas.get(stream, 0) + orjson.loads(data)["amount"]
        commit_page_sqlite(conn, table, position, rows[-1][0], deltas)
        position = rows[-1][0]
    elapsed = time.perf_counter() - started
    if gc_was:
        gc.enable()
    balances = dict(conn.execute(f"SELECT account_id, balance FROM {table}_balances").fetchall())
    conn.close()
    assert balances == expected_balances(events)
    return events / elapsed


def commit_page_sqlite(conn: sqlite3.Connection, table: str, start: int, end: int,
                       deltas: dict[str, int]) -> None:
    """Raw's page transaction: the checkpoint (one row of ``{table}_checkpoint``) must be
    where the page starts (exactly once), the deltas are added to ``{table}_balances``, the
    checkpoint moves to the page's end."""
    conn.execute("BEGIN IMMEDIATE")
    (current,) = conn.execute(f"SELECT position FROM {table}_checkpoint").fetchone()
    assert current == start  # exactly once: the page starts at the checkpoint
    conn.executemany(
        f"INSERT INTO {table}_balances VALUES (?, ?) ON CONFLICT (account_id)"
        " DO UPDATE SET balance = balance + excluded.balance", list(deltas.items()))
    conn.execute(f"UPDATE {table}_checkpoint SET position = ?", (end,))
    conn.execute("COMMIT")


async def commit_page_postgres(conn: Any, table: str, start: int, end: int,
                               deltas: dict[str, int]) -> None:
    """As :func:`commit_page_sqlite`, with asyncpg."""
    async with conn.transaction():
        current = await conn.fetchval(f"SELECT position FROM {table}_checkpoint FOR UPDATE")
        assert current == start
        await conn.executemany(
            f"INSERT INTO {table}_balances VALUES ($1, $2) ON CONFLICT (account_id)"
            f" DO UPDATE SET balance = {table}_balances.balance + excluded.balance",
            list(deltas.items()))
        await conn.execute(f"UPDATE {table}_checkpoint SET position = $1", end)


async def run_raw_postgres(schema: str, page: int, events: int, typed: bool = False) -> float:
    """Raw driver code; ``typed`` as in :func:`run_raw_sqlite`."""
    import asyncpg

    table = "raw_typed" if typed else "raw"
    conn = await asyncpg.connect(DSN, server_settings={"search_path": schema})
    await conn.execute(f"CREATE TABLE {table}_balances (account_id text PRIMARY KEY,"
                       " balance bigint NOT NULL)")
    await conn.execute(f"CREATE TABLE {table}_checkpoint (name text PRIMARY KEY,"
                       " position bigint NOT NULL)")
    await conn.execute(f"INSERT INTO {table}_checkpoint VALUES ('w3', 0)")
    gc_was = gc.isenabled()
    if typed:
        gc.disable()
    started = time.perf_counter()
    position = 0
    while True:
        # (invariant reads only up to the safe head; a raw reader of one idle log need not)
        rows = await conn.fetch(
            "SELECT position, stream_id, data FROM invariant_events"
            " WHERE position > $1 AND event_type = 'Deposited' ORDER BY position LIMIT $2",
            position, page,
        )
        if not rows:
            break
        deltas: dict[str, int] = {}
        if typed:
            for r in rows:
                deltas[r[1]] = deltas.get(r[1], 0) + _typed(r[2]).amount
        else:
            for r in rows:
                deltas[r[1]] = deltas.get(r[1], 0) + orjson.loads(r[2])["amount"]
        await commit_page_postgres(conn, table, position, rows[-1][0], deltas)
        position = rows[-1][0]
    elapsed = time.perf_counter() - started
    if gc_was:
        gc.enable()
    balances = {r[0]: r[1] for r in await conn.fetch(f"SELECT * FROM {table}_balances")}
    await conn.close()
    assert balances == expected_balances(events)
    return events / elapsed


# -- running -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def pg_schema() -> AsyncIterator[str]:
    import asyncpg

    schema = f"bench_w3_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(DSN)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


async def bench_sqlite(events: int, page: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="w3-") as tmp:
        path = Path(tmp) / "w3.db"
        storage = SQLiteStorage(path)
        await storage.setup()
        await fill(storage, events)
        settle_sqlite(path)
        database = ReadModelDatabase.for_url(f"sqlite:///{path}")
        try:
            invariant = await run_invariant(storage, database, page, events)
        finally:
            await database.close()
            await storage.close()
        raw = await asyncio.to_thread(run_raw_sqlite, path, page, events)
        raw_typed = await asyncio.to_thread(run_raw_sqlite, path, page, events, True)
        # eventsourcing's ProjectionRunner needs recorder subscriptions, which its SQLite
        # recorder does not support ("does not support subscriptions"): no figure here.
        print("W3 sqlite: eventsourcing not measured: its SQLite recorder does not support "
              "the subscriptions its ProjectionRunner needs", flush=True)
    return {"invariant": invariant, "raw": raw, "raw-typed": raw_typed}


async def _eventsourcing(env: dict[str, str], events: int) -> float | None:
    """eventsourcing's projection runner on the same work (None when it is not installed:
    it comes with the bench extra only)."""
    try:
        from benchmarks import w3_eventsourcing
    except ImportError:
        return None
    # Its runner commits once per event (~1,000 events/s here), so it processes at most
    # 20,000: the rate is per event and does not depend on the length of the log.
    return await asyncio.to_thread(w3_eventsourcing.run, env, min(events, 20_000))


async def bench_postgres(events: int, page: int, eventsourcing: bool = True
                         ) -> dict[str, float]:
    from invariant.store.postgres import PostgresStorage

    async with pg_schema() as schema:
        storage = PostgresStorage(DSN, schema=schema)
        await storage.setup()
        await fill(storage, events)
        await settle_postgres(schema)
        database = ReadModelDatabase.for_url(DSN, schema=schema)
        try:
            invariant = await run_invariant(storage, database, page, events)
        finally:
            await database.close()
            await storage.close()
        raw = await run_raw_postgres(schema, page, events)
        raw_typed = await run_raw_postgres(schema, page, events, typed=True)
        figures = {"invariant": invariant, "raw": raw, "raw-typed": raw_typed}
    if not eventsourcing:
        return figures
    async with pg_schema() as es_schema:
        url = make_url(DSN)
        es = await _eventsourcing({
            "PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": url.database or "",
            "POSTGRES_HOST": url.host or "127.0.0.1", "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": url.username or "postgres", "POSTGRES_PASSWORD": url.password or "",
            "POSTGRES_SCHEMA": es_schema,
        }, events)
        if es is not None:
            figures["eventsourcing"] = es
    return figures


async def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.w3")
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--page", type=int, default=1000)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--no-eventsourcing", action="store_true",
                   help="measure invariant and raw only (eventsourcing's run takes longest)")
    args = p.parse_args(argv)
    records: list[dict[str, Any]] = []
    for backend in args.backends.split(","):
        if backend == "sqlite":
            figures = await bench_sqlite(args.events, args.page)
        else:
            figures = await bench_postgres(args.events, args.page,
                                           eventsourcing=not args.no_eventsourcing)
        for system, value in figures.items():
            records.append({"workload": "W3", "backend": backend, "system": system,
                            "value": round(value, 1), "unit": "events/s"})
        ratio = figures["invariant"] / figures["raw"]
        es = figures.get("eventsourcing")
        typed = figures.get("raw-typed")
        print(f"W3 {backend}: invariant {figures['invariant']:,.0f} events/s, raw "
              f"{figures['raw']:,.0f} events/s, ratio {ratio:.2f}"
              + (f", raw-typed {typed:,.0f} events/s ({typed / figures['raw']:.2f})"
                 if typed is not None else "")
              + (f", eventsourcing {es:,.0f} events/s" if es is not None else ""), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(records, indent=2) + "\n")
    return records


if __name__ == "__main__":
    import sys

    asyncio.run(main(sys.argv[1:]))
