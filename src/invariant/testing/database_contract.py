"""The contract every :class:`~invariant.sql.database.ReadModelDatabase` keeps: the one
database handle of read models, messaging, processes and state-stored aggregates.

Reuse it for your own handle::

    class TestMyDatabase(DatabaseContract):
        @pytest.fixture
        def database_factory(self, tmp_path):
            return lambda: MyDatabase(tmp_path / "db")

``exclusive_leases`` says whether a held lease is refused to another holder (PostgreSQL's
advisory locks); on SQLite every worker gets one, its single writer lock making a second
worker harmless. The suite closes every database it opened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    select,
    update,
)

from invariant.sql.database import ReadModelDatabase, dialect_insert

DatabaseFactory = Callable[[], ReadModelDatabase]

_metadata = MetaData()
_items = Table(
    "contract_items", _metadata,
    Column("name", String(40), primary_key=True),
    Column("total", Integer, nullable=False),
)


class Boom(Exception):
    """What the suite's failing transactions raise."""


def _add(name: str, total: int = 1) -> Callable[[Connection], None]:
    def work(conn: Connection) -> None:
        conn.execute(_items.insert().values(name=name, total=total))
    return work


def _counts(conn: Connection) -> dict[str, int]:
    return {r.name: r.total for r in conn.execute(select(_items))}


class DatabaseContract:
    """Subclass in a test module and provide the ``database_factory`` fixture."""

    exclusive_leases = True

    @pytest.fixture
    def database_factory(self) -> DatabaseFactory:
        raise NotImplementedError("provide a database_factory fixture: () -> ReadModelDatabase")

    @pytest.fixture
    async def open_database(self, database_factory: DatabaseFactory
                            ) -> AsyncIterator[DatabaseFactory]:
        """Opens databases with the suite's table; closes them after the test."""
        opened: list[ReadModelDatabase] = []

        def open_one() -> ReadModelDatabase:
            opened.append(database_factory())
            return opened[-1]

        yield open_one
        for database in opened:
            await database.close()

    @pytest.fixture
    async def database(self, open_database: DatabaseFactory) -> ReadModelDatabase:
        database = open_database()
        await database.run(_metadata.create_all)
        return database

    async def test_a_transaction_is_committed_when_its_work_returns(
        self, database: ReadModelDatabase, open_database: DatabaseFactory
    ) -> None:
        def work(conn: Connection) -> str:
            _add("a")(conn)
            _add("b", 2)(conn)
            return "done"

        assert await database.run(work) == "done"
        assert await open_database().run(_counts, write=False) == {"a": 1, "b": 2}

    async def test_a_transaction_is_rolled_back_when_its_work_raises(
        self, database: ReadModelDatabase
    ) -> None:
        def work(conn: Connection) -> None:
            _add("a")(conn)
            raise Boom("refused")

        with pytest.raises(Boom, match="refused"):
            await database.run(work)
        assert await database.run(_counts, write=False) == {}
        await database.run(_add("b"))  # the handle is still usable
        assert await database.run(_counts, write=False) == {"b": 1}

    async def test_a_database_error_rolls_back_and_leaves_the_handle_usable(
        self, database: ReadModelDatabase
    ) -> None:
        await database.run(_add("a"))

        def duplicate(conn: Connection) -> None:
            _add("b")(conn)
            _add("a")(conn)  # the primary key is taken

        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            await database.run(duplicate)
        assert await database.run(_counts, write=False) == {"a": 1}
        await database.run(_add("c"))
        assert await database.run(_counts, write=False) == {"a": 1, "c": 1}

    async def test_concurrent_transactions_each_commit_their_own_change(
        self, database: ReadModelDatabase
    ) -> None:
        await database.run(_add("n", 0))

        def increment(conn: Connection) -> None:
            conn.execute(update(_items).where(_items.c.name == "n")
                         .values(total=_items.c.total + 1))

        await asyncio.gather(*(database.run(increment) for _ in range(40)))
        assert await database.run(_counts, write=False) == {"n": 40}

    async def test_an_upsert_in_the_databases_dialect_inserts_then_updates(
        self, database: ReadModelDatabase
    ) -> None:
        assert database.dialect in ("sqlite", "postgresql")

        def upsert(total: int) -> Callable[[Connection], None]:
            def work(conn: Connection) -> None:
                statement = dialect_insert(database.dialect, _items).values(name="u",
                                                                            total=total)
                conn.execute(statement.on_conflict_do_update(
                    index_elements=["name"], set_={"total": statement.excluded.total}))
            return work

        await database.run(upsert(1))
        await database.run(upsert(5))
        assert await database.run(_counts, write=False) == {"u": 5}

    async def test_one_statement_commits_and_says_how_many_rows_it_matched(
        self, database: ReadModelDatabase, open_database: DatabaseFactory
    ) -> None:
        await database.run(lambda conn: [_add(name)(conn) for name in "abc"])
        gone = await database.execute(delete(_items).where(_items.c.name.in_(["a", "b", "z"])))
        assert gone == 2
        assert await open_database().run(_counts, write=False) == {"c": 1}
        assert await database.execute(delete(_items).where(_items.c.name == "z")) == 0

    async def test_a_failing_statement_changes_nothing_and_leaves_the_handle_usable(
        self, database: ReadModelDatabase
    ) -> None:
        await database.run(_add("a"))
        both = _items.insert().values([{"name": "b", "total": 1}, {"name": "a", "total": 1}])
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            await database.execute(both)  # "a" is taken: "b" is not inserted either
        assert await database.run(_counts, write=False) == {"a": 1}
        assert await database.execute(_items.insert(), {"name": "c", "total": 3}) == 1
        await database.run(_add("d"))
        assert await database.run(_counts, write=False) == {"a": 1, "c": 3, "d": 1}

    async def test_concurrent_statements_each_commit_their_own_change(
        self, database: ReadModelDatabase
    ) -> None:
        await database.run(_add("n", 0))
        increment = update(_items).where(_items.c.name == bindparam("key")).values(
            total=_items.c.total + 1)
        counts = await asyncio.gather(*(database.execute(increment, {"key": "n"})
                                        for _ in range(40)),
                                      *(database.run(lambda c: c.execute(
                                          increment, {"key": "n"})) for _ in range(10)))
        assert counts[:40] == [1] * 40
        assert await database.run(_counts, write=False) == {"n": 50}

    async def test_a_released_lease_can_be_taken_again(self, database: ReadModelDatabase
                                                       ) -> None:
        lease = await database.try_lease("contract-lease")
        assert lease is not None and lease.held()
        await lease.release()
        again = await database.try_lease("contract-lease")
        assert again is not None and again.held()
        await again.release()

    async def test_a_held_lease_is_refused_to_another_holder(
        self, database: ReadModelDatabase, open_database: DatabaseFactory
    ) -> None:
        other = open_database()
        lease = await database.try_lease("contract-lease")
        assert lease is not None
        try:
            second = await other.try_lease("contract-lease")
            if self.exclusive_leases:
                assert second is None
                another = await other.try_lease("another-key")  # other keys stay free
                assert another is not None
                await another.release()
            else:
                assert second is not None and second.held()
                await second.release()
        finally:
            await lease.release()
        third = await other.try_lease("contract-lease")
        assert third is not None
        await third.release()
