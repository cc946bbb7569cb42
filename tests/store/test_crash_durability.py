"""Kill -9 a writing process: every acknowledged commit survives, no commit is torn."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from invariant.store import SQLiteStorage
from invariant.store.port import EventStorage
from invariant.store.postgres import PostgresStorage
from tests.conftest import POSTGRES_DSN

ROOT = Path(__file__).resolve().parents[2]


def run_and_kill(args: list[str], seconds: float) -> list[tuple[int, int, int]]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_writer", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    acks = [tuple(int(x) for x in line.split()[1:]) for line in out.splitlines()
            if line.startswith("ack ")]
    assert acks, f"the writer acknowledged nothing; stderr:\n{err}"
    return acks  # type: ignore[return-value]


async def check_survivors(storage: EventStorage, acks: list[tuple[int, int, int]],
                          writers: int) -> None:
    for w in range(writers):
        events = await storage.read_stream(f"w{w}-1")
        versions = [e.stream_version for e in events]
        assert versions == list(range(1, len(versions) + 1))
        assert len(versions) % 3 == 0, "a commit was torn"
        acked = [v for (aw, _, v) in acks if aw == w]
        if acked:
            assert len(versions) >= max(acked), "an acknowledged commit was lost"
        ns = [e.data["n"] for e in events[::3]]
        assert ns == list(range(1, len(ns) + 1))


@pytest.mark.slow
def test_sqlite_survives_a_killed_writer(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    acks = run_and_kill(["sqlite", str(db), "8"], seconds=2.5)

    async def verify() -> None:
        storage = SQLiteStorage(db)
        await storage.setup()
        await check_survivors(storage, acks, 8)
        await storage.close()

    asyncio.run(verify())


@pytest.mark.slow
@pytest.mark.postgres
async def test_postgres_survives_a_killed_writer(pg_schema: str) -> None:
    acks = await asyncio.get_running_loop().run_in_executor(
        None, run_and_kill, ["postgres", pg_schema, "8", POSTGRES_DSN], 3.0
    )
    storage = PostgresStorage(POSTGRES_DSN, schema=pg_schema)
    await storage.setup()
    await check_survivors(storage, acks, 8)
    await storage.close()
