"""Run by the crash tests as a separate process: append forever, report each durable ack."""

from __future__ import annotations

import asyncio
import sys
import uuid

from invariant.store import AppendRequest, Commit, NewEvent, SQLiteStorage, StreamState
from invariant.store.port import EventStorage
from invariant.store.postgres import PostgresStorage


async def main(kind: str, target: str, writers: int) -> None:
    storage: EventStorage = (
        SQLiteStorage(target) if kind == "sqlite" else PostgresStorage(
            sys.argv[4], schema=target, max_connections=writers
        )
    )
    await storage.setup()

    async def write(w: int) -> None:
        n = 0
        while True:
            n += 1
            # Three events per commit: a torn commit would show as a version not % 3.
            events = [NewEvent(uuid.uuid4(), "Tick", 1, {"w": w, "n": n, "k": k})
                      for k in range(3)]
            result = await storage.commit(
                Commit(appends=(AppendRequest(f"w{w}-1", StreamState.ANY, events),))
            )
            print(f"ack {w} {n} {result.version_of(f'w{w}-1')}", flush=True)

    await asyncio.gather(*[write(w) for w in range(writers)])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
