"""Background jobs on the NATS JetStream work queue (``INVARIANT_JOBS=nats``), on the real
server: enqueued in the caller's transaction, forwarded when due, run by any number of
workers, retried with exponential backoff, dead-lettered into ``invariant_jobs``; nothing
lost when a worker is killed mid-job or its connection drops."""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, select

from invariant.clock import to_micros
from invariant.messaging import jobs
from invariant.messaging.jobs import Job
from invariant.messaging.jobs.nats import (
    BURIED,
    UNREADABLE_JOB,
    JobForwarder,
    NatsJobQueue,
    QueuedJobWorker,
)
from invariant.operations.jobs import discard_dead_job
from invariant.retry import RetryPolicy
from invariant.sql.database import ReadModelDatabase, SQLiteReadModels
from tests.messaging.conftest import NATS_URL, require_port

ROOT = Path(__file__).resolve().parents[2]

effects_metadata = MetaData()
effects_table = Table(
    "test_job_effects", effects_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("label", String(40), nullable=False),
    Column("phase", String(10), nullable=False),  # start, done
)


class Effects:
    """A job handler writing what it does to a table (shared by processes)."""

    def __init__(self, database: ReadModelDatabase, *, label: str, seconds: float = 0.0,
                 hang_from: int | None = None) -> None:
        self.database, self.label, self.seconds = database, label, seconds
        self.hang_from = hang_from
        """Jobs whose payload ``n`` is at least this never finish (the crash test's victim
        is certainly mid-job when it is killed)."""

    async def handle(self, job: Job) -> None:
        await self._write(job, "start")
        if self.hang_from is not None and job.payload["n"] >= self.hang_from:
            await asyncio.Event().wait()
        await asyncio.sleep(self.seconds)
        await self._write(job, "done")

    async def _write(self, job: Job, phase: str) -> None:
        def write(conn: Connection) -> None:
            conn.execute(effects_table.insert().values(
                job_id=job.id, attempt=job.attempt, label=self.label, phase=phase))
        await self.database.run(write)


async def rows(database: ReadModelDatabase) -> list[tuple[int, int, str, str]]:
    def read(conn: Connection) -> list[tuple[int, int, str, str]]:
        return [tuple(r) for r in conn.execute(select(
            effects_table.c.job_id, effects_table.c.attempt, effects_table.c.label,
            effects_table.c.phase).order_by(effects_table.c.id))]  # type: ignore[misc]
    return await database.run(read)


@pytest.fixture
async def db(db: ReadModelDatabase) -> ReadModelDatabase:
    """The shared ``db`` fixture's database, with this module's effects table too."""
    await db.run(effects_metadata.create_all)
    return db


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> SQLiteReadModels:
    database = SQLiteReadModels(tmp_path / "jobs.db")
    await database.run(effects_metadata.create_all)
    return database


QueueFactory = Callable[..., NatsJobQueue]


@pytest.fixture
async def queues() -> AsyncIterator[QueueFactory]:
    """Queues on one fresh stream of the real NATS server, deleted afterwards."""
    require_port("NATS", 4222)
    stream = f"TJOBS{uuid.uuid4().hex[:10].upper()}"
    made: list[NatsJobQueue] = []

    def make(**options: float) -> NatsJobQueue:
        made.append(queue := NatsJobQueue(NATS_URL, stream=stream, request_timeout=3.0,
                                          **options))
        return queue
    yield make
    for queue in made:
        await queue.close()
    cleanup = NatsJobQueue(NATS_URL, stream=stream)
    await cleanup.connect()
    await cleanup.delete()
    await cleanup.close()


async def until(predicate: Callable[[], Awaitable[bool]], seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while not await predicate():  # noqa: ASYNC110 (polls a database)
            await asyncio.sleep(0.05)


async def run_workers(*workers: QueuedJobWorker
                      ) -> tuple[asyncio.Event, list[asyncio.Task[None]]]:
    stop = asyncio.Event()
    return stop, [asyncio.create_task(w.run(stop=stop, poll=0.2)) for w in workers]


async def stop_all(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    stop.set()
    await asyncio.gather(*tasks)


async def test_enqueued_jobs_run_once_each_across_several_workers(
    db: ReadModelDatabase, queues: QueueFactory
) -> None:
    forwarder = JobForwarder(db, queues())
    await forwarder.setup()
    effects = [Effects(db, label=f"w{n}") for n in range(3)]
    workers = [QueuedJobWorker(db, queues(), {"work": e.handle}) for e in effects]
    for w in workers:
        await w.setup()

    def enqueue_all(conn: Connection) -> list[int]:  # one transaction, as a handler would
        return [jobs.enqueue(conn, "work", {"n": n}) for n in range(30)]
    ids = await db.run(enqueue_all)
    stop, tasks = await run_workers(*workers)
    try:
        assert await forwarder.run_once() == 30
        assert await forwarder.run_once() == 0  # forwarded rows left the table

        async def all_done() -> bool:
            return sum(1 for r in await rows(db) if r[3] == "done") >= 30
        await until(all_done, 20)
        await asyncio.sleep(0.5)  # a duplicate would show up now
    finally:
        await stop_all(stop, tasks)
    done = [r for r in await rows(db) if r[3] == "done"]
    assert sorted(r[0] for r in done) == sorted(ids)  # each once
    assert {r[1] for r in done} == {1}
    assert await db.run(lambda c: c.execute(select(jobs.jobs)).all(), write=False) == []


async def test_a_rolled_back_enqueue_queues_nothing(
    sqlite_db: SQLiteReadModels, queues: QueueFactory
) -> None:
    forwarder = JobForwarder(sqlite_db, queues())
    await forwarder.setup()

    def enqueue_then_fail(conn: Connection) -> None:
        jobs.enqueue(conn, "work", {})
        raise RuntimeError("the caller's transaction fails")
    with pytest.raises(RuntimeError):
        await sqlite_db.run(enqueue_then_fail)
    assert await forwarder.run_once() == 0
    await sqlite_db.close()


async def test_a_delayed_job_is_forwarded_only_when_due(
    sqlite_db: SQLiteReadModels, queues: QueueFactory
) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    forwarder = JobForwarder(sqlite_db, queues(), clock=lambda: now[0])
    await forwarder.setup()
    effects = Effects(sqlite_db, label="w")
    worker = QueuedJobWorker(sqlite_db, queues(), {"work": effects.handle})
    await worker.setup()
    await sqlite_db.run(lambda c: jobs.enqueue(c, "work", {}, delay=60, now=now[0]))
    assert await forwarder.run_once() == 0
    assert await worker.run_once(timeout=0.3) == 0
    now[0] += timedelta(seconds=61)
    assert await forwarder.run_once() == 1
    assert await worker.run_once(timeout=5) == 1
    assert [r[3] for r in await rows(sqlite_db)] == ["start", "done"]
    await sqlite_db.close()


async def test_failures_are_retried_with_exponential_backoff_then_dead(
    db: ReadModelDatabase, queues: QueueFactory
) -> None:
    forwarder = JobForwarder(db, queues())
    await forwarder.setup()
    attempts: list[tuple[int, float]] = []
    loop = asyncio.get_running_loop()
    failing = [True]

    async def flaky(job: Job) -> None:
        attempts.append((job.attempt, loop.time()))
        if failing[0]:
            raise ConnectionError("provider unavailable")

    worker = QueuedJobWorker(db, queues(), {"email": flaky},
                             backoff=RetryPolicy(attempts=4, first_delay=0.3, factor=2.0))
    await worker.setup()
    job_id = await db.run(lambda c: jobs.enqueue(c, "email", {"to": "a@x"}))
    assert await forwarder.run_once() == 1
    stop, tasks = await run_workers(worker)
    try:
        async def dead() -> bool:
            return bool(await db.run(jobs.dead_jobs, write=False))
        await until(dead, 20)
    finally:
        await stop_all(stop, tasks)
    assert [a for a, _ in attempts] == [1, 2, 3, 4]
    waits = [later - earlier for (_, earlier), (_, later) in itertools.pairwise(attempts)]
    for wait, expected in zip(waits, [0.3, 0.6, 1.2], strict=True):  # 0.3 s, 0.6 s, 1.2 s
        assert expected - 0.05 <= wait <= expected + 0.8, waits
    (dead_job,) = await db.run(jobs.dead_jobs, write=False)
    assert (dead_job.id, dead_job.attempt, dead_job.last_error, dead_job.payload) == (
        job_id, 4, "ConnectionError: provider unavailable", {"to": "a@x"})
    assert worker.outcomes == {"done": 0, "retried": 3, "dead": 1}

    # the dead-letter store works as in the embedded mode: retried, it runs again
    failing[0] = False
    await db.run(lambda c: jobs.retry_dead(c, job_id))
    assert await forwarder.run_once() == 1
    assert await worker.run_once(timeout=5) == 1
    assert attempts[-1][0] == 1  # a fresh set of attempts
    assert await db.run(jobs.dead_jobs, write=False) == []
    assert await db.run(lambda c: c.execute(select(jobs.jobs)).all(), write=False) == []


async def test_a_forwarder_that_died_before_deleting_its_rows_duplicates_nothing(
    sqlite_db: SQLiteReadModels, queues: QueueFactory
) -> None:
    now = [datetime.now(UTC)]
    queue = queues()
    dead = JobForwarder(sqlite_db, queue, lease=30, clock=lambda: now[0])
    await dead.setup()
    await sqlite_db.run(lambda c: [jobs.enqueue(c, "work", {"n": n}) for n in range(5)])
    claimed = await sqlite_db.run(lambda c: dead._claim(c, to_micros(now[0])))
    await queue.publish(claimed)  # published, then the forwarder died: rows still there
    heir = JobForwarder(sqlite_db, queues(), lease=30, clock=lambda: now[0])
    await heir.setup()
    assert await heir.run_once() == 0  # the dead forwarder's claim holds
    now[0] += timedelta(seconds=31)
    assert await heir.run_once() == 5  # published again: JetStream drops the duplicates
    effects = Effects(sqlite_db, label="w")
    worker = QueuedJobWorker(sqlite_db, queues(), {"work": effects.handle})
    await worker.setup()
    ran = 0
    while got := await worker.run_once(timeout=1):
        ran += got
    assert ran == 5
    assert len([r for r in await rows(sqlite_db) if r[3] == "done"]) == 5
    await sqlite_db.close()


async def test_a_job_whose_workers_keep_dying_ends_dead_without_running_again(
    sqlite_db: SQLiteReadModels, queues: QueueFactory
) -> None:
    forwarder = JobForwarder(sqlite_db, queues())
    await forwarder.setup()
    job_id = await sqlite_db.run(lambda c: jobs.enqueue(c, "poison", {}, max_attempts=2))
    await forwarder.run_once()
    dying = queues(ack_wait=0.5)
    await dying.connect()
    for attempt in (1, 2):  # taken by a worker that dies (never acknowledges)
        (delivered,) = await dying.fetch(1, timeout=5)
        assert delivered.job.attempt == attempt
    ran: list[int] = []

    async def poison(job: Job) -> None:
        ran.append(job.attempt)

    worker = QueuedJobWorker(sqlite_db, queues(), {"poison": poison})
    await worker.setup()
    assert await worker.run_once(timeout=5) == 1
    assert ran == []
    (dead,) = await sqlite_db.run(jobs.dead_jobs, write=False)
    assert (dead.id, dead.attempt) == (job_id, 3)
    assert "was lost" in (dead.last_error or "")
    await sqlite_db.close()


async def test_a_long_job_keeps_its_lease_with_heartbeats(
    sqlite_db: SQLiteReadModels, queues: QueueFactory
) -> None:
    forwarder = JobForwarder(sqlite_db, queues())
    await forwarder.setup()
    effects = [Effects(sqlite_db, label=f"w{n}", seconds=3.0) for n in range(2)]
    workers = [QueuedJobWorker(sqlite_db, queues(ack_wait=1.0), {"work": e.handle})
               for e in effects]
    for w in workers:
        await w.setup()
    await sqlite_db.run(lambda c: jobs.enqueue(c, "work", {}))
    await forwarder.run_once()
    stop, tasks = await run_workers(*workers)
    try:
        async def done() -> bool:
            return any(r[3] == "done" for r in await rows(sqlite_db))
        await until(done, 10)
        await asyncio.sleep(1.0)
    finally:
        await stop_all(stop, tasks)
    assert [r[3] for r in await rows(sqlite_db)] == ["start", "done"]  # never run twice
    await sqlite_db.close()


async def test_a_worker_killed_mid_job_loses_nothing(
    tmp_path: Path, queues: QueueFactory
) -> None:
    jobs_db = SQLiteReadModels(tmp_path / "jobs.db")
    effects_db = SQLiteReadModels(tmp_path / "effects.db")
    await effects_db.run(effects_metadata.create_all)
    queue = queues(ack_wait=1.0)
    forwarder = JobForwarder(jobs_db, queue)
    await forwarder.setup()
    ids = await jobs_db.run(lambda c: [jobs.enqueue(c, "work", {"n": n}) for n in range(24)])
    assert await forwarder.run_once() == 24
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.messaging.job_worker", str(jobs_db.path),
        str(effects_db.path), queue.stream, "1.0", cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"

        async def all_slots_hang() -> bool:  # jobs from n=12 on never finish in the victim
            found = await rows(effects_db)
            return len({r[0] for r in found if r[3] == "start"}
                       - {r[0] for r in found if r[3] == "done"}) == 4
        await until(all_slots_hang, 30)
        proc.send_signal(signal.SIGKILL)  # mid-job: its 4 slots hold started, unfinished jobs
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    before = await rows(effects_db)
    unfinished = ({r[0] for r in before if r[3] == "start"}
                  - {r[0] for r in before if r[3] == "done"})
    assert unfinished  # the kill hit jobs in flight
    heir = QueuedJobWorker(jobs_db, queues(ack_wait=1.0),
                           {"work": Effects(effects_db, label="heir").handle})
    await heir.setup()
    stop, tasks = await run_workers(heir)
    try:
        async def all_done() -> bool:
            return {r[0] for r in await rows(effects_db) if r[3] == "done"} >= set(ids)
        await until(all_done, 30)
        await asyncio.sleep(1.5)  # past the ack wait: anything redelivered shows up now
    finally:
        await stop_all(stop, tasks)
    after = await rows(effects_db)
    done = [r[0] for r in after if r[3] == "done"]
    assert sorted(set(done)) == sorted(ids)  # every job ran to the end
    for job_id in {j for j in done if done.count(j) > 1}:  # at least once: a kill between
        labels = [r[2] for r in after if r[0] == job_id and r[3] == "done"]  # effect and ack
        assert len(labels) == 2 and labels[1] == "heir", labels
    redone = {r[0]: r[1] for r in after if r[2] == "heir" and r[3] == "done"}
    assert set(redone) >= unfinished
    assert all(redone[j] == 2 for j in unfinished)  # the lost delivery counted as attempt 1
    assert await jobs_db.run(jobs.dead_jobs, write=False) == []
    await jobs_db.close()
    await effects_db.close()


async def test_nothing_is_lost_when_connections_drop(
    sqlite_db: SQLiteReadModels, queues: QueueFactory
) -> None:
    forwarder_queue, worker_queue = queues(), queues(ack_wait=1.0)
    forwarder = JobForwarder(sqlite_db, forwarder_queue, batch_size=10)
    await forwarder.setup()
    effects = Effects(sqlite_db, label="w", seconds=0.01)
    worker = QueuedJobWorker(sqlite_db, worker_queue, {"work": effects.handle},
                             concurrency=5)
    await worker.setup()
    ids = await sqlite_db.run(lambda c: [jobs.enqueue(c, "work", {"n": n})
                                         for n in range(100)])
    stop = asyncio.Event()
    tasks = [asyncio.create_task(forwarder.run(stop=stop, idle=0.02, retry=0.1)),
             asyncio.create_task(worker.run(stop=stop, poll=0.2, retry=0.1))]
    try:
        async def some_done() -> bool:
            return sum(1 for r in await rows(sqlite_db) if r[3] == "done") >= 20
        await until(some_done, 30)
        forwarder_queue.drop_connection()
        worker_queue.drop_connection()

        async def all_done() -> bool:
            return {r[0] for r in await rows(sqlite_db) if r[3] == "done"} >= set(ids)
        await until(all_done, 40)
    finally:
        await stop_all(stop, tasks)
    assert {r[0] for r in await rows(sqlite_db) if r[3] == "done"} == set(ids)
    assert await sqlite_db.run(lambda c: c.execute(select(jobs.jobs)).all(),
                               write=False) == []
    await sqlite_db.close()


async def test_a_message_that_is_not_a_job_is_kept_dead_and_the_worker_goes_on(
    db: ReadModelDatabase, queues: QueueFactory
) -> None:
    """Bytes another program put on the work queue's subject are neither run nor lost: they
    become a dead job of their own, with the bytes, that an operator reads and discards."""
    queue = queues(ack_wait=0.5)
    await queue.connect()
    await queue._jetstream().publish(queue.subject, b"not json", stream=queue.stream)
    forwarder = JobForwarder(db, queues())
    await forwarder.setup()
    effects = Effects(db, label="w")
    worker = QueuedJobWorker(db, queue, {"work": effects.handle})
    await worker.setup()
    real = await db.run(lambda c: jobs.enqueue(c, "work", {}))
    await forwarder.run_once()
    delivered = 0
    while got := await worker.run_once(timeout=1.0):
        delivered += got
    assert delivered == 2
    assert {job_id for job_id, *_ in await rows(db)} == {real}
    [dead] = await db.run(jobs.dead_jobs, write=False)
    assert dead.name == UNREADABLE_JOB and dead.id != real
    assert base64.b64decode(dead.payload["body"]) == b"not json"
    assert dead.last_error is not None
    assert dead.last_error.startswith("the work queue delivered a body that is not a job (")
    assert worker.outcomes[BURIED] == 1
    await asyncio.sleep(0.7)  # past the ack wait: acknowledged, not redelivered
    assert await worker.run_once(timeout=0.5) == 0
    assert len(await db.run(jobs.dead_jobs, write=False)) == 1
    await db.run(lambda c: discard_dead_job(c, dead.id))
    assert await db.run(jobs.dead_jobs, write=False) == []


async def test_attempts_are_counted_in_the_database_never_below_the_servers_count(
    db: ReadModelDatabase
) -> None:
    """The attempt number must not go back when JetStream under-reports a redelivery."""
    from invariant.messaging.jobs.nats import _attempts_metadata, _count_attempt

    await db.run(_attempts_metadata.create_all)
    counts = [await db.run(lambda c, d=d: _count_attempt(c, 7, d)) for d in (1, 2, 1, 1, 9)]
    assert counts == [1, 2, 3, 4, 9]
    assert await db.run(lambda c: _count_attempt(c, 8, 1)) == 1  # per job
