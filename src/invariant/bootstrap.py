"""Build the adapters the settings ask for. Nothing is created at import time."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from invariant.config import Settings
from invariant.domain.errors import ConfigurationError
from invariant.store.memory import MemoryStorage
from invariant.store.port import EventStorage
from invariant.store.sqlite import SQLiteStorage

if TYPE_CHECKING:  # imported when used: SQLAlchemy only for applications with projections
    from invariant.projections import ProjectionSet, ReadModelDatabase


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


def open_read_models(settings: Settings) -> ReadModelDatabase:
    """The database of the read models: the event store's own (SQLite file or schema)."""
    from invariant.projections import ReadModelDatabase

    if settings.store == "memory":
        raise ConfigurationError(
            "projections keep their read models and checkpoints in the event store's "
            "database; set INVARIANT_STORE=sqlite or postgres"
        )
    if settings.store == "postgres":
        assert settings.postgres_dsn is not None
        return ReadModelDatabase.for_url(settings.postgres_dsn, schema=settings.postgres_schema)
    return ReadModelDatabase.for_url(f"sqlite:///{settings.sqlite_path}")


def load_projections(settings: Settings, storage: EventStorage) -> ProjectionSet:
    """The projections named by ``INVARIANT_PROJECTIONS`` (``package.module:factory``)."""
    from invariant.projections import ProjectionSet

    spec = settings.projections
    if not spec or ":" not in spec:
        raise ConfigurationError(
            "set INVARIANT_PROJECTIONS=package.module:factory, a function that takes the event "
            "storage and returns a ProjectionSet (e.g. examples.bank.projections:setup)"
        )
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"INVARIANT_PROJECTIONS={spec}: {exc}") from exc
    found = factory(storage)
    if not isinstance(found, ProjectionSet):
        raise ConfigurationError(
            f"INVARIANT_PROJECTIONS={spec} returned {type(found).__name__}, not a ProjectionSet"
        )
    return found
