"""The contract every way of running background jobs keeps, whatever carries the jobs from
``invariant_jobs`` to the handlers: the database-polling :class:`JobWorker`, or a
:class:`JobForwarder` feeding :class:`QueuedJobWorker`\\ s through NATS JetStream.

Reuse it for your own job queue: wrap it in a :class:`JobRunner` and provide two fixtures::

    class TestMyQueue(JobQueueContract):
        @pytest.fixture
        def jobs_database(self, tmp_path):
            return SQLiteReadModels(tmp_path / "jobs.db")  # the suite closes it

        @pytest.fixture
        def job_runner_factory(self):
            return lambda database, handlers, retry: MyRunner(database, handlers, retry)

Jobs are enqueued with :func:`invariant.messaging.jobs.enqueue` in the suite's own
transactions, exactly as an application does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

import pytest
from sqlalchemy import Connection, func, select

from invariant.clock import utc_now
from invariant.messaging import jobs
from invariant.messaging.jobs import Job, JobHandler
from invariant.retry import RetryPolicy
from invariant.sql.database import ReadModelDatabase

RETRY = RetryPolicy(attempts=3, first_delay=0.05, max_delay=0.2)
"""The retry policy the suite's runners are made with."""
WAIT = 30.0
"""How long the suite waits for something to happen before it fails."""


class JobRunner(Protocol):
    """One way of running jobs, as the suite drives it."""

    async def setup(self) -> None:
        """Create what it needs and connect."""

    async def run(self, *, stop: asyncio.Event) -> None:
        """Run jobs until ``stop`` is set."""

    async def close(self) -> None:
        """Release its connections."""


JobRunnerFactory = Callable[[ReadModelDatabase, Mapping[str, JobHandler], RetryPolicy],
                            JobRunner]


class Boom(Exception):
    """What the suite's failing transactions raise."""


class Recorder:
    """A job handler that records every run, failing the first ``failures`` of them."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.runs: list[tuple[int, dict[str, Any], int, datetime]] = []
        """``(job id, payload, attempt, when)`` of every run, failed ones too."""

    async def __call__(self, job: Job) -> None:
        """Record the run; fail if failures are left."""
        self.runs.append((job.id, job.payload, job.attempt, utc_now()))
        if self.failures:
            self.failures -= 1
            raise ConnectionError("provider unavailable")

    def payloads(self) -> list[dict[str, Any]]:
        """The payload of every run, in order."""
        return [payload for _, payload, _, _ in self.runs]


def _left(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(jobs.jobs)).scalar_one())


async def _until(predicate: Callable[[], Awaitable[object] | bool]) -> None:
    """Wait until ``predicate`` (or what it awaits) is true."""
    async with asyncio.timeout(WAIT):
        while True:
            done = predicate()
            if done if isinstance(done, bool) else await done:
                return
            await asyncio.sleep(0.02)


class JobQueueContract:
    """Subclass in a test module and provide ``jobs_database`` and ``job_runner_factory``."""

    @pytest.fixture
    def jobs_database(self) -> ReadModelDatabase:
        raise NotImplementedError("provide a jobs_database fixture: a ReadModelDatabase")

    @pytest.fixture
    def job_runner_factory(self) -> JobRunnerFactory:
        raise NotImplementedError("provide a job_runner_factory fixture")

    @pytest.fixture
    async def database(self, jobs_database: ReadModelDatabase
                       ) -> AsyncIterator[ReadModelDatabase]:
        await jobs_database.run(jobs.create)
        yield jobs_database
        await jobs_database.close()

    @pytest.fixture
    def running(self, database: ReadModelDatabase, job_runner_factory: JobRunnerFactory
                ) -> Callable[[Mapping[str, JobHandler]], contextlib.AbstractAsyncContextManager[
                    None]]:
        """Runs a runner with these handlers for the length of an ``async with``."""

        @contextlib.asynccontextmanager
        async def run(handlers: Mapping[str, JobHandler]) -> AsyncIterator[None]:
            runner = job_runner_factory(database, handlers, RETRY)
            await runner.setup()
            stop = asyncio.Event()
            task = asyncio.create_task(runner.run(stop=stop))
            try:
                yield
            finally:
                stop.set()
                await task
                await runner.close()

        return run

    async def test_jobs_enqueued_in_a_committed_transaction_run_once_each(
        self, database: ReadModelDatabase, running: Any
    ) -> None:
        payloads = [{"n": n, "to": f"u{n}@example.com", "tags": ["a", {"b": None}]}
                    for n in range(5)]
        ids = await database.run(lambda conn: [jobs.enqueue(conn, "record", p)
                                               for p in payloads])
        recorder = Recorder()
        async with running({"record": recorder}):
            await _until(lambda: len(recorder.runs) >= 5)
            await _until(lambda: database.run(lambda c: _left(c) == 0, write=False))
        assert sorted(run[0] for run in recorder.runs) == sorted(ids)
        assert sorted(recorder.payloads(), key=lambda p: p["n"]) == payloads
        assert {run[2] for run in recorder.runs} == {1}
        assert await database.run(jobs.dead_jobs, write=False) == []

    async def test_a_job_of_a_rolled_back_transaction_never_runs(
        self, database: ReadModelDatabase, running: Any
    ) -> None:
        def enqueue_then_fail(conn: Connection) -> None:
            jobs.enqueue(conn, "record", {"n": "lost"})
            raise Boom("the caller's transaction failed")

        with pytest.raises(Boom):
            await database.run(enqueue_then_fail)
        await database.run(lambda conn: jobs.enqueue(conn, "record", {"n": "kept"}))
        recorder = Recorder()
        async with running({"record": recorder}):
            await _until(lambda: len(recorder.runs) >= 1)
            await _until(lambda: database.run(lambda c: _left(c) == 0, write=False))
        assert recorder.payloads() == [{"n": "kept"}]

    async def test_a_failing_job_is_retried_until_it_succeeds(
        self, database: ReadModelDatabase, running: Any
    ) -> None:
        job_id = await database.run(lambda conn: jobs.enqueue(conn, "record", {"n": 1}))
        recorder = Recorder(failures=2)
        async with running({"record": recorder}):
            await _until(lambda: len(recorder.runs) >= 3)
            await _until(lambda: database.run(lambda c: _left(c) == 0, write=False))
        assert [(run[0], run[2]) for run in recorder.runs] == [(job_id, 1), (job_id, 2),
                                                              (job_id, 3)]
        times = [run[3] for run in recorder.runs]
        waits = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert all(wait >= timedelta(seconds=RETRY.delay(n))
                   for n, wait in enumerate(waits, 1))
        assert await database.run(jobs.dead_jobs, write=False) == []

    async def test_a_job_that_keeps_failing_ends_dead_and_can_be_retried(
        self, database: ReadModelDatabase, running: Any
    ) -> None:
        job_id = await database.run(lambda conn: jobs.enqueue(conn, "record", {"n": 1}))
        recorder = Recorder(failures=10)
        async with running({"record": recorder}):
            await _until(lambda: database.run(jobs.dead_jobs, write=False))
            (dead,) = await database.run(jobs.dead_jobs, write=False)
            assert (dead.id, dead.attempt, dead.payload, dead.state) == (
                job_id, RETRY.attempts, {"n": 1}, jobs.DEAD)
            assert dead.last_error == "ConnectionError: provider unavailable"
            assert len(recorder.runs) == RETRY.attempts

            recorder.failures = 0
            await database.run(lambda conn: jobs.retry_dead(conn, job_id))
            await _until(lambda: len(recorder.runs) > RETRY.attempts)
            await _until(lambda: database.run(lambda c: _left(c) == 0, write=False))
        assert recorder.runs[-1][:3] == (job_id, {"n": 1}, 1)  # a fresh set of attempts

    async def test_a_job_nobody_handles_ends_dead_saying_so(
        self, database: ReadModelDatabase, running: Any
    ) -> None:
        await database.run(lambda conn: jobs.enqueue(conn, "nobody", {}))
        async with running({"record": Recorder()}):
            await _until(lambda: database.run(jobs.dead_jobs, write=False))
        (dead,) = await database.run(jobs.dead_jobs, write=False)
        assert dead.name == "nobody"
        assert "no handler for job 'nobody'" in (dead.last_error or "")

    async def test_a_delayed_job_never_runs_before_it_is_due(
        self, database: ReadModelDatabase, running: Any
    ) -> None:
        enqueued = utc_now()
        await database.run(lambda conn: (
            jobs.enqueue(conn, "record", {"n": "later"}, delay=0.5, now=enqueued),
            jobs.enqueue(conn, "record", {"n": "now"}, now=enqueued)))
        recorder = Recorder()
        async with running({"record": recorder}):
            await _until(lambda: len(recorder.runs) >= 2)
        runs = {payload["n"]: when for _, payload, _, when in recorder.runs}
        assert runs["later"] >= enqueued + timedelta(seconds=0.5)
        assert runs["now"] < runs["later"]
