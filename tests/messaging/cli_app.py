"""What the command-line tests load by name: job handlers and consumers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from invariant.messaging.consumer import Consumer
from invariant.messaging.jobs import Job, JobHandler
from invariant.sql.database import ReadModelDatabase
from tests.messaging.helpers import effects_metadata, record_effect


async def touch(job: Job) -> None:
    """Append the job's line to the job's file."""
    def append() -> None:
        with Path(job.payload["file"]).open("a") as out:
            out.write(f"{job.payload['line']} attempt={job.attempt}\n")
    await asyncio.to_thread(append)


HANDLERS: dict[str, JobHandler] = {"touch": touch}


def handlers() -> dict[str, JobHandler]:
    return dict(HANDLERS)


class EffectsConsumer(Consumer):
    async def setup(self) -> None:
        await super().setup()
        await self.database.run(effects_metadata.create_all)


def consumers(database: ReadModelDatabase) -> list[Consumer]:
    return [EffectsConsumer("effects", database, record_effect),
            EffectsConsumer("audit", database, lambda conn, m: None)]


