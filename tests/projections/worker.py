"""Run by the crash and lease tests as a separate process: a projection worker.

``python -m tests.projections.worker sqlite|postgres DB_PATH|SCHEMA catch_up|run PAGE DELAY``
"""

from __future__ import annotations

import asyncio
import sys

from examples.bank.wiring import bank_store
from invariant.projections import ProjectionRunner, ReadModelDatabase
from invariant.store.port import EventStorage
from invariant.store.postgres import PostgresStorage
from invariant.store.sqlite import SQLiteStorage
from tests.conftest import POSTGRES_DSN
from tests.projections.ledger import Ledger


async def main(kind: str, target: str, mode: str, page: int, delay: float) -> None:
    storage: EventStorage
    if kind == "sqlite":
        storage = SQLiteStorage(target)
        database = ReadModelDatabase.for_url(f"sqlite:///{target}")
    else:
        storage = PostgresStorage(POSTGRES_DSN, schema=target)
        database = ReadModelDatabase.for_url(POSTGRES_DSN, schema=target)
    runner = ProjectionRunner(bank_store(storage), database, [Ledger(delay=delay, report=True)],
                              page_size=page, lease_retry=0.1)
    await runner.setup()
    print("ready", flush=True)
    if mode == "run":
        await runner.run()
    else:
        await runner.catch_up()
        print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]),
                     float(sys.argv[5])))
