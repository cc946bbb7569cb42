"""A bank on SQLite and PostgreSQL with its read models in the same database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from examples.bank.domain import AccountId, BankAccount
from examples.bank.wiring import bank_store
from invariant.application import Aggregates, UnitOfWork
from invariant.projections import Projection, ProjectionRunner, ReadModelDatabase, RetryPolicy
from invariant.store import EventStore
from invariant.store.port import EventStorage
from invariant.store.postgres import PostgresStorage
from invariant.store.sqlite import SQLiteStorage
from invariant.testing import ManualClock
from tests.conftest import POSTGRES_DSN, fresh_pg_schema
from tests.money import usd


@dataclass
class Bank:
    backend: str
    storage: EventStorage
    store: EventStore
    database: ReadModelDatabase
    aggregates: Aggregates
    clock: ManualClock
    url: str
    schema: str | None

    def runner(self, projections: Sequence[Projection], **options: Any) -> ProjectionRunner:
        options.setdefault("retry", RetryPolicy(attempts=3, first_delay=0.01))
        options.setdefault("clock", self.clock)
        return ProjectionRunner(self.store, self.database, projections, **options)

    async def open(self, account: str, amount: str, owner: str = "USER-001") -> int:
        async def command(uow: UnitOfWork) -> None:
            uow.add(BankAccount.open(AccountId(account), owner, usd(amount)))

        return (await self.aggregates.run(command)).position

    async def deposit(self, account: str, amount: str) -> int:
        async def command(uow: UnitOfWork) -> None:
            (await uow.get(BankAccount, AccountId(account))).deposit(usd(amount))

        return (await self.aggregates.run(command)).position

    async def withdraw(self, account: str, amount: str) -> int:
        async def command(uow: UnitOfWork) -> None:
            (await uow.get(BankAccount, AccountId(account))).withdraw(usd(amount))

        return (await self.aggregates.run(command)).position

    async def seed_scenario(self) -> int:
        """Seed example 65: ACC-001 1000 + 500 - 200, ACC-002 2000 + 300."""
        await self.open("ACC-001", "1000", "USER-001")
        await self.deposit("ACC-001", "500")
        await self.withdraw("ACC-001", "200")
        await self.open("ACC-002", "2000", "USER-002")
        return await self.deposit("ACC-002", "300")


@contextlib.asynccontextmanager
async def open_bank(backend: str, tmp_path: Path) -> AsyncIterator[Bank]:
    clock = ManualClock()
    async with contextlib.AsyncExitStack() as stack:
        storage: EventStorage
        schema: str | None = None
        if backend == "sqlite":
            path = tmp_path / "bank.db"
            storage = SQLiteStorage(path, clock=clock)
            url = f"sqlite:///{path}"
        else:
            schema = await stack.enter_async_context(fresh_pg_schema())
            storage = PostgresStorage(POSTGRES_DSN, schema=schema, clock=clock)
            url = POSTGRES_DSN
        await storage.setup()
        stack.push_async_callback(storage.close)
        database = ReadModelDatabase.for_url(url, schema=schema)
        stack.push_async_callback(database.close)
        store = bank_store(storage)
        yield Bank(backend, storage, store, database, Aggregates(store), clock, url, schema)


@pytest.fixture(params=["sqlite", "postgres"])
async def bank(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bank]:
    async with open_bank(request.param, tmp_path) as b:
        yield b


@pytest.fixture
async def sqlite_bank(tmp_path: Path) -> AsyncIterator[Bank]:
    async with open_bank("sqlite", tmp_path) as b:
        yield b


@pytest.fixture
async def pg_bank(tmp_path: Path) -> AsyncIterator[Bank]:
    async with open_bank("postgres", tmp_path) as b:
        yield b
