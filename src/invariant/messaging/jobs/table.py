"""Background jobs (the seed's "queue the email, a worker sends it"): enqueued in the
caller's transaction, run by workers with retries and exponential backoff, delayed jobs,
and a dead-letter state for jobs that exhausted their attempts.

Jobs live in ``invariant_jobs`` in the application's database (SQLite in the embedded mode,
PostgreSQL shared by any number of workers in the distributed mode): this module holds the
table and what is done to it; :class:`~invariant.messaging.jobs.worker.JobWorker` runs them
from it. Job ids are never reused (on SQLite too, for a jobs table created since it uses
AUTOINCREMENT): pass one to a provider as an idempotency key.

Distributed mode on a broker (``INVARIANT_JOBS=nats``): :mod:`invariant.messaging.jobs.nats`
forwards due jobs from this table to a NATS JetStream work queue that any number of workers
consume; ``enqueue``, ``dead_jobs``, ``retry_dead`` and ``discard_dead`` stay as they
are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    bindparam,
    select,
    update,
)

from invariant.clock import from_micros, to_micros, utc_now
from invariant.domain.errors import ConfigurationError
from invariant.sql.database import wake_after_commit
from invariant.telemetry.jobs import queued
from invariant.wakeups import Wakeups

PENDING, DEAD = "pending", "dead"

JobHandler = Callable[["Job"], Awaitable[None]]


def handler_of(name: str, handlers: Mapping[str, JobHandler]) -> JobHandler:
    """The handler of job ``name``; a :class:`ConfigurationError` naming the known ones
    when no worker registered it (the job then fails like any other, and ends dead)."""
    handler = handlers.get(name)
    if handler is None:
        raise ConfigurationError(f"no handler for job {name!r}; known: "
                                 + ", ".join(sorted(handlers)))
    return handler

metadata = MetaData()
jobs = Table(
    "invariant_jobs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("run_at", BigInteger, nullable=False, index=True),  # microseconds, UTC
    Column("claimed_until", BigInteger),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("created_at", BigInteger, nullable=False),
    sqlite_autoincrement=True,  # a done job's id is never given to another job
)


@dataclass(frozen=True, slots=True)
class Job:
    """A job as its handler sees it (``attempt`` counts from 1)."""

    id: int
    name: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    run_at: datetime
    last_error: str | None = None
    state: str = PENDING


def create(conn: Connection) -> None:
    """Create the jobs table if missing."""
    metadata.create_all(conn)


_INSERT = jobs.insert()  # built once: building it per call costs more than running it
DONE = jobs.delete().where(jobs.c.id == bindparam("id"))
"""Delete the job of bind parameter ``id`` (it ran)."""

ENQUEUED = Wakeups()
"""Woken by every :func:`enqueue` in this process: idle job workers look at once."""


def enqueue(conn: Connection, name: str, payload: Mapping[str, Any], *,
            delay: float = 0.0, max_attempts: int = 5, now: datetime | None = None) -> int:
    """Queue job ``name`` in the caller's transaction (it exists only if that commits), to
    run ``delay`` seconds from now; its id. The idle workers of this process are woken
    once the transaction has committed (through :meth:`ReadModelDatabase.run
    <invariant.sql.database.ReadModelDatabase.run>`; see
    :func:`~invariant.sql.database.wake_after_commit`), not before: on PostgreSQL a worker
    woken before the commit would not see the job and sleep until its next poll."""
    moment = now or utc_now()
    result = conn.execute(_INSERT, {
        "name": name, "payload": orjson.dumps(dict(queued(payload))).decode(),
        "state": PENDING, "run_at": to_micros(moment + timedelta(seconds=delay)),
        "attempts": 0, "max_attempts": max_attempts, "created_at": to_micros(moment)})
    key = result.inserted_primary_key
    assert key is not None
    if delay <= 0:
        wake_after_commit(conn, ENQUEUED)
    return int(key[0])


def dead_jobs(conn: Connection) -> list[Job]:
    """Jobs that exhausted their attempts, with their last error."""
    rows = conn.execute(select(jobs).where(jobs.c.state == DEAD).order_by(jobs.c.id))
    return [job_from_row(r) for r in rows]


def retry_dead(conn: Connection, job_id: int, now: datetime | None = None) -> None:
    """Give a dead job a fresh set of attempts, due now."""
    conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state == DEAD).values(
        state=PENDING, attempts=0, claimed_until=None, run_at=to_micros(now or utc_now())))


def discard_dead(conn: Connection, job_id: int) -> bool:
    """Forget dead job ``job_id`` without running it again; whether there was one."""
    deleted = conn.execute(jobs.delete().where(jobs.c.id == job_id, jobs.c.state == DEAD))
    return bool(deleted.rowcount)


def claim_due(conn: Connection, now: int, limit: int, lease: float, *,
              count_attempt: bool = False) -> Sequence[Row[Any]]:
    """The rows of up to ``limit`` pending jobs due at ``now`` (microseconds) and not
    claimed, first due first, now claimed for ``lease`` seconds (``count_attempt``: their
    attempts counted one more). Callers serialize claims (``serialize(conn, database,
    "messaging:jobs")``) first."""
    rows = conn.execute(_DUE, {"now": now, "limit": limit}).all()
    if rows:
        conn.execute(_CLAIM[count_attempt], {"ids": [r.id for r in rows],
                                 "claimed_until": now + int(lease * 1_000_000)})
    return rows


_DUE = select(jobs).where(
    jobs.c.state == PENDING, jobs.c.run_at <= bindparam("now"),
    (jobs.c.claimed_until.is_(None)) | (jobs.c.claimed_until < bindparam("now")),
).order_by(jobs.c.run_at, jobs.c.id).limit(bindparam("limit"))
_CLAIMED = update(jobs).where(jobs.c.id.in_(bindparam("ids", expanding=True)))
_CLAIM = {False: _CLAIMED, True: _CLAIMED.values(attempts=jobs.c.attempts + 1)}


def job_from_row(row: Any) -> Job:
    """The job of an ``invariant_jobs`` row."""
    r = row._mapping
    return Job(r["id"], r["name"], orjson.loads(r["payload"]), r["attempts"],
               r["max_attempts"], from_micros(r["run_at"]), r["last_error"], r["state"])
