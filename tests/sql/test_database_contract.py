"""The database handle's contract, on every backend we ship."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from invariant.sql.database import ReadModelDatabase, SQLiteReadModels
from invariant.testing.database_contract import DatabaseContract, DatabaseFactory
from tests.conftest import POSTGRES_DSN


class TestSQLiteOnTheLoop(DatabaseContract):
    exclusive_leases = False

    @pytest.fixture
    def database_factory(self, tmp_path: Path) -> DatabaseFactory:
        return lambda: SQLiteReadModels(tmp_path / "app.db")


class TestSQLiteInAThread(DatabaseContract):
    exclusive_leases = False

    @pytest.fixture
    def database_factory(self, tmp_path: Path) -> DatabaseFactory:
        return lambda: SQLiteReadModels(tmp_path / "app.db", in_thread=True)


@pytest.mark.postgres
class TestPostgreSQL(DatabaseContract):
    @pytest.fixture
    def database_factory(self, pg_schema: str) -> DatabaseFactory:
        return lambda: ReadModelDatabase.for_url(POSTGRES_DSN, schema=pg_schema)


@pytest.mark.postgres
async def test_one_statement_on_postgresql_runs_without_a_transaction_block(
    pg_schema: str,
) -> None:
    """``execute`` sends the statement alone, not between BEGIN and COMMIT: VACUUM, which
    PostgreSQL refuses inside a transaction block, runs through it and not through run()."""
    database = ReadModelDatabase.for_url(POSTGRES_DSN, schema=pg_schema)
    try:
        await database.run(lambda conn: conn.exec_driver_sql("CREATE TABLE alone (id int)"))
        vacuum = text("VACUUM alone")
        with pytest.raises(DBAPIError, match="cannot run inside a transaction block"):
            await database.run(lambda conn: conn.execute(vacuum))
        await database.execute(vacuum)
        assert await database.execute(text("INSERT INTO alone VALUES (1), (2)")) == 2
    finally:
        await database.close()
