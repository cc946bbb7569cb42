"""A queued-job worker process for the crash test (killed with SIGKILL mid-job).

python -m tests.messaging.job_worker JOBS_DB EFFECTS_DB STREAM ACK_WAIT
"""

from __future__ import annotations

import asyncio
import os
import sys

from invariant.messaging.jobs.nats import NatsJobQueue, QueuedJobWorker
from invariant.sql.database import SQLiteReadModels
from tests.messaging.conftest import NATS_URL
from tests.messaging.test_job_queue import Effects


async def main(jobs_path: str, effects_path: str, stream: str, ack_wait: str) -> None:
    jobs_db, effects_db = SQLiteReadModels(jobs_path), SQLiteReadModels(effects_path)
    effects = Effects(effects_db, label=f"pid-{os.getpid()}", seconds=0.2, hang_from=12)
    queue = NatsJobQueue(NATS_URL, stream=stream, ack_wait=float(ack_wait))
    worker = QueuedJobWorker(jobs_db, queue, {"work": effects.handle}, concurrency=4)
    await worker.setup()
    print("ready", flush=True)
    await worker.run(stop=asyncio.Event(), poll=0.2)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
