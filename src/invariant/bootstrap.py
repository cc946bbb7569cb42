"""Build the adapters the settings ask for. Nothing is created at import time."""

from __future__ import annotations

from invariant.config import Settings
from invariant.store.memory import MemoryStorage
from invariant.store.port import EventStorage
from invariant.store.sqlite import SQLiteStorage


def open_storage(settings: Settings) -> EventStorage:
    """The event storage for ``settings`` (call ``await storage.setup()`` before use)."""
    if settings.store == "memory":
        return MemoryStorage()
    if settings.store == "postgres":
        from invariant.store.postgres import PostgresStorage

        assert settings.postgres_dsn is not None
        return PostgresStorage(
            settings.postgres_dsn, schema=settings.postgres_schema,
            max_connections=settings.postgres_pool,
            min_connections=min(2, settings.postgres_pool),
        )
    return SQLiteStorage(settings.sqlite_path)
