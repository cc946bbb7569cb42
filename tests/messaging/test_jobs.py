"""Background jobs: delayed, retried with exponential backoff, dead after their attempts;
and the seed's flow: outbox → relay → broker → consumer queues the email → a worker sends
it, each effect once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection

from invariant.messaging import jobs
from invariant.messaging.brokers.inprocess import InProcessBroker
from invariant.messaging.consumer import Consumer
from invariant.messaging.jobs import Job, JobWorker
from invariant.messaging.jobs.table import ENQUEUED
from invariant.messaging.port import Message
from invariant.messaging.relay import OutboxRelay
from invariant.retry import RetryPolicy
from invariant.sql.database import ReadModelDatabase, SQLiteReadModels
from invariant.store import SQLiteStorage
from invariant.store.records import AppendRequest, Commit, NewEvent, StreamState


class Mailer:
    """A fake email provider: records what it sent, fails the first ``failures`` sends."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.sent: list[str] = []

    async def send(self, job: Job) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("provider unavailable")
        self.sent.append(str(job.payload["to"]))


async def test_a_delayed_job_runs_only_when_due(db: ReadModelDatabase) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    mailer = Mailer()
    worker = JobWorker(db, {"email": mailer.send}, clock=lambda: now[0])
    await worker.setup()
    await db.run(lambda c: jobs.enqueue(c, "email", {"to": "a@x"}, delay=60, now=now[0]))
    assert await worker.run_once() == 0
    now[0] += timedelta(seconds=61)
    assert await worker.run_once() == 1
    assert mailer.sent == ["a@x"]
    assert await worker.run_once() == 0  # done jobs are gone


async def test_the_oldest_job_waiting_is_aged_from_when_it_fell_due(
        db: ReadModelDatabase) -> None:
    """A delayed job waits for no worker before it is due; once due, its age counts from
    then, not from when it was enqueued."""
    from invariant.backlog import Waiting

    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    worker = JobWorker(db, {"email": Mailer().send}, clock=lambda: now[0])
    await worker.setup()
    assert await worker.waiting() == Waiting(0, 0.0)
    await db.run(lambda c: jobs.enqueue(c, "email", {"to": "a@x"}, delay=60, now=now[0]))
    await db.run(lambda c: jobs.enqueue(c, "email", {"to": "b@x"}, now=now[0]))
    now[0] += timedelta(seconds=2)
    assert await worker.waiting() == Waiting(1, 2.0)  # the delayed one is not due
    now[0] += timedelta(seconds=60)
    assert await worker.waiting() == Waiting(2, 62.0)
    assert await worker.run_once() == 2
    assert await worker.waiting() == Waiting(0, 0.0)


async def test_failures_are_retried_with_exponential_backoff_then_dead(
    db: ReadModelDatabase
) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    mailer = Mailer(failures=10)
    worker = JobWorker(db, {"email": mailer.send}, clock=lambda: now[0],
                       backoff=RetryPolicy(attempts=4, first_delay=1.0, factor=2.0))
    await worker.setup()
    await db.run(lambda c: jobs.enqueue(c, "email", {"to": "a@x"}, now=now[0]))
    waits = []
    for _ in range(4):
        assert await worker.run_once() == 1  # attempt fails
        row = await db.run(lambda c: c.execute(jobs.jobs.select()).one()._mapping,
                           write=False)
        if row["state"] == jobs.DEAD:
            break
        assert await worker.run_once() == 0  # not due yet
        wait = timedelta(microseconds=row["run_at"]) - (now[0] - datetime(1970, 1, 1,
                                                                          tzinfo=UTC))
        waits.append(wait.total_seconds())
        now[0] += wait
    assert waits == [1, 2, 4]  # 1 s, 2 s, 4 s after attempts 1, 2, 3
    (dead,) = await db.run(jobs.dead_jobs, write=False)
    assert (dead.attempt, dead.last_error) == (4, "ConnectionError: provider unavailable")
    mailer.failures = 0
    await db.run(lambda c: jobs.retry_dead(c, dead.id, now[0]))
    assert await worker.run_once() == 1
    assert mailer.sent == ["a@x"]
    assert await db.run(jobs.dead_jobs, write=False) == []


async def test_a_dead_workers_job_runs_again_after_its_lease(db: ReadModelDatabase) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    mailer = Mailer()
    dead = JobWorker(db, {}, clock=lambda: now[0], lease=30)
    await dead.setup()
    await db.run(lambda c: jobs.enqueue(c, "email", {"to": "a@x"}, now=now[0]))
    assert len(await db.run(lambda c: dead._claim(c, 10))) == 1  # claimed, then it died
    heir = JobWorker(db, {"email": mailer.send}, clock=lambda: now[0])
    assert await heir.run_once() == 0
    now[0] += timedelta(seconds=31)
    assert await heir.run_once() == 1
    assert mailer.sent == ["a@x"]


async def test_the_seed_flow_from_commit_to_email(tmp_path: Path) -> None:
    """UserRegistered → outbox → relay → broker → consumer queues the email (in its effect
    transaction) → a worker sends it; redelivery of the event queues nothing more."""
    storage = SQLiteStorage(tmp_path / "app.db")
    await storage.setup()
    db = SQLiteReadModels(tmp_path / "app.db")
    broker = InProcessBroker()
    relay = OutboxRelay(db, broker)
    mailer = Mailer(failures=1)
    worker = JobWorker(db, {"welcome-email": mailer.send},
                       backoff=RetryPolicy(attempts=3, first_delay=0.01))

    def queue_the_email(conn: Connection, message: Message) -> None:
        jobs.enqueue(conn, "welcome-email", {"to": message.data["email"]})

    notifications = Consumer("notifications", db, queue_the_email)
    await relay.setup()
    await notifications.setup()
    await worker.setup()
    await broker.declare("notifications")
    for n in range(3):
        await storage.commit(Commit(appends=(AppendRequest(
            f"user-{n}", StreamState.NO_STREAM,
            (NewEvent(uuid.uuid4(), "UserRegistered", 1, {"email": f"u{n}@x"}, {}),)),)))
    assert await relay.run_once() == 3
    deliveries = await broker.fetch("notifications", max_messages=10, timeout=1)
    for d in deliveries:
        await notifications.consume_one(d)
    for d in deliveries:  # the broker delivers them all again: nothing more is queued
        assert await notifications.handle(d.message) == "duplicate"
    async with asyncio.timeout(10):
        while len(mailer.sent) < 3:
            await worker.run_once()
            await asyncio.sleep(0.02)
    assert sorted(mailer.sent) == ["u0@x", "u1@x", "u2@x"]
    assert await worker.run_once() == 0
    await db.close()
    await storage.close()


async def test_the_worker_survives_a_database_failure_and_runs_the_job_after(
        db: ReadModelDatabase) -> None:
    """A busy or dropped database makes one claim fail; the worker keeps going."""
    from sqlalchemy.exc import OperationalError

    mailer = Mailer()
    worker = JobWorker(db, {"email": mailer.send})
    await worker.setup()
    await db.run(lambda c: jobs.enqueue(c, "email", {"to": "a@x"}))
    real_run, broken = db.run, [True]

    async def flaky(work, **kwargs):  # type: ignore[no-untyped-def]
        if broken:
            broken.clear()
            raise OperationalError("BEGIN", {}, Exception("database is locked"))
        return await real_run(work, **kwargs)

    db.run = flaky  # type: ignore[method-assign]
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop=stop, idle=0.01, retry=0.01))
    try:
        for _ in range(500):
            if mailer.sent:
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await running
        db.run = real_run  # type: ignore[method-assign]
    assert mailer.sent == ["a@x"]
    assert worker.failures == 1 and "database is locked" in (worker.last_error or "")


async def test_the_jobs_of_one_claim_run_side_by_side(db: ReadModelDatabase) -> None:
    first_started = asyncio.Event()
    order: list[str] = []

    async def slow_then_fast(job: Job) -> None:
        if job.payload["to"] == "slow":
            first_started.set()
            await asyncio.sleep(0.05)  # a slow SMTP conversation
        else:
            await first_started.wait()  # runs while the slow one is still in hand
        order.append(str(job.payload["to"]))

    worker = JobWorker(db, {"email": slow_then_fast})
    await worker.setup()
    for to in ("slow", "fast"):
        await db.run(lambda c, to=to: jobs.enqueue(c, "email", {"to": to}))
    async with asyncio.timeout(10):  # one after the other, "fast" would wait forever
        assert await worker.run_once() == 2
    assert order == ["fast", "slow"]
    assert await worker.run_once() == 0  # both deleted


async def test_an_enqueued_job_wakes_the_workers_after_its_commit_and_never_if_rolled_back(
    db: ReadModelDatabase
) -> None:
    """On PostgreSQL a worker woken before the commit would not see the job and would sleep
    until its next poll."""
    await JobWorker(db, {}).setup()
    before = ENQUEUED.woken
    during: list[int] = []

    def enqueue(conn: Connection) -> None:
        jobs.enqueue(conn, "email", {"to": "a@x"})
        during.append(ENQUEUED.woken)

    await db.run(enqueue)
    assert during == [before]  # not yet: the transaction had not committed
    assert ENQUEUED.woken == before + 1

    def enqueue_and_fail(conn: Connection) -> None:
        jobs.enqueue(conn, "email", {"to": "b@x"})
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await db.run(enqueue_and_fail)
    await db.run(lambda conn: None)  # a later commit on the same connection wakes nothing
    assert ENQUEUED.woken == before + 1
    # in one shared commit (SQLite): the failing transaction's savepoint is rolled back
    failed, passed = await asyncio.gather(db.run(enqueue_and_fail), db.run(lambda c: None),
                                          return_exceptions=True)
    assert isinstance(failed, RuntimeError) and passed is None
    assert ENQUEUED.woken == before + 1


async def test_an_idle_worker_is_woken_by_an_enqueued_job_instead_of_its_next_poll(
    db: ReadModelDatabase
) -> None:
    mailer = Mailer()
    worker = JobWorker(db, {"email": mailer.send})
    await worker.setup()
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop=stop, idle=3600))  # would poll in an hour
    try:
        await asyncio.sleep(0.05)  # the worker found nothing and went idle
        await db.run(lambda c: jobs.enqueue(c, "email", {"to": "woken@x"}))
        async with asyncio.timeout(10):
            while not mailer.sent:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert mailer.sent == ["woken@x"]
    finally:
        stop.set()
        await task
