"""The application the command-line tests operate (``INVARIANT_APP=tests.messaging.cli_app:app``):
job handlers and consumers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from invariant.config import Settings
from invariant.messaging.consumer import Consumer
from invariant.messaging.jobs import Job, JobHandler
from invariant.operable import Parts
from invariant.sql.database import ReadModelDatabase
from invariant.store.port import EventStorage
from tests.messaging.helpers import effects_metadata, record_effect


async def touch(job: Job) -> None:
    """Append the job's line to the job's file."""
    def append() -> None:
        with Path(job.payload["file"]).open("a") as out:
            out.write(f"{job.payload['line']} attempt={job.attempt}\n")
    await asyncio.to_thread(append)


HANDLERS: dict[str, JobHandler] = {"touch": touch}


class EffectsConsumer(Consumer):
    async def setup(self) -> None:
        await super().setup()
        await self.database.run(effects_metadata.create_all)


def consumers(database: ReadModelDatabase) -> list[Consumer]:
    return [EffectsConsumer("effects", database, record_effect),
            EffectsConsumer("audit", database, lambda conn, m: None)]


class CliApp:
    """Settings from the environment; two consumers and one job handler."""

    def settings(self) -> Settings:
        return Settings.from_env()

    def parts(self, storage: EventStorage, database: ReadModelDatabase) -> Parts:
        return Parts(consumers=consumers(database), jobs=HANDLERS)


app = CliApp()
not_an_app = HANDLERS
