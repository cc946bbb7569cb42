"""Background jobs: queued in the caller's transaction (:func:`enqueue`), run by workers with
retries, delays and a dead state. ``invariant.messaging.jobs.nats`` holds the distributed
mode on a NATS JetStream work queue (imported on its own: it loads nats-py).
"""

from invariant.messaging.jobs.table import (
    DEAD,
    PENDING,
    Job,
    JobHandler,
    claim_due,
    create,
    dead_jobs,
    discard_dead,
    enqueue,
    job_from_row,
    jobs,
    retry_dead,
)
from invariant.messaging.jobs.worker import JobWorker

__all__ = [
    "DEAD",
    "PENDING",
    "Job",
    "JobHandler",
    "JobWorker",
    "claim_due",
    "create",
    "dead_jobs",
    "discard_dead",
    "enqueue",
    "job_from_row",
    "jobs",
    "retry_dead",
]
