"""The database handle's contract, on every backend we ship."""

from __future__ import annotations

from pathlib import Path

import pytest

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
