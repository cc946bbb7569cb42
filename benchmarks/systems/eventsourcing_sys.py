"""Baseline: eventsourcing 9.5 (``Application`` + ``Aggregate`` with ``@event``), default settings.

Its API is synchronous. Sequential runs call it inline; concurrent runs call it from a thread
pool with one thread per sender (each sender waits for its own ``save`` to return).

Durability: its SQLite module switches the file to WAL and does not touch ``synchronous``,
so the connection default applies (FULL = 2 in CPython's SQLite build; checked and printed).
Its PostgreSQL module leaves ``synchronous_commit`` at the server setting (on; printed).
It has no aggregate cache unless AGGREGATE_CACHE_MAXSIZE is set (not set here: its default).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from benchmarks.plan import DEPOSIT, OPENING_BALANCE, OWNER

T = TypeVar("T")
CONCURRENT_POOL = 20  # PostgreSQL connections for concurrent runs: invariant's max_connections


class BankAccount(Aggregate):
    @event("Opened")
    def __init__(self, id: uuid.UUID, owner_id: str, balance: Decimal) -> None:
        self.owner_id = owner_id
        self.balance = balance

    @event("Deposited")
    def deposit(self, amount: Decimal) -> None:
        self.balance += amount


class Bank(Application):
    name = "Bank"


def postgres_env(dsn: str, schema: str) -> dict[str, str]:
    url = urlparse(dsn)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": (url.path or "/postgres").lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_SCHEMA": schema,
    }


class EventSourcingSystem:
    name = "eventsourcing"

    def __init__(self, backend: str, *, path: Path, dsn: str, schema: str) -> None:
        self.backend = backend
        if backend == "sqlite":
            self.env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
        elif backend == "postgres":
            self.env = postgres_env(dsn, schema)
        else:
            raise ValueError(backend)
        self.app: Bank | None = None
        self.snap_app: Bank | None = None
        self.executor: ThreadPoolExecutor | None = None

    async def setup(self, *, concurrency: int = 1) -> None:
        env = dict(self.env)
        if concurrency > 1:
            self.executor = ThreadPoolExecutor(concurrency, thread_name_prefix="es-sender")
            if self.backend == "postgres":
                env.update(POSTGRES_POOL_SIZE=str(CONCURRENT_POOL), POSTGRES_MAX_OVERFLOW="0")
        self.app = Bank(env=env)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self.executor is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def _app(self) -> Bank:
        assert self.app is not None
        return self.app

    async def settings(self) -> dict[str, str]:
        datastore: Any = self._app().recorder.datastore  # type: ignore[attr-defined]
        if self.backend == "sqlite":
            with datastore.transaction(commit=True) as c:
                c.execute("PRAGMA journal_mode")
                journal = c.fetchone()[0]
                c.execute("PRAGMA synchronous")
                sync = c.fetchone()[0]
            names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
            return {
                "journal_mode": str(journal),
                "synchronous": f"{sync} ({names.get(int(sync), '?')})",
                "asked on": "a writer connection of its pool",
            }
        with datastore.transaction(commit=False) as c:
            c.execute("SHOW synchronous_commit")
            row = c.fetchone()
        return {"synchronous_commit": str(row["synchronous_commit"]),
                "asked on": "a connection of its pool"}

    def _open(self, account_id: uuid.UUID) -> None:
        self._app().save(BankAccount(id=account_id, owner_id=OWNER, balance=OPENING_BALANCE))

    def _deposit(self, account_id: uuid.UUID) -> int:
        app = self._app()
        retries = 0
        while True:
            account: BankAccount = app.repository.get(account_id)
            account.deposit(DEPOSIT)
            try:
                app.save(account)
                return retries
            except IntegrityError:  # a concurrent sender appended first: reload and retry
                retries += 1
                if retries > 1000:
                    raise

    def _fill(self, account_id: uuid.UUID, deposits: int) -> None:
        account = BankAccount(id=account_id, owner_id=OWNER, balance=OPENING_BALANCE)
        for _ in range(deposits):
            account.deposit(DEPOSIT)
        self._app().save(account)

    async def fill_account(self, account_id: uuid.UUID, deposits: int) -> int:
        await self._call(self._fill, account_id, deposits)
        return 0

    async def open_account(self, account_id: uuid.UUID) -> int:
        await self._call(self._open, account_id)
        return 0

    async def deposit(self, account_id: uuid.UUID) -> int:
        return await self._call(self._deposit, account_id)

    async def load_balance(self, account_id: uuid.UUID, *, snapshot: bool = False) -> Decimal:
        app = self.snap_app if snapshot else self.app
        assert app is not None
        account: BankAccount = app.repository.get(account_id)
        return account.balance

    async def build_stream(self, account_id: uuid.UUID, events: int) -> None:
        account = BankAccount(id=account_id, owner_id=OWNER, balance=OPENING_BALANCE)
        for _ in range(events - 1):
            account.deposit(DEPOSIT)
        self._app().save(account)
        # A second application on the same database, with snapshotting enabled; the first
        # one (used for loads without snapshot) never looks at the snapshots table.
        self.snap_app = Bank(env={**self.env, "IS_SNAPSHOTTING_ENABLED": "y"})
        self.snap_app.take_snapshot(account_id)

    async def teardown(self) -> None:
        for app in (self.snap_app, self.app):
            if app is not None:
                app.close()
        self.app = self.snap_app = None
        if self.executor is not None:
            self.executor.shutdown()
            self.executor = None
