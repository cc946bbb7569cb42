"""Given/then for projections: events in streams, then the rows of the read model (or the
answer of a query over it), built by the real runner on a temporary SQLite file::

    async with ProjectionScenario(AccountSummary()) as s:
        await s.given("account-ACC-1", AccountOpened("USER-1", usd(100)))
        s.clock.advance(minutes=5)
        await s.given("account-ACC-1", MoneyDeposited(usd(50)))
        await s.then_rows("accounts", [{"account_id": "ACC-1", "balance": 15000}])
        await s.then_query(lambda db: get_summary(db, "ACC-1"), expected_view)
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, select

from invariant.domain import ConfigurationError, DomainEvent
from invariant.projections import (
    Projection,
    ProjectionRunner,
    ReadModelDatabase,
    RetryPolicy,
    SQLiteReadModels,
)
from invariant.store import EventRegistry, EventStore, SQLiteStorage
from invariant.testing.aggregates import StoreFactory
from invariant.testing.clock import ManualClock
from invariant.testing.diff import differences

T = TypeVar("T")


class ProjectionScenario:
    """Runs one projection over the events a test gives, on a temporary SQLite file that
    holds both the event store and the read model (as an application's would).

    Events are stored when given, at the time of ``clock`` (a :class:`ManualClock`); each
    ``then_*`` first brings the projection up to date, so given/then may alternate. A
    failing handler fails at once (no retries). ``store=`` builds the application's event
    store (registry, upcasters); by default one whose registry learns the given events.
    """

    storage: SQLiteStorage
    store: EventStore
    database: ReadModelDatabase
    runner: ProjectionRunner

    def __init__(self, projection: Projection, *, store: StoreFactory | None = None,
                 clock: ManualClock | None = None) -> None:
        self.projection = projection
        self.clock = clock or ManualClock()
        self._make_store = store
        self._dir: Path | None = None

    async def __aenter__(self) -> ProjectionScenario:
        self._dir = Path(tempfile.mkdtemp(prefix="invariant-projection-"))
        path = self._dir / "events.db"
        self.storage = SQLiteStorage(path, clock=self.clock)
        self.store = (self._make_store(self.storage) if self._make_store is not None
                      else EventStore(self.storage, EventRegistry()))
        self.database = SQLiteReadModels(path)
        self.runner = ProjectionRunner(self.store, self.database, [self.projection],
                                       retry=RetryPolicy(attempts=1), clock=self.clock)
        await self.storage.setup()
        await self.runner.setup()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.database.close()
        await self.storage.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    # -- given ---------------------------------------------------------------------------

    async def given(self, stream_id: str, *events: DomainEvent) -> ProjectionScenario:
        """Append ``events`` to ``stream_id`` (after what it holds), recorded now."""
        registry = self.store.registry
        for event in events:
            if event.event_type not in registry:
                registry.register(type(event))
        await self.store.append(stream_id, events)
        return self

    # -- then ----------------------------------------------------------------------------

    async def then_rows(self, table: str, rows: Sequence[Mapping[str, Any]]
                        ) -> ProjectionScenario:
        """The projection's table ``table`` (its base name, as given to ``table_name``)
        holds exactly these rows, in primary-key order. Only the columns the expected rows
        name are compared."""
        await self.runner.catch_up()
        found = self._table(table)
        columns = sorted({column for row in rows for column in row})
        unknown = [c for c in columns if c not in found.c]
        if unknown:
            raise ConfigurationError(f"table {found.name} has no column(s) {unknown}; it has "
                                     f"{[c.name for c in found.c]}")

        def read(conn: Connection) -> list[dict[str, Any]]:
            result = conn.execute(select(found).order_by(*found.primary_key.columns))
            return [{c: row[c] for c in columns} for row in result.mappings()]

        got = await self.database.run(read, write=False)
        want = [{c: row.get(c) for c in columns} for row in rows]
        if got != want:
            raise AssertionError(differences(f"rows of {found.name}", want, got))
        return self

    async def then_query(self, query: Callable[[ReadModelDatabase], Awaitable[T]],
                         expected: T) -> ProjectionScenario:
        """``query`` (given the read model database) answers ``expected``."""
        await self.runner.catch_up()
        got = await query(self.database)
        if got != expected:
            pair = (list(expected), list(got)) if isinstance(expected, list) \
                and isinstance(got, list) else ([expected], [got])
            raise AssertionError(differences("query answers", *pair))
        return self

    def _table(self, base: str) -> Table:
        name = self.projection.table_name(base)
        for table in self.projection.tables:
            if table.name == name:
                return table
        raise ConfigurationError(
            f"{type(self.projection).__name__} has no table {base!r} ({name}); its tables: "
            + ", ".join(t.name for t in self.projection.tables))
