"""Operating background jobs: what waits, what died, retrying or discarding a dead one."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from invariant.domain.errors import NotFoundError
from invariant.messaging import jobs
from invariant.messaging.jobs.table import PENDING, job_from_row
from invariant.messaging.jobs.table import jobs as jobs_table


def pending_jobs(conn: Connection, *, limit: int = 100) -> tuple[int, list[jobs.Job]]:
    """How many jobs wait, and the first ``limit`` of them (first due first)."""
    t = jobs_table
    count = conn.execute(select(func.count()).select_from(t).where(t.c.state == PENDING))
    rows = conn.execute(select(t).where(t.c.state == PENDING)
                        .order_by(t.c.run_at, t.c.id).limit(limit))
    return int(count.scalar_one()), [job_from_row(r) for r in rows]


def _dead_job(conn: Connection, job_id: int) -> jobs.Job:
    """Dead job ``job_id``, or :class:`NotFoundError` saying where to look."""
    t = jobs_table
    row = conn.execute(select(t).where(t.c.id == job_id, t.c.state == jobs.DEAD)).first()
    if row is None:
        raise NotFoundError(f"no dead job {job_id}: see `invariant jobs dead`")
    return job_from_row(row)


def retry_dead_job(conn: Connection, job_id: int) -> None:
    """Give dead job ``job_id`` a fresh set of attempts, due now; :class:`NotFoundError`
    when there is no such dead job."""
    _dead_job(conn, job_id)
    jobs.retry_dead(conn, job_id)


def discard_dead_job(conn: Connection, job_id: int) -> jobs.Job:
    """Forget dead job ``job_id`` without running it (a job no retry can help); the job
    that was discarded, or :class:`NotFoundError` when there is no such dead job."""
    found = _dead_job(conn, job_id)
    jobs.discard_dead(conn, job_id)
    return found
