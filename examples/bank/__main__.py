"""``python -m examples.bank``: run the seed's bank scenarios and say what happened.

Uses the store the ``INVARIANT_*`` settings choose; by default a fresh SQLite file.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from examples.bank.scenarios import SCENARIOS
from invariant import Settings, open_storage
from invariant.domain.errors import InvariantError


def say(line: str) -> None:
    print(f"    {line}")


async def main() -> int:
    env = dict(os.environ)
    if "INVARIANT_SQLITE_PATH" not in env:
        env["INVARIANT_SQLITE_PATH"] = str(Path(tempfile.mkdtemp(prefix="invariant-")) / "bank.db")
    settings = Settings.from_env(env)
    where = {
        "sqlite": f"SQLite file {settings.sqlite_path} (WAL, synchronous=FULL)",
        "postgres": f"PostgreSQL schema {settings.postgres_schema!r}",
        "memory": "process memory",
    }[settings.store]
    print(f"invariant bank example: event store in {where}")
    storage = open_storage(settings)
    await storage.setup()
    try:
        for title, scenario in SCENARIOS.items():
            started = time.perf_counter()
            print(f"\n  {title}")
            await scenario(storage, say)
            say(f"({(time.perf_counter() - started) * 1000:.0f} ms)")
    finally:
        await storage.close()
    print("\nAll scenarios ran.")
    if settings.store == "sqlite":
        print(f"Look at the stored events: sqlite3 {settings.sqlite_path} "
              "'select position, stream_id, version, event_type, data from invariant_events'")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except InvariantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
