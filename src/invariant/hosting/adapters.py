"""The adapters the settings ask for: the event storage, the read-model database, the
broker and the job queue. Only the chosen adapter's library is imported; nothing is opened
at import time."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeGuard

from invariant.config import Settings
from invariant.domain.errors import ConfigurationError
from invariant.store.memory import MemoryStorage
from invariant.store.port import EventStorage
from invariant.store.sqlite import SQLiteStorage

if TYPE_CHECKING:  # imported when used: SQLAlchemy only for applications with projections
    from invariant.messaging.jobs.nats import NatsJobQueue
    from invariant.messaging.port import Broker
    from invariant.projections import ReadModelDatabase
    from invariant.store.postgres import PostgresStorage


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


def open_read_models(settings: Settings, storage: EventStorage | None = None
                     ) -> ReadModelDatabase:
    """The database of the read models: the event store's own (SQLite file or schema),
    that of ``storage`` when one is given, else the one ``settings`` name."""
    from invariant.projections import ReadModelDatabase

    if isinstance(storage, SQLiteStorage):
        return ReadModelDatabase.for_url(f"sqlite:///{storage.path}")
    if _is_postgres(storage):
        return ReadModelDatabase.for_url(storage.dsn, schema=storage.schema,
                                         pool=settings.postgres_pool)
    if storage is not None or settings.store == "memory":
        raise ConfigurationError(
            "projections keep their read models and checkpoints in the event store's "
            "database; set INVARIANT_STORE=sqlite or postgres"
        )
    if settings.store == "postgres":
        assert settings.postgres_dsn is not None
        return ReadModelDatabase.for_url(settings.postgres_dsn, schema=settings.postgres_schema,
                                         pool=settings.postgres_pool)
    return ReadModelDatabase.for_url(f"sqlite:///{settings.sqlite_path}")


def _is_postgres(storage: EventStorage | None) -> TypeGuard[PostgresStorage]:
    """Whether ``storage`` is PostgreSQL's, asking the PostgreSQL adapter (and so its
    optional driver) only about storages that are neither SQLite's nor in memory."""
    if storage is None or isinstance(storage, SQLiteStorage | MemoryStorage):
        return False
    from invariant.store.postgres import PostgresStorage

    return isinstance(storage, PostgresStorage)


def open_broker(settings: Settings, database: ReadModelDatabase | None = None) -> Broker:
    """The broker ``INVARIANT_BROKER`` names, on ``INVARIANT_BROKER_URL`` and
    ``INVARIANT_BROKER_CHANNEL``; the in-process broker when unset. ``sql`` keeps its
    messages in ``database`` (default: the settings' own, see :func:`open_read_models`).
    Only the chosen adapter's client library is imported. Call ``await broker.connect()``."""
    from invariant.config import check_broker

    check_broker(settings)
    if settings.broker == "sql":
        from invariant.messaging.brokers.sql import SqlBroker

        return SqlBroker(database if database is not None else open_read_models(settings))
    if settings.broker in (None, "inprocess"):
        from invariant.messaging.brokers.inprocess import InProcessBroker

        return InProcessBroker()
    from invariant.messaging.brokers import broker_from_url

    assert settings.broker_url is not None
    return broker_from_url(settings.broker_url, channel=settings.broker_channel)


def open_job_queue(settings: Settings) -> NatsJobQueue | None:
    """The job queue ``INVARIANT_JOBS`` names: None for ``database`` (jobs wait in
    ``invariant_jobs``, run by ``JobWorker``), a :class:`NatsJobQueue` (stream
    ``<CHANNEL>_JOBS``) for ``nats`` (forwarded by ``JobForwarder``, run by
    ``QueuedJobWorker``)."""
    from invariant.config import check_jobs, jobs_url

    check_jobs(settings)
    if settings.jobs == "database":
        return None
    from invariant.messaging.jobs.nats import NatsJobQueue

    url = jobs_url(settings)
    assert url is not None
    return NatsJobQueue(url, stream=f"{settings.broker_channel.upper()}_JOBS".replace("-", "_"))
