"""invariant, used exactly as an application would: ``Aggregates(bank_store(storage)).run``."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.plan import CURRENCY, DEPOSIT, OPENING_BALANCE, OWNER
from benchmarks.systems import Unavailable
from examples.bank.domain import AccountId, AccountOpened, BankAccount, MoneyDeposited
from examples.bank.wiring import bank_store
from invariant.application import Aggregates, UnitOfWork
from invariant.domain import Money
from invariant.domain.aggregate import stream_id_for
from invariant.store import EventStorage, EventStore

OPEN = Money.of(OPENING_BALANCE, CURRENCY)
DEP = Money.of(DEPOSIT, CURRENCY)
SNAPSHOT_EVERY = 100
CONCURRENT_RETRIES = 50
BULK_CHUNK = 1_000


class InvariantSystem:
    """``cache=False`` runs the same code with ``Aggregates(store, cache_size=0)``."""

    def __init__(
        self, backend: str, *, path: Path, dsn: str, schema: str, cache: bool, name: str,
        telemetry: str = "off",
    ) -> None:
        self.name = name
        self.backend = backend
        self.path = path
        self.dsn = dsn
        self.schema = schema
        self.cache = cache
        self.storage: Any = None
        self.retries = 10
        self.telemetry = telemetry
        """``off`` (tracing off, as shipped), ``notelemetry`` (the hooks taken out) or
        ``traced`` (a span per commit, to an exporter that drops them)."""

    async def setup(self, *, concurrency: int = 1) -> None:
        _telemetry(self.telemetry)
        storage: Any
        if self.backend == "sqlite":
            from invariant.store import SQLiteStorage

            storage = SQLiteStorage(self.path)  # defaults: WAL, synchronous=FULL, group commit
        elif self.backend == "postgres":
            try:
                from invariant.store.postgres import PostgresStorage
            except ImportError as exc:
                raise Unavailable(f"invariant.store.postgres is not available: {exc}") from exc
            storage = PostgresStorage(self.dsn, schema=self.schema)
        else:
            raise ValueError(self.backend)
        await storage.setup()
        self.storage = storage
        store: EventStore = bank_store(storage)
        self.store = store
        self.aggs = Aggregates(store) if self.cache else Aggregates(store, cache_size=0)
        # Cold loads for W2: no aggregate cache; with and without a snapshot policy.
        self.cold = Aggregates(store, cache_size=0)
        self.cold_snap = Aggregates(store, {BankAccount: SNAPSHOT_EVERY}, cache_size=0)
        self.retries = CONCURRENT_RETRIES if concurrency > 1 else 10

    async def settings(self) -> dict[str, str]:
        if self.backend == "sqlite":
            return _sqlite_settings(self.storage)
        return await _postgres_settings(self.storage, self.dsn)

    async def open_account(self, account_id: uuid.UUID) -> int:
        aid = AccountId(str(account_id))

        async def command(uow: UnitOfWork) -> None:
            uow.add(BankAccount.open(aid, OWNER, OPEN))

        return (await self.aggs.run(command)).retries

    async def deposit(self, account_id: uuid.UUID) -> int:
        aid = AccountId(str(account_id))

        async def command(uow: UnitOfWork) -> None:
            account = await uow.get(BankAccount, aid)
            account.deposit(DEP)

        return (await self.aggs.run(command, retries=self.retries)).retries

    async def fill_account(self, account_id: uuid.UUID, deposits: int) -> int:
        aid = AccountId(str(account_id))

        async def command(uow: UnitOfWork) -> None:
            account = BankAccount.open(aid, OWNER, OPEN)
            for _ in range(deposits):
                account.deposit(DEP)
            uow.add(account)

        return (await self.aggs.run(command)).retries

    async def load_balance(self, account_id: uuid.UUID, *, snapshot: bool = False) -> Decimal:
        aggs = self.cold_snap if snapshot else self.cold
        account = await aggs.repository(BankAccount).load(AccountId(str(account_id)))
        return account.balance(CURRENCY).amount

    async def build_stream(self, account_id: uuid.UUID, events: int) -> None:
        # Bulk path for setup: appends of BULK_CHUNK events each ...
        aid = AccountId(str(account_id))
        stream = stream_id_for(BankAccount, aid)
        history = [AccountOpened(OWNER, OPEN)] + [MoneyDeposited(DEP)] * (events - 2)
        for start in range(0, len(history), BULK_CHUNK):
            await self.store.append(stream, history[start:start + BULK_CHUNK], start)
        # ... then the last event as a normal command under a snapshot policy, which writes
        # the snapshot at the stream's last version in the same commit.
        async def command(uow: UnitOfWork) -> None:
            (await uow.get(BankAccount, aid)).deposit(DEP)

        await self.cold_snap.run(command)
        snap = await self.storage.read_snapshot(stream)
        assert snap is not None and snap.version == events, snap

    async def teardown(self) -> None:
        if self.storage is not None:
            await self.storage.close()
            self.storage = None


def _sqlite_settings(storage: Any) -> dict[str, str]:
    # Introspection for the report only: ask the connection invariant commits on.
    writer = getattr(storage, "_writer", None)
    conn = getattr(writer, "_conn", None)
    where = "writer connection"
    if conn is None:
        conn = storage._reader()
        where = "reader connection (same _connect as the writer)"
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    return {
        "journal_mode": str(conn.execute("PRAGMA journal_mode").fetchone()[0]),
        "synchronous": f"{sync} ({names.get(int(sync), '?')})",
        "asked on": where,
    }


async def _postgres_settings(storage: EventStorage, dsn: str) -> dict[str, str]:
    pool = getattr(storage, "_pool", None) or getattr(storage, "pool", None)
    if pool is not None and hasattr(pool, "acquire"):
        async with pool.acquire() as conn:
            value = await conn.fetchval("SHOW synchronous_commit")
        return {"synchronous_commit": str(value), "asked on": "a connection of its pool"}
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        value = await conn.fetchval("SHOW synchronous_commit")
    finally:
        await conn.close()
    return {"synchronous_commit": str(value), "asked on": "a new session with the same DSN"}


class _Direct:
    """The event store commit as it was before the telemetry hook: the storage called
    directly (the no-telemetry baseline)."""

    @staticmethod
    def commit(storage: Any, work: Any) -> Any:
        return storage.commit(work)


def _telemetry(mode: str) -> None:
    if mode == "notelemetry":
        from invariant.application import unit_of_work
        from invariant.store import event_store

        unit_of_work.telemetry = _Direct  # type: ignore[assignment]
        event_store.telemetry = _Direct  # type: ignore[assignment]
    elif mode == "traced":
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

        from invariant.telemetry import use_tracer_provider

        class Drop(SpanExporter):
            def export(self, spans: Any) -> Any:
                from opentelemetry.sdk.trace.export import SpanExportResult

                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(Drop()))
        use_tracer_provider(provider)
