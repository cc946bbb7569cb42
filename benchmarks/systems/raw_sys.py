"""Baseline: the same work in plain driver code (stdlib sqlite3, asyncpg), no framework.

Per command: read the stream's rows ordered by version, decode every JSON payload with orjson
and fold the balance with Decimal, then insert one row with version = len(rows) + 1 in its own
transaction. The event payloads have exactly the shape invariant stores for the bank example.
"""

from __future__ import annotations

import sqlite3
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from benchmarks.plan import CURRENCY, DEPOSIT, OPENING_BALANCE, OWNER
from benchmarks.systems import BenchSystem, Unavailable

OPENED = "AccountOpened"
DEPOSITED = "MoneyDeposited"
OPENED_DATA = orjson.dumps(
    {"owner_id": OWNER, "initial_deposit": {"amount": str(OPENING_BALANCE), "currency": CURRENCY}}
).decode()
DEPOSITED_DATA = orjson.dumps({"amount": {"amount": str(DEPOSIT), "currency": CURRENCY}}).decode()


def stream_of(account_id: uuid.UUID) -> str:
    return f"account-{account_id}"


def fold(rows: list[Any], balance: Decimal | None = None) -> Decimal:
    """Rows of ``(type, data)``: the balance after applying them (the 'aggregate')."""
    loads = orjson.loads
    for event_type, data in rows:
        d = loads(data)
        if event_type == DEPOSITED:
            assert balance is not None, "deposit into an account that is not open"
            balance += Decimal(d["amount"]["amount"])
        elif event_type == OPENED:
            balance = Decimal(d["initial_deposit"]["amount"])
    if balance is None:
        raise LookupError("no such account")
    return balance


def _history(account_id: uuid.UUID, deposits: int, *, id_bytes: bool
             ) -> list[tuple[Any, str, int, str, str]]:
    """The rows ``(event_id, stream_id, version, type, data)`` of an account opened and then
    credited ``deposits`` times (event ids as bytes for SQLite, UUIDs for asyncpg)."""
    sid = stream_of(account_id)
    return [((uuid.uuid4().bytes if id_bytes else uuid.uuid4()), sid, v,
             *((OPENED, OPENED_DATA) if v == 1 else (DEPOSITED, DEPOSITED_DATA)))
            for v in range(1, deposits + 2)]


def make_raw(backend: str, *, path: Path, dsn: str, schema: str) -> BenchSystem:
    if backend == "sqlite":
        return RawSQLite(path)
    if backend == "postgres":
        return RawPostgres(dsn, schema)
    raise ValueError(backend)


class RawSQLite:
    """stdlib sqlite3, autocommit connection, WAL + synchronous=FULL, explicit BEGIN/COMMIT."""

    name = "raw"
    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None

    async def setup(self, *, concurrency: int = 1) -> None:
        if concurrency > 1:
            raise Unavailable(
                "raw SQLite W1c is not measured (the W1c target compares with raw sequential W1)"
            )
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS events ("
            " position INTEGER PRIMARY KEY AUTOINCREMENT,"
            " event_id BLOB NOT NULL UNIQUE,"
            " stream_id TEXT NOT NULL,"
            " version INTEGER NOT NULL,"
            " type TEXT NOT NULL,"
            " data TEXT NOT NULL,"
            " UNIQUE (stream_id, version))"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS snapshots ("
            " stream_id TEXT PRIMARY KEY, version INTEGER NOT NULL, balance TEXT NOT NULL)"
        )
        self.conn = conn

    def _c(self) -> sqlite3.Connection:
        assert self.conn is not None
        return self.conn

    async def settings(self) -> dict[str, str]:
        c = self._c()
        return {
            "journal_mode": str(c.execute("PRAGMA journal_mode").fetchone()[0]),
            "synchronous": _sqlite_sync(c.execute("PRAGMA synchronous").fetchone()[0]),
        }

    async def open_account(self, account_id: uuid.UUID) -> int:
        c = self._c()
        c.execute("BEGIN")
        c.execute(
            "INSERT INTO events (event_id, stream_id, version, type, data) VALUES (?,?,?,?,?)",
            (uuid.uuid4().bytes, stream_of(account_id), 1, OPENED, OPENED_DATA),
        )
        c.execute("COMMIT")
        return 0

    async def deposit(self, account_id: uuid.UUID) -> int:
        c = self._c()
        sid = stream_of(account_id)
        rows = c.execute(
            "SELECT type, data FROM events WHERE stream_id = ? ORDER BY version", (sid,)
        ).fetchall()
        fold(rows)  # the 'aggregate': the account must exist; the balance is the state
        c.execute("BEGIN")
        c.execute(
            "INSERT INTO events (event_id, stream_id, version, type, data) VALUES (?,?,?,?,?)",
            (uuid.uuid4().bytes, sid, len(rows) + 1, DEPOSITED, DEPOSITED_DATA),
        )
        c.execute("COMMIT")
        return 0

    async def fill_account(self, account_id: uuid.UUID, deposits: int) -> int:
        c = self._c()
        c.execute("BEGIN")
        c.executemany(
            "INSERT INTO events (event_id, stream_id, version, type, data) VALUES (?,?,?,?,?)",
            _history(account_id, deposits, id_bytes=True),
        )
        c.execute("COMMIT")
        return 0

    async def load_balance(self, account_id: uuid.UUID, *, snapshot: bool = False) -> Decimal:
        c = self._c()
        sid = stream_of(account_id)
        after, base = 0, None
        if snapshot:
            snap = c.execute(
                "SELECT version, balance FROM snapshots WHERE stream_id = ?", (sid,)
            ).fetchone()
            if snap is not None:
                after, base = snap[0], Decimal(snap[1])
        rows = c.execute(
            "SELECT type, data FROM events WHERE stream_id = ? AND version > ? ORDER BY version",
            (sid, after),
        ).fetchall()
        return fold(rows, base)

    async def build_stream(self, account_id: uuid.UUID, events: int) -> None:
        c = self._c()
        sid = stream_of(account_id)
        c.execute("BEGIN")
        c.executemany(
            "INSERT INTO events (event_id, stream_id, version, type, data) VALUES (?,?,?,?,?)",
            _history(account_id, events - 1, id_bytes=True),
        )
        c.execute("COMMIT")
        balance = await self.load_balance(account_id)
        c.execute("BEGIN")
        c.execute("INSERT OR REPLACE INTO snapshots VALUES (?,?,?)", (sid, events, str(balance)))
        c.execute("COMMIT")

    async def teardown(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class RawPostgres:
    """asyncpg; each INSERT runs in autocommit (one transaction per command).

    Sequential runs use one connection; concurrent runs a pool with one connection per sender.
    A conflicting concurrent append (unique (stream_id, version)) re-runs the command.
    """

    name = "raw"
    backend = "postgres"

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn = dsn
        self.schema = schema
        self.conn: Any = None
        self.pool: Any = None

    async def setup(self, *, concurrency: int = 1) -> None:
        import asyncpg

        settings = {"search_path": self.schema}
        self.conn = await asyncpg.connect(self.dsn, server_settings=settings)
        await self.conn.execute(
            "CREATE TABLE IF NOT EXISTS events ("
            " position BIGSERIAL PRIMARY KEY,"
            " event_id UUID NOT NULL UNIQUE,"
            " stream_id TEXT NOT NULL,"
            " version INTEGER NOT NULL,"
            " type TEXT NOT NULL,"
            " data JSONB NOT NULL,"
            " UNIQUE (stream_id, version));"
            "CREATE TABLE IF NOT EXISTS snapshots ("
            " stream_id TEXT PRIMARY KEY, version INTEGER NOT NULL, balance TEXT NOT NULL)"
        )
        if concurrency > 1:
            self.pool = await asyncpg.create_pool(
                self.dsn, min_size=concurrency, max_size=concurrency, server_settings=settings
            )

    async def settings(self) -> dict[str, str]:
        return {
            "synchronous_commit": await self.conn.fetchval("SHOW synchronous_commit"),
            "fsync": await self.conn.fetchval("SHOW fsync"),
        }

    async def open_account(self, account_id: uuid.UUID) -> int:
        if self.pool is not None:
            async with self.pool.acquire() as conn:
                await self._open(conn, account_id)
        else:
            await self._open(self.conn, account_id)
        return 0

    @staticmethod
    async def _open(conn: Any, account_id: uuid.UUID) -> None:
        await conn.execute(
            "INSERT INTO events (event_id, stream_id, version, type, data)"
            " VALUES ($1, $2, 1, $3, $4)",
            uuid.uuid4(), stream_of(account_id), OPENED, OPENED_DATA,
        )

    async def deposit(self, account_id: uuid.UUID) -> int:
        if self.pool is None:
            await self._deposit(self.conn, account_id)
            return 0
        import asyncpg

        retries = 0
        async with self.pool.acquire() as conn:
            while True:
                try:
                    await self._deposit(conn, account_id)
                    return retries
                except asyncpg.UniqueViolationError:
                    retries += 1

    @staticmethod
    async def _deposit(conn: Any, account_id: uuid.UUID) -> None:
        sid = stream_of(account_id)
        rows = await conn.fetch(
            "SELECT type, data FROM events WHERE stream_id = $1 ORDER BY version", sid
        )
        fold(rows)
        await conn.execute(
            "INSERT INTO events (event_id, stream_id, version, type, data)"
            " VALUES ($1, $2, $3, $4, $5)",
            uuid.uuid4(), sid, len(rows) + 1, DEPOSITED, DEPOSITED_DATA,
        )

    async def fill_account(self, account_id: uuid.UUID, deposits: int) -> int:
        if self.pool is None:
            await self._fill(self.conn, account_id, deposits)
        else:
            async with self.pool.acquire() as conn:
                await self._fill(conn, account_id, deposits)
        return 0

    @staticmethod
    async def _fill(conn: Any, account_id: uuid.UUID, deposits: int) -> None:
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO events (event_id, stream_id, version, type, data)"
                " VALUES ($1, $2, $3, $4, $5)",
                _history(account_id, deposits, id_bytes=False),
            )

    async def load_balance(self, account_id: uuid.UUID, *, snapshot: bool = False) -> Decimal:
        sid = stream_of(account_id)
        after, base = 0, None
        if snapshot:
            snap = await self.conn.fetchrow(
                "SELECT version, balance FROM snapshots WHERE stream_id = $1", sid
            )
            if snap is not None:
                after, base = snap[0], Decimal(snap[1])
        rows = await self.conn.fetch(
            "SELECT type, data FROM events WHERE stream_id = $1 AND version > $2"
            " ORDER BY version",
            sid, after,
        )
        return fold(rows, base)

    async def build_stream(self, account_id: uuid.UUID, events: int) -> None:
        sid = stream_of(account_id)
        await self.conn.copy_records_to_table(
            "events",
            columns=["event_id", "stream_id", "version", "type", "data"],
            records=_history(account_id, events - 1, id_bytes=False),
            schema_name=self.schema,
        )
        balance = await self.load_balance(account_id)
        await self.conn.execute(
            "INSERT INTO snapshots VALUES ($1, $2, $3)", sid, events, str(balance)
        )

    async def teardown(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
        if self.conn is not None:
            await self.conn.close()
            self.conn = None


def _sqlite_sync(value: Any) -> str:
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return f"{value} ({names.get(int(value), '?')})"
