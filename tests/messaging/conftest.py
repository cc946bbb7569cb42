"""Broker fixtures: each test gets a channel of its own on the real server."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from invariant.sql.database import ReadModelDatabase, SQLiteReadModels
from invariant.store import SQLiteStorage
from invariant.store.port import EventStorage
from invariant.store.postgres import PostgresStorage
from tests.conftest import POSTGRES_DSN, fresh_pg_schema, require_server
from tests.messaging.helpers import effects_metadata
from tests.messaging.kafka_server import KafkaServer, kafka_server

NATS_URL = os.environ.get("INVARIANT_TEST_NATS_URL", "nats://127.0.0.1:4222")
RABBITMQ_URL = os.environ.get("INVARIANT_TEST_RABBITMQ_URL",
                              "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("INVARIANT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_port(name: str, port: int) -> None:
    """Skip (locally) or fail (CI) when nothing listens on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError as exc:
        require_server(name, exc)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaServer]:
    """One Kafka server for the session: a Tansu broker of our own on a free port (or the
    cluster of ``INVARIANT_TEST_KAFKA_BOOTSTRAP``); each test uses topics of its own."""
    with kafka_server(tmp_path_factory.mktemp("kafka")) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path
             ) -> AsyncIterator[ReadModelDatabase]:
    """A database of its own (a SQLite file, a fresh PostgreSQL schema) with the effects
    table the tests count."""
    async with contextlib.AsyncExitStack() as stack:
        database: ReadModelDatabase
        if request.param == "sqlite":
            database = SQLiteReadModels(tmp_path / "read_models.db")
        else:
            schema = await stack.enter_async_context(fresh_pg_schema())
            database = ReadModelDatabase.for_url(POSTGRES_DSN, schema=schema)
        await database.run(effects_metadata.create_all)
        try:
            yield database
        finally:
            await database.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def app_db(request: pytest.FixtureRequest, tmp_path: Path
                 ) -> AsyncIterator[tuple[EventStorage, str, str | None]]:
    """The event storage (set up), the database URL of its outbox and its schema."""
    async with contextlib.AsyncExitStack() as stack:
        storage: EventStorage
        if request.param == "sqlite":
            url, schema = f"sqlite:///{tmp_path / 'app.db'}", None
            storage = SQLiteStorage(tmp_path / "app.db")
        else:
            schema = await stack.enter_async_context(fresh_pg_schema())
            url = POSTGRES_DSN
            storage = PostgresStorage(POSTGRES_DSN, schema=schema)
        await storage.setup()
        try:
            yield storage, url, schema
        finally:
            await storage.close()
