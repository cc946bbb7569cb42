"""``invariant jobs``: run background-job workers, forward jobs to the job queue, list and
retry dead jobs.

The database is the store's (``INVARIANT_*`` settings, see :mod:`invariant.config`); where
jobs wait for workers is ``INVARIANT_JOBS``: ``database`` (``work`` polls
``invariant_jobs``) or ``nats`` (``forward`` moves due jobs onto the JetStream work queue of
``INVARIANT_JOBS_URL``, ``work`` consumes it). ``work`` needs the handlers:
``--handlers package.module:attribute``, a mapping of job names to ``async (Job) -> None``
functions, or a function without arguments returning one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from invariant.bootstrap import open_job_queue, open_read_models
from invariant.cli.running import guarded, import_attribute, stop_event
from invariant.config import Settings
from invariant.domain.errors import ConfigurationError
from invariant.messaging import jobs
from invariant.messaging.jobs import JobHandler
from invariant.sql.database import ReadModelDatabase
from invariant.sql.locks import create_tables

T = TypeVar("T")
app = typer.Typer(help="Background jobs: workers, the forwarder, dead jobs.",
                  no_args_is_help=True)

SecondsOption = Annotated[float | None, typer.Option(help="stop after this long")]


async def _setup(database: ReadModelDatabase) -> None:
    await database.run(lambda conn: create_tables(conn, database, jobs.create))


def load_handlers(spec: str) -> dict[str, JobHandler]:
    """The job handlers ``package.module:attribute`` names (a mapping, or a function
    returning one)."""
    found = import_attribute(spec, "--handlers", "attribute")
    if callable(found) and not isinstance(found, Mapping):
        found = found()
    if not isinstance(found, Mapping):
        raise ConfigurationError(
            f"--handlers {spec!r} is a {type(found).__name__}, not a mapping of job names to "
            "handlers (or a function returning one)")
    return dict(found)


@app.command()
def work(
    handlers: Annotated[str, typer.Option(
        help="package.module:attribute: job name -> async handler (or a function giving it)")],
    concurrency: Annotated[int, typer.Option(help="jobs at a time (job queue)")] = 10,
    seconds: SecondsOption = None,
) -> None:
    """Run jobs until SIGINT/SIGTERM (or ``--seconds``), from where INVARIANT_JOBS says."""
    async def main() -> str:
        settings = Settings.from_env()
        found = load_handlers(handlers)
        database = open_read_models(settings)
        queue = open_job_queue(settings)
        stop = stop_event(seconds)
        try:
            if queue is None:
                from invariant.messaging.jobs import JobWorker

                worker = JobWorker(database, found)
                await worker.setup()
                await worker.run(stop=stop)
                return "database"
            from invariant.messaging.jobs.nats import QueuedJobWorker

            queued = QueuedJobWorker(database, queue, found, concurrency=concurrency)
            await queued.setup()
            await queued.run(stop=stop)
            return f"job queue: {queued.outcomes}"
        finally:
            if queue is not None:
                await queue.close()
            await database.close()

    typer.echo(f"worker stopped ({guarded(main)})")


@app.command()
def forward(
    batch_size: Annotated[int, typer.Option(help="jobs per batch")] = 100,
    lease: Annotated[float, typer.Option(help="seconds a claim lasts")] = 30.0,
    seconds: SecondsOption = None,
) -> None:
    """Move due jobs onto the job queue (INVARIANT_JOBS=nats) until SIGINT/SIGTERM."""
    async def main() -> int:
        settings = Settings.from_env()
        queue = open_job_queue(settings)
        if queue is None:
            raise ConfigurationError(
                "INVARIANT_JOBS=database: jobs wait in the database and `invariant jobs work` "
                "runs them; set INVARIANT_JOBS=nats (and INVARIANT_JOBS_URL) to forward them "
                "to a job queue")
        from invariant.messaging.jobs.nats import JobForwarder

        database = open_read_models(settings)
        forwarder = JobForwarder(database, queue, batch_size=batch_size, lease=lease)
        stop = stop_event(seconds)
        try:
            await forwarder.setup()
            await forwarder.run(stop=stop)
            return forwarder.forwarded
        finally:
            with contextlib.suppress(Exception):
                await queue.close()
            await database.close()

    typer.echo(f"forwarded {guarded(main)} job(s)")


@app.command()
def dead() -> None:
    """Jobs that exhausted their attempts, with their last error."""
    async def main() -> list[jobs.Job]:
        database = open_read_models(Settings.from_env())
        try:
            await _setup(database)
            return await database.run(jobs.dead_jobs, write=False)
        finally:
            await database.close()

    found = guarded(main)
    table = Table("id", "name", "attempts", "due", "payload", "error")
    for job in found:
        table.add_row(str(job.id), job.name, f"{job.attempt}/{job.max_attempts}",
                      job.run_at.isoformat(), str(job.payload), job.last_error or "")
    Console(width=200).print(table)
    typer.echo(f"{len(found)} dead job(s)")


@app.command()
def retry(job_id: Annotated[int, typer.Argument(help="the dead job's id (see dead)")]) -> None:
    """Give a dead job a fresh set of attempts, due now."""
    async def main() -> None:
        database = open_read_models(Settings.from_env())
        try:
            await _setup(database)

            def work(conn: Any) -> None:
                if not any(j.id == job_id for j in jobs.dead_jobs(conn)):
                    raise ConfigurationError(f"no dead job {job_id}: see `invariant jobs dead`")
                jobs.retry_dead(conn, job_id)
            await database.run(work)
        finally:
            await database.close()

    guarded(main)
    typer.echo(f"job {job_id} is due again")
