"""Background jobs on a NATS JetStream work queue: the distributed mode of
:mod:`invariant.messaging.jobs` (``INVARIANT_JOBS=nats``).

How a job travels::

    enqueue(conn, ...)   a row in invariant_jobs, in the caller's transaction (unchanged:
                         the job exists only if the caller's transaction commits)
    JobForwarder         claims due rows (the same serialized, leased claim as JobWorker's),
                         publishes them to the work-queue stream, waits for JetStream's
                         acknowledgement of each, then deletes the rows
    QueuedJobWorker      any number of them, sharing one durable pull consumer: runs a job;
                         success: ack (the work queue drops the message); failure: nak with
                         the backoff's delay (JetStream redelivers it then, to any worker);
                         last attempt failed: the job is written back to invariant_jobs as
                         dead (``dead_jobs``/``retry_dead`` work as before), then acked

Why this design and not a job library. The hand-off has to be transactional: a job is
queued in the same transaction as the effect that asks for it (the consumer's inbox
transaction, "queue the email"). Job libraries (saq, arq, taskiq, ...) enqueue straight to
their server, outside that transaction, so they would need this same table as an outbox in
front of them anyway; and each brings a retry, schedule and dead-letter model of its own
beside ours. JetStream, a maintained server whose client (nats-py) the broker adapter already
pins, has the queue semantics natively: work-queue retention (a message leaves once acked),
one durable consumer shared by any number of workers, an ack deadline (a worker that dies
mid-job or loses its connection has its job redelivered), per-message delayed redelivery
(``nak(delay)``: the exponential backoff), in-progress heartbeats (long jobs keep their
lease) and de-duplication by ``Nats-Msg-Id``. Redis Streams lack the delayed redelivery (a
scheduler of our own would be needed), RabbitMQ needs a delayed-exchange plugin or per-delay
queues, Kafka has neither per-message acknowledgement nor delay.

Delayed jobs wait in the table (durably) until due: the forwarder moves only due jobs, so a
job's delay is exact to the forwarder's polling interval. Nothing is lost: rows are deleted
only after JetStream confirmed them (file storage, the server's default); a forwarder that
dies after publishing and before deleting leaves its claim to expire, and the rows are
published again with the same ``Nats-Msg-Id`` (``job-<id>-<run_at>``), dropped by JetStream
within its duplicate window. Jobs are at least once: a worker that dies after the job's
effects and before its ack, a lost ack, or a republish after the duplicate window runs a job
again. Make effects idempotent with the job id (``Job.id``, never reused).

``Job.attempt`` counts deliveries (a delivery to a worker that died counts as an attempt). The
count is kept in the database (``invariant_job_attempts``, one row per job in flight, bumped
in a transaction of its own before each run, and never below JetStream's delivery count):
JetStream's count alone is not enough, as under load the server was seen to report a
redelivered message as delivered once. A job
delivered again after its last attempt (its worker died each time: a "poison" job) is
written back as dead without running. ``Job.last_error`` is only known on the dead row: a
redelivered job does not carry the previous attempt's error.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    Table,
    func,
    update,
)

from invariant.clock import from_micros, to_micros, utc_now
from invariant.extras import needs_extra
from invariant.messaging.brokers.nats import ERRORS, abort_socket, connect_jetstream
from invariant.messaging.errors import BrokerError
from invariant.messaging.jobs.table import (
    DEAD,
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
from invariant.messaging.port import UNREADABLE
from invariant.retry import RetryPolicy
from invariant.sql.database import ReadModelDatabase, dialect_insert
from invariant.sql.handover import hand_over
from invariant.sql.locks import create_tables, serialize
from invariant.tasks import poll, sleep_or_stop, stop_task
from invariant.telemetry.jobs import ran

with needs_extra("nats"):
    import nats
    import nats.errors
    import nats.js.errors
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy

DONE, RETRIED, BURIED = "done", "retried", "dead"

_attempts_metadata = MetaData()
attempts = Table(
    "invariant_job_attempts", _attempts_metadata,
    Column("job_id", BigInteger, primary_key=True, autoincrement=False),
    Column("attempts", Integer, nullable=False),
)

"""How many times each job in flight was handed to a worker."""


def _count_attempt(conn: Connection, job_id: int, delivered: int) -> int:
    """One more attempt of ``job_id``, and at least ``delivered`` (the server's count, which
    also sees deliveries to workers that died before counting): the new count."""
    statement = dialect_insert(conn.dialect.name, attempts).values(
        job_id=job_id, attempts=max(1, delivered))
    bigger = func.greatest if conn.dialect.name == "postgresql" else func.max
    statement = statement.on_conflict_do_update(
        index_elements=["job_id"],
        set_={"attempts": bigger(attempts.c.attempts + 1, statement.excluded.attempts)})
    return int(conn.execute(statement.returning(attempts.c.attempts)).scalar_one())


async def _create_tables(database: ReadModelDatabase) -> None:
    await database.run(lambda conn: create_tables(conn, database, create,
                                                  _attempts_metadata.create_all))


def _forget_attempts(conn: Connection, job_id: int) -> None:
    conn.execute(attempts.delete().where(attempts.c.job_id == job_id))


def _encode(job: Job, created_at: int, attempts: int) -> bytes:
    return orjson.dumps({
        "id": job.id, "name": job.name, "payload": job.payload, "attempts": attempts,
        "max_attempts": job.max_attempts, "run_at": to_micros(job.run_at),
        "created_at": created_at, "last_error": job.last_error})


UNREADABLE_JOB = UNREADABLE
"""The name a dead job gets when the work queue delivered a body that is not a job this
module wrote (bytes another program published on its subject): its payload holds the bytes
(base64, ``body``) and why they could not be read (``error``), for an operator to read and
discard (``invariant jobs discard``, or the console)."""


class QueuedJob:
    """A job delivered by the queue; ``job.attempt`` counts this delivery. ``unreadable``:
    the body was not a job (see :data:`UNREADABLE_JOB`)."""

    def __init__(self, msg: Msg) -> None:
        self._msg = msg
        self.deliveries: int = msg.metadata.num_delivered
        self.unreadable = False
        try:
            body = orjson.loads(msg.data)
            self.created_at: int = int(body["created_at"])
            self.previous_attempts: int = int(body["attempts"])
            self.job = Job(int(body["id"]), str(body["name"]), dict(body["payload"]),
                           self.previous_attempts + self.deliveries, int(body["max_attempts"]),
                           from_micros(int(body["run_at"])), body.get("last_error"), PENDING)
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
            self.unreadable = True
            now = utc_now()
            self.created_at = to_micros(now)
            self.previous_attempts = 0
            error = (f"the work queue delivered a body that is not a job ({type(exc).__name__}: "
                     f"{exc}); its bytes are under payload.body, base64")
            self.job = Job(0, UNREADABLE_JOB, {
                "body": base64.b64encode(msg.data).decode("ascii"), "error": error,
                "sequence": msg.metadata.sequence.stream}, 1, 1, now, error, DEAD)

    async def ack(self) -> None:
        """Done: the work queue drops the job (confirmed by the server)."""
        try:
            await self._msg.ack_sync(timeout=5)
        except ERRORS as exc:
            raise BrokerError(f"NATS ack failed (the job will run again): {exc}") from exc

    async def retry(self, delay: float) -> None:
        """Not done: deliver the job again in ``delay`` seconds."""
        try:
            await self._msg.nak(delay=max(delay, 0.001))
        except ERRORS as exc:
            raise BrokerError(f"NATS nak failed (redelivered after the ack wait): {exc}"
                              ) from exc

    async def touch(self) -> None:
        """Still working on it: restart the ack deadline."""
        with contextlib.suppress(*ERRORS):
            await self._msg.in_progress()


class NatsJobQueue:
    """A JetStream work-queue stream ``stream`` on ``url``, one durable pull consumer
    ``consumer`` shared by every worker; an unacknowledged job is redelivered after
    ``ack_wait`` seconds."""

    name = "nats"

    def __init__(self, url: str = "nats://127.0.0.1:4222", *, stream: str = "INVARIANT_JOBS",
                 consumer: str = "workers", ack_wait: float = 30.0,
                 duplicate_window: float = 120.0, request_timeout: float = 10.0) -> None:
        self.url = url
        self.stream = stream
        self.subject = f"{stream.lower()}.run"
        self.consumer = consumer
        self.ack_wait = ack_wait
        self.duplicate_window = duplicate_window
        self.request_timeout = request_timeout
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._sub: Any = None

    async def connect(self) -> None:
        """Connect (reconnecting forever) and create the stream if missing."""
        if self._nc is not None:
            return
        try:
            self._nc, self._js = await connect_jetstream(self.url, self.request_timeout)
            await self._js.add_stream(name=self.stream, subjects=[self.subject],
                                      retention=RetentionPolicy.WORK_QUEUE,
                                      duplicate_window=self.duplicate_window)
        except ERRORS as exc:
            await self.close()
            raise BrokerError(f"cannot connect the job queue to NATS at {self.url}: {exc}"
                              ) from exc

    async def close(self) -> None:
        """Close the connection."""
        nc, self._nc, self._js, self._sub = self._nc, None, None, None
        if nc is not None:
            with contextlib.suppress(*ERRORS):
                await nc.close()

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise BrokerError("NatsJobQueue is not connected: call connect() first")
        return self._js

    async def publish(self, batch: Sequence[tuple[Job, int]]) -> None:
        """Publish ``(job, created_at)`` pairs, each confirmed by the stream (which drops a
        job id and due time it has seen within its duplicate window)."""
        js = self._jetstream()
        for job, created_at in batch:
            try:
                await js.publish(self.subject, _encode(job, created_at, job.attempt),
                                 stream=self.stream, headers={
                                     "Nats-Msg-Id": f"job-{job.id}-{to_micros(job.run_at)}"})
            except ERRORS as exc:
                raise BrokerError(f"NATS publish of job {job.id} failed: {exc}") from exc

    async def fetch(self, max_jobs: int, timeout: float  # noqa: ASYNC109
                    ) -> list[QueuedJob]:
        """Up to ``max_jobs`` jobs, waiting at most ``timeout`` seconds for the first."""
        if self._sub is None:
            config = ConsumerConfig(durable_name=self.consumer, ack_policy=AckPolicy.EXPLICIT,
                                    deliver_policy=DeliverPolicy.ALL, ack_wait=self.ack_wait,
                                    max_deliver=-1, max_ack_pending=-1)
            js = self._jetstream()
            try:
                self._sub = await js.pull_subscribe(
                    self.subject, durable=self.consumer, stream=self.stream, config=config)
                info = await js.consumer_info(self.stream, self.consumer)
            except ERRORS as exc:
                raise BrokerError(f"cannot create the NATS job consumer: {exc}") from exc
            if info.config.ack_wait:  # an existing consumer keeps its own: heartbeat to it
                self.ack_wait = float(info.config.ack_wait)
        try:
            msgs = await self._sub.fetch(max_jobs, timeout=max(timeout, 0.01))
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        except ERRORS as exc:
            raise BrokerError(f"NATS fetch of jobs failed: {exc}") from exc
        return [QueuedJob(m) for m in msgs]

    async def delete(self) -> None:
        """Delete the stream and its consumer (tests, teardown)."""
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self._jetstream().delete_stream(self.stream)

    def drop_connection(self) -> None:
        """Abort the client's socket (tests: the client must reconnect, losing nothing)."""
        abort_socket(self._nc)


class JobForwarder:
    """Moves due jobs of ``database`` onto ``queue``; run one or more (claims keep each job
    with one forwarder at a time)."""

    def __init__(self, database: ReadModelDatabase, queue: NatsJobQueue, *,
                 batch_size: int = 100, lease: float = 30.0,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.database = database
        self.queue = queue
        self.batch_size = batch_size
        self.lease = lease
        self.clock = clock
        self.forwarded = 0
        self.failures = 0
        self.last_error: str | None = None

    async def setup(self) -> None:
        """Create the jobs table and connect the queue."""
        await _create_tables(self.database)
        await self.queue.connect()

    async def run_once(self) -> int:
        """Forward one batch of due jobs; how many."""
        now = to_micros(self.clock())
        until = now + int(self.lease * 1_000_000)

        def release(conn: Connection, batch: Sequence[tuple[Job, int]]) -> None:
            conn.execute(update(jobs).where(jobs.c.id.in_([job.id for job, _ in batch]),
                                            jobs.c.claimed_until == until
                                            ).values(claimed_until=None))

        async def settle(batch: Sequence[tuple[Job, int]]) -> None:
            await self.database.execute(jobs.delete().where(
                jobs.c.id.in_([job.id for job, _ in batch]), jobs.c.state == PENDING))

        forwarded = await hand_over(self.database, lambda conn: self._claim(conn, now),
                                    self.queue.publish, release=release, settle=settle)
        self.forwarded += forwarded
        return forwarded

    async def run(self, *, stop: asyncio.Event, idle: float = 0.2, retry: float = 0.5
                  ) -> None:
        """Forward until ``stop`` is set: at once when a job is enqueued in this process,
        else polling every ``idle`` seconds (delayed jobs, jobs of other processes),
        ``retry`` seconds after a failure (``failures`` and ``last_error`` show it)."""
        # any error: a broker or database outage, try again
        await poll(self, self.run_once, stop=stop, idle=idle, retry=retry, errors=(Exception,),
                   wake=ENQUEUED)

    def _claim(self, conn: Connection, now: int) -> list[tuple[Job, int]]:
        serialize(conn, self.database, "messaging:jobs")  # the key JobWorker claims under
        return [(job_from_row(r), int(r.created_at))
                for r in claim_due(conn, now, self.batch_size, self.lease)]


class QueuedJobWorker:
    """Runs jobs from ``queue`` with ``handlers`` (by job name), up to ``concurrency`` at a
    time; dead jobs go back to ``database``'s ``invariant_jobs``."""

    def __init__(self, database: ReadModelDatabase, queue: NatsJobQueue,
                 handlers: Mapping[str, JobHandler], *, backoff: RetryPolicy | None = None,
                 concurrency: int = 10, clock: Callable[[], datetime] = utc_now) -> None:
        self.database = database
        self.queue = queue
        self.handlers = dict(handlers)
        self.backoff = backoff or RetryPolicy(attempts=5, first_delay=1.0, max_delay=3600.0)
        self.concurrency = concurrency
        self.clock = clock
        self.outcomes: dict[str, int] = {DONE: 0, RETRIED: 0, BURIED: 0}
        """How many attempts succeeded, were retried later, ended dead (metrics)."""

    async def setup(self) -> None:
        """Create the jobs table (dead jobs go there) and connect the queue."""
        await _create_tables(self.database)
        await self.queue.connect()

    async def run_once(self, timeout: float = 0.5) -> int:  # noqa: ASYNC109
        """Run the jobs the queue hands out within ``timeout`` seconds (up to
        ``concurrency``, concurrently); how many ran."""
        delivered = await self.queue.fetch(self.concurrency, timeout)
        await asyncio.gather(*(self._run(d) for d in delivered))
        return len(delivered)

    async def run(self, *, stop: asyncio.Event, poll: float = 0.5, retry: float = 0.5
                  ) -> None:
        """Run jobs until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.run_once(poll)
            except BrokerError:
                await sleep_or_stop(stop, retry)  # the client reconnects

    def _limit(self, job: Job) -> int:
        return min(job.max_attempts, self.backoff.attempts)

    async def _run(self, delivered: QueuedJob) -> None:
        if delivered.unreadable:  # kept as a dead job for an operator, never run
            await self._bury(delivered, delivered.job.last_error or "not a job")
            return
        try:
            counted = await self.database.run(
                lambda conn: _count_attempt(conn, delivered.job.id, delivered.deliveries))
        except Exception:
            with contextlib.suppress(BrokerError):  # not counted, not run: deliver it again
                await delivered.retry(self.backoff.delay(1))
            return
        delivered.job = job = replace(delivered.job,
                                      attempt=delivered.previous_attempts + counted)
        if job.attempt > self._limit(job):
            await self._bury(delivered, f"the worker running attempt {job.attempt - 1} was "
                             "lost (it died or lost its connection) and no attempt is left")
            return
        try:
            handler = handler_of(job.name, self.handlers)
            heartbeat = asyncio.create_task(self._heartbeat(delivered))
            try:
                await ran(job, handler(job))
            finally:
                await stop_task(heartbeat)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if job.attempt >= self._limit(job):
                await self._bury(delivered, error)
            else:
                self.outcomes[RETRIED] += 1
                with contextlib.suppress(BrokerError):  # else redelivered after the ack wait
                    await delivered.retry(self.backoff.delay(job.attempt))
            return
        self.outcomes[DONE] += 1
        with contextlib.suppress(BrokerError):  # unacknowledged: it runs again (at least once)
            await delivered.ack()
        with contextlib.suppress(Exception):  # a leftover count only misnumbers a rerun
            await self.database.run(lambda conn: _forget_attempts(conn, job.id))

    async def _heartbeat(self, delivered: QueuedJob) -> None:
        while True:
            await asyncio.sleep(max(self.queue.ack_wait / 3, 0.05))
            await delivered.touch()

    async def _bury(self, delivered: QueuedJob, error: str) -> None:
        job = delivered.job

        def bury(conn: Connection) -> None:
            values: dict[str, Any] = {}  # a foreign body has no job id: a row of its own
            if not delivered.unreadable:
                values["id"] = job.id
                _forget_attempts(conn, job.id)
                conn.execute(jobs.delete().where(jobs.c.id == job.id))
            conn.execute(jobs.insert().values(
                **values, name=job.name, payload=orjson.dumps(job.payload).decode(),
                state=DEAD, run_at=to_micros(job.run_at), claimed_until=None,
                attempts=job.attempt, max_attempts=job.max_attempts, last_error=error,
                created_at=delivered.created_at))
        try:
            await self.database.run(bury)
        except Exception:
            # not recorded: leave the message to be delivered again after the ack wait
            return
        self.outcomes[BURIED] += 1
        with contextlib.suppress(BrokerError):  # redelivered: buried again, harmlessly
            await delivered.ack()

