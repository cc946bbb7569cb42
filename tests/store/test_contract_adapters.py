"""The event storage contract, run against every adapter we ship."""

from __future__ import annotations

from pathlib import Path

import pytest

from invariant.store import MemoryStorage, SQLiteStorage
from invariant.store.postgres import PostgresStorage
from invariant.testing.event_storage_contract import EventStorageContract, StorageFactory
from tests.conftest import POSTGRES_DSN


class TestMemoryStorage(EventStorageContract):
    @pytest.fixture
    def storage_factory(self) -> StorageFactory:
        return lambda clock: MemoryStorage(clock=clock)


class TestSQLiteStorage(EventStorageContract):
    @pytest.fixture
    def storage_factory(self, tmp_path: Path) -> StorageFactory:
        return lambda clock: SQLiteStorage(tmp_path / "events.db", clock=clock)


class TestSQLiteStorageCommittingInAThread(EventStorageContract):
    @pytest.fixture
    def storage_factory(self, tmp_path: Path) -> StorageFactory:
        return lambda clock: SQLiteStorage(
            tmp_path / "events.db", clock=clock, commit_in_thread=True
        )


@pytest.mark.postgres
class TestPostgresStorage(EventStorageContract):
    @pytest.fixture
    def storage_factory(self, pg_schema: str) -> StorageFactory:
        return lambda clock: PostgresStorage(POSTGRES_DSN, schema=pg_schema, clock=clock)
