"""Running background jobs from the database: the embedded mode (``INVARIANT_JOBS=database``).

A worker *claims* due jobs for ``lease`` seconds (claiming is serialized, as the relay's
is), runs them outside any transaction, then deletes a job that succeeded or reschedules one
that failed, with exponential backoff, until it is dead. A worker that dies mid-job leaves
its claim to expire: the job runs again. Jobs are therefore at least once; make their
effects idempotent (e.g. pass the provider an idempotency key: the job id).

The jobs of one claim run side by side (a claim is at most ``batch`` jobs), so a slow one
(an SMTP conversation) does not hold the others back, and their outcomes share the
read-model database's commits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from invariant.backlog import Waiting
from invariant.clock import to_micros, utc_now
from invariant.domain.errors import StoreError
from invariant.messaging.jobs.table import (
    DEAD,
    DONE,
    ENQUEUED,
    PENDING,
    Job,
    JobHandler,
    claim_due,
    create,
    handler_of,
    job_from_row,
    jobs,
)
from invariant.retry import RetryPolicy
from invariant.sql.database import ReadModelDatabase
from invariant.sql.locks import create_tables, serialize
from invariant.tasks import poll
from invariant.telemetry.jobs import ran

log = logging.getLogger("invariant.jobs")

_DUE_COUNT = select(func.count()).select_from(jobs).where(
    jobs.c.state == PENDING, jobs.c.run_at <= bindparam("now"))


class JobWorker:
    """Runs due jobs of ``database`` with ``handlers`` (by job name)."""

    def __init__(self, database: ReadModelDatabase, handlers: Mapping[str, JobHandler], *,
                 backoff: RetryPolicy | None = None, lease: float = 60.0,
                 clock: Callable[[], datetime] = utc_now, batch: int = 32) -> None:
        self.database = database
        self.batch = batch
        self.handlers = dict(handlers)
        self.backoff = backoff or RetryPolicy(attempts=5, first_delay=1.0, max_delay=3600.0)
        self.lease = lease
        self.clock = clock
        self.failures = 0
        self.last_error: str | None = None

    async def setup(self) -> None:
        """Create the jobs table."""
        await self.database.run(lambda conn: create_tables(conn, self.database, create))

    async def run_once(self, limit: int | None = None) -> int:
        """Run the jobs due now (up to ``limit``, default ``batch``), side by side; how many
        ran (successfully or not)."""
        size = self.batch if limit is None else limit
        claimed = await self.database.run(lambda conn: self._claim(conn, size))
        await asyncio.gather(*(self._run(job) for job in claimed))
        return len(claimed)

    async def run(self, *, stop: asyncio.Event, idle: float = 0.2, retry: float = 0.5) -> None:
        """Run jobs until ``stop`` is set: at once when a job is enqueued in this process,
        else polling every ``idle`` seconds (jobs of other processes, delayed jobs).
        A database failure (e.g. SQLite busy, a dropped connection) does not stop the
        worker: it waits ``retry`` seconds and claims again (``failures`` and
        ``last_error`` show it; a claimed job whose outcome was not written runs again once
        its claim expires)."""
        await poll(self, self.run_once, stop=stop, idle=idle, retry=retry,
                   errors=(StoreError, SQLAlchemyError), warn=lambda error: log.warning(
                       "job worker: %s; retrying in %s s", error, retry), wake=ENQUEUED)

    async def backlog(self) -> int:
        """Jobs due now and not dead (claimed ones included): work waiting for workers."""
        now = to_micros(self.clock())
        return await self.database.run(lambda conn: int(conn.execute(
            _DUE_COUNT, {"now": now}).scalar_one()), write=False)

    async def waiting(self) -> Waiting:
        """:meth:`backlog`, and how long the job due first has been due: a measure of
        :class:`~invariant.backlog.Backlog`."""
        now = to_micros(self.clock())
        count, first = await self.database.run(lambda conn: conn.execute(
            select(func.count(), func.min(jobs.c.run_at)).where(
                jobs.c.state == PENDING, jobs.c.run_at <= now)).one(), write=False)
        return Waiting(int(count), 0.0 if first is None else max(now - int(first), 0) / 1e6)

    def _claim(self, conn: Connection, limit: int) -> list[Job]:
        serialize(conn, self.database, "messaging:jobs")
        rows = claim_due(conn, to_micros(self.clock()), limit, self.lease,
                         count_attempt=True)
        return [_claimed(job_from_row(r)) for r in rows]

    async def _run(self, job: Job) -> None:
        try:
            await ran(job, handler_of(job.name, self.handlers)(job))
        except Exception as exc:
            failure = exc
            await self.database.run(lambda conn: self._failed(conn, job, failure))
        else:
            await self.database.execute(DONE, {"id": job.id})

    def _failed(self, conn: Connection, job: Job, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if job.attempt >= min(job.max_attempts, self.backoff.attempts):
            values: dict[str, Any] = {"state": DEAD}
        else:
            later = self.clock() + timedelta(seconds=self.backoff.delay(job.attempt))
            values = {"run_at": to_micros(later)}
        conn.execute(update(jobs).where(jobs.c.id == job.id).values(
            claimed_until=None, last_error=error, **values))


def _claimed(job: Job) -> Job:
    return Job(job.id, job.name, job.payload, job.attempt + 1, job.max_attempts, job.run_at,
               job.last_error, job.state)
