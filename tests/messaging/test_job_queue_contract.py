"""The job queues' contract, on every backend we ship: the database-polling JobWorker and
the NATS JetStream work queue (a forwarder and a worker), each with its jobs table on
SQLite and on PostgreSQL, against the real servers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest

from invariant.messaging.jobs import JobHandler, JobWorker
from invariant.messaging.jobs.nats import JobForwarder, NatsJobQueue, QueuedJobWorker
from invariant.retry import RetryPolicy
from invariant.sql.database import ReadModelDatabase, SQLiteReadModels
from invariant.testing.job_queue_contract import JobQueueContract, JobRunner, JobRunnerFactory
from tests.conftest import POSTGRES_DSN
from tests.messaging.conftest import NATS_URL, require_port


class DatabaseJobs:
    """The embedded mode: one JobWorker polling the jobs table."""

    def __init__(self, database: ReadModelDatabase, handlers: Mapping[str, JobHandler],
                 retry: RetryPolicy) -> None:
        self.worker = JobWorker(database, handlers, backoff=retry)

    async def setup(self) -> None:
        await self.worker.setup()

    async def run(self, *, stop: asyncio.Event) -> None:
        await self.worker.run(stop=stop, idle=0.02, retry=0.1)

    async def close(self) -> None:
        return None


class NatsJobs:
    """The distributed mode: a forwarder and a worker on a fresh stream of the real server,
    deleted when closed."""

    def __init__(self, database: ReadModelDatabase, handlers: Mapping[str, JobHandler],
                 retry: RetryPolicy) -> None:
        require_port("NATS", 4222)
        self.stream = f"TJOBC{uuid.uuid4().hex[:10].upper()}"
        self.queues = [NatsJobQueue(NATS_URL, stream=self.stream, request_timeout=3.0)
                       for _ in range(2)]
        self.forwarder = JobForwarder(database, self.queues[0])
        self.worker = QueuedJobWorker(database, self.queues[1], handlers, backoff=retry)

    async def setup(self) -> None:
        await self.forwarder.setup()
        await self.worker.setup()

    async def run(self, *, stop: asyncio.Event) -> None:
        await asyncio.gather(self.forwarder.run(stop=stop, idle=0.02),
                             self.worker.run(stop=stop, poll=0.1))

    async def close(self) -> None:
        await self.queues[0].delete()
        for queue in self.queues:
            await queue.close()


def database_jobs(database: ReadModelDatabase, handlers: Mapping[str, JobHandler],
                  retry: RetryPolicy) -> JobRunner:
    return DatabaseJobs(database, handlers, retry)


def nats_jobs(database: ReadModelDatabase, handlers: Mapping[str, JobHandler],
              retry: RetryPolicy) -> JobRunner:
    return NatsJobs(database, handlers, retry)


class OnSQLite:
    @pytest.fixture
    def jobs_database(self, tmp_path: Path) -> ReadModelDatabase:
        return SQLiteReadModels(tmp_path / "jobs.db")


class OnPostgreSQL:
    @pytest.fixture
    def jobs_database(self, pg_schema: str) -> ReadModelDatabase:
        return ReadModelDatabase.for_url(POSTGRES_DSN, schema=pg_schema)


class TestDatabaseJobsOnSQLite(OnSQLite, JobQueueContract):
    @pytest.fixture
    def job_runner_factory(self) -> JobRunnerFactory:
        return database_jobs


@pytest.mark.postgres
class TestDatabaseJobsOnPostgreSQL(OnPostgreSQL, JobQueueContract):
    @pytest.fixture
    def job_runner_factory(self) -> JobRunnerFactory:
        return database_jobs


class TestNatsJobsOnSQLite(OnSQLite, JobQueueContract):
    @pytest.fixture
    def job_runner_factory(self) -> JobRunnerFactory:
        return nats_jobs


@pytest.mark.postgres
class TestNatsJobsOnPostgreSQL(OnPostgreSQL, JobQueueContract):
    @pytest.fixture
    def job_runner_factory(self) -> JobRunnerFactory:
        return nats_jobs
