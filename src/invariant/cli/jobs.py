"""``invariant jobs``: run background-job workers, forward jobs to the job queue, list and
retry dead jobs.

The jobs live in the application's database; where they wait for workers is its
``INVARIANT_JOBS``: ``database`` (``work`` polls ``invariant_jobs``) or ``nats``
(``forward`` moves due jobs onto the JetStream work queue of ``INVARIANT_JOBS_URL``,
``work`` consumes it). ``work`` runs the application's job handlers (``--app`` or
``INVARIANT_APP``).
"""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from invariant.bootstrap import open_job_queue
from invariant.cli.output import print_table
from invariant.cli.running import stop_event
from invariant.cli.target import Session, in_session
from invariant.domain.errors import ConfigurationError
from invariant.messaging import jobs
from invariant.operations.jobs import discard_dead_job, retry_dead_job
from invariant.sql.database import ReadModelDatabase
from invariant.sql.locks import create_tables

app = typer.Typer(help="Background jobs: workers, the forwarder, dead jobs.",
                  no_args_is_help=True)

SecondsOption = Annotated[float | None, typer.Option(help="stop after this long")]


async def _setup(database: ReadModelDatabase) -> None:
    await database.run(lambda conn: create_tables(conn, database, jobs.create))


@app.command()
def work(
    ctx: typer.Context,
    concurrency: Annotated[int, typer.Option(help="jobs at a time (job queue)")] = 10,
    seconds: SecondsOption = None,
) -> None:
    """Run jobs until SIGINT/SIGTERM (or ``--seconds``), from where INVARIANT_JOBS says."""
    async def main(session: Session) -> str:
        found = (await session.parts("the job handlers")).jobs
        if not found:
            raise ConfigurationError(f"{session.target.named} has no job handlers")
        queue = open_job_queue(session.target.settings)
        stop = stop_event(seconds)
        try:
            if queue is None:
                from invariant.messaging.jobs import JobWorker

                worker = JobWorker(session.database, found)
                await worker.setup()
                await worker.run(stop=stop)
                return "database"
            from invariant.messaging.jobs.nats import QueuedJobWorker

            queued = QueuedJobWorker(session.database, queue, found, concurrency=concurrency)
            await queued.setup()
            await queued.run(stop=stop)
            return f"job queue: {queued.outcomes}"
        finally:
            if queue is not None:
                await queue.close()

    typer.echo(f"worker stopped ({in_session(ctx, main)})")


@app.command()
def forward(
    ctx: typer.Context,
    batch_size: Annotated[int, typer.Option(help="jobs per batch")] = 100,
    lease: Annotated[float, typer.Option(help="seconds a claim lasts")] = 30.0,
    seconds: SecondsOption = None,
) -> None:
    """Move due jobs onto the job queue (INVARIANT_JOBS=nats) until SIGINT/SIGTERM."""
    async def main(session: Session) -> int:
        queue = open_job_queue(session.target.settings)
        if queue is None:
            raise ConfigurationError(
                "INVARIANT_JOBS=database: jobs wait in the database and `invariant jobs work` "
                "runs them; set INVARIANT_JOBS=nats (and INVARIANT_JOBS_URL) to forward them "
                "to a job queue")
        from invariant.messaging.jobs.nats import JobForwarder

        forwarder = JobForwarder(session.database, queue, batch_size=batch_size, lease=lease)
        stop = stop_event(seconds)
        try:
            await forwarder.setup()
            await forwarder.run(stop=stop)
            return forwarder.forwarded
        finally:
            with contextlib.suppress(Exception):
                await queue.close()

    typer.echo(f"forwarded {in_session(ctx, main)} job(s)")


@app.command()
def dead(ctx: typer.Context) -> None:
    """Jobs that exhausted their attempts, with their last error."""
    async def main(session: Session) -> list[jobs.Job]:
        await _setup(session.database)
        return await session.database.run(jobs.dead_jobs, write=False)

    found = in_session(ctx, main)
    print_table(("id", "name", "attempts", "due", "payload", "error"),
                [[str(job.id), job.name, f"{job.attempt}/{job.max_attempts}",
                  job.run_at.isoformat(), str(job.payload), job.last_error or ""]
                 for job in found], keys=2)
    typer.echo(f"{len(found)} dead job(s)", err=True)


@app.command()
def retry(ctx: typer.Context,
          job_id: Annotated[int, typer.Argument(help="the dead job's id (see dead)")]) -> None:
    """Give a dead job a fresh set of attempts, due now."""
    async def main(session: Session) -> None:
        await _setup(session.database)

        await session.database.run(lambda conn: retry_dead_job(conn, job_id))

    in_session(ctx, main)
    typer.echo(f"job {job_id} is due again")


@app.command()
def discard(ctx: typer.Context,
            job_id: Annotated[int, typer.Argument(help="the dead job's id (see dead)")]
            ) -> None:
    """Forget a dead job without running it (one no retry can help)."""
    async def main(session: Session) -> str:
        await _setup(session.database)
        job = await session.database.run(lambda conn: discard_dead_job(conn, job_id))
        return job.name

    name = in_session(ctx, main)
    typer.echo(f"dead job {job_id} ({name}) discarded; it never runs")
