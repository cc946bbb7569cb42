"""The command line takes the broker and the job queue from the settings, and the consumers
and job handlers from the application (``INVARIANT_APP``): ``invariant relay run``,
``invariant consumers run``, ``invariant jobs work|forward|dead|retry`` (processes against
the real servers; errors in process)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Connection, select, update
from typer.testing import CliRunner

from invariant.cli import app
from invariant.messaging import jobs
from invariant.messaging.brokers.nats import NatsBroker
from invariant.messaging.brokers.redis_streams import RedisStreamsBroker
from invariant.messaging.jobs.nats import NatsJobQueue
from invariant.sql.database import SQLiteReadModels
from invariant.store import SQLiteStorage
from invariant.testing.broker_contract import drain, message
from tests.messaging.conftest import NATS_URL, REDIS_URL, require_port
from tests.messaging.helpers import commit_events, count_effects

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from invariant.cli import app; app()"]
APP = "tests.messaging.cli_app:app"


def existing_db(tmp_path: Path) -> str:
    """An application's (empty) SQLite database: operator commands create none."""
    path = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")  # writes the file's header
    return str(path)


def clean_env(**settings: str) -> dict[str, str]:
    """The process environment without INVARIANT_* settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVARIANT_")
           or k.startswith("INVARIANT_TEST_")}
    return {**env, "PYTHONPATH": str(ROOT), **settings}


def invoke(args: list[str], env: Mapping[str, str]) -> tuple[int, str]:
    keys = [k for k in os.environ if k.startswith("INVARIANT_")
            and not k.startswith("INVARIANT_TEST_")]
    result = CliRunner().invoke(app, args, env={**dict.fromkeys(keys), **env})
    return result.exit_code, result.output


async def run_cli(*args: str, env: Mapping[str, str], seconds: float = 60) -> str:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, cwd=ROOT, env=dict(env), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    return out.decode()


# -- errors say what to set ------------------------------------------------------------------

def test_relay_run_without_a_broker_says_what_to_set(tmp_path: Path) -> None:
    code, out = invoke(["relay", "run", "--seconds", "0.1"],
                       {"INVARIANT_SQLITE_PATH": existing_db(tmp_path)})
    assert code == 2
    assert "no broker to relay to: set INVARIANT_BROKER" in out


def test_relay_run_refuses_the_in_process_broker(tmp_path: Path) -> None:
    code, out = invoke(["relay", "run", "--seconds", "0.1"],
                       {"INVARIANT_SQLITE_PATH": existing_db(tmp_path),
                        "INVARIANT_BROKER": "inprocess"})
    assert code == 2
    assert "a relay process needs a server" in out


def test_a_bad_broker_setting_is_reported_in_one_line(tmp_path: Path) -> None:
    code, out = invoke(["relay", "run"], {"INVARIANT_BROKER": "nats"})
    assert code == 2
    assert out.strip() == ("error: INVARIANT_BROKER=nats needs INVARIANT_BROKER_URL, e.g. "
                           "nats://127.0.0.1:4222")


def test_consumers_run_needs_a_server_broker(tmp_path: Path) -> None:
    code, out = invoke(["consumers", "run", "--seconds", "0.1"],
                       {"INVARIANT_SQLITE_PATH": existing_db(tmp_path), "INVARIANT_APP": APP})
    assert code == 2
    assert "a consumer process needs a broker outside the application: set INVARIANT_BROKER" in out


def test_jobs_forward_needs_a_job_queue(tmp_path: Path) -> None:
    code, out = invoke(["jobs", "forward", "--seconds", "0.1"],
                       {"INVARIANT_SQLITE_PATH": existing_db(tmp_path)})
    assert code == 2
    assert "set INVARIANT_JOBS=nats (and INVARIANT_JOBS_URL)" in out


def test_jobs_work_names_a_bad_application(tmp_path: Path) -> None:
    env = {"INVARIANT_SQLITE_PATH": existing_db(tmp_path)}
    code, out = invoke(["jobs", "work"],
                       {**env, "INVARIANT_APP": "tests.messaging.cli_app:nothing"})
    assert code == 2
    assert out.strip() == ("error: INVARIANT_APP 'tests.messaging.cli_app:nothing': module "
                           "'tests.messaging.cli_app' has no attribute 'nothing'")
    code, out = invoke(["--app", "tests.messaging.cli_app:not_an_app", "jobs", "work"], env)
    assert code == 2
    assert out.strip() == ("error: --app tests.messaging.cli_app:not_an_app is a dict, not an "
                           "application: it needs settings() and parts(storage, database) "
                           "methods (see invariant.operable)")
    code, out = invoke(["jobs", "work"], env)
    assert code == 2
    assert out.strip().startswith("error: the job handlers come from the application: set "
                                  "INVARIANT_APP=package.module:attribute (or pass --app)")


def test_jobs_dead_and_retry(tmp_path: Path) -> None:
    db_path = tmp_path / "app.db"

    async def prepare() -> int:
        db = SQLiteReadModels(db_path)
        await db.run(jobs.create)

        def bury(conn: Connection) -> int:
            job_id = jobs.enqueue(conn, "touch", {"line": "x"})
            conn.execute(update(jobs.jobs).values(state=jobs.DEAD, attempts=5,
                                                  last_error="ConnectionError: down"))
            return job_id
        job_id = await db.run(bury)
        await db.close()
        return job_id

    job_id = asyncio.run(prepare())
    env = {"INVARIANT_SQLITE_PATH": str(db_path)}
    code, out = invoke(["jobs", "dead"], env)
    assert code == 0, out
    assert f"{job_id}\ttouch\t5/5\t" in out and "\tConnectionError: down\n" in out
    assert "1 dead job(s)" in out
    code, out = invoke(["jobs", "retry", str(job_id)], env)
    assert (code, out.strip()) == (0, f"job {job_id} is due again")
    code, out = invoke(["jobs", "retry", str(job_id)], env)
    assert code == 2 and f"no dead job {job_id}" in out
    code, out = invoke(["jobs", "dead"], env)
    assert "0 dead job(s)" in out


def test_jobs_discard_forgets_a_dead_job_and_only_a_dead_one(tmp_path: Path) -> None:
    db_path = tmp_path / "app.db"

    async def prepare() -> tuple[int, int]:
        db = SQLiteReadModels(db_path)
        await db.run(jobs.create)

        def two(conn: Connection) -> tuple[int, int]:
            dead = jobs.enqueue(conn, "touch", {"line": "x"})
            conn.execute(update(jobs.jobs).where(jobs.jobs.c.id == dead).values(
                state=jobs.DEAD, attempts=5, last_error="ValueError: never"))
            return dead, jobs.enqueue(conn, "touch", {"line": "y"})
        ids = await db.run(two)
        await db.close()
        return ids

    dead, pending = asyncio.run(prepare())
    env = {"INVARIANT_SQLITE_PATH": str(db_path)}
    code, out = invoke(["jobs", "discard", str(pending)], env)
    assert code == 2 and f"no dead job {pending}: see `invariant jobs dead`" in out
    code, out = invoke(["jobs", "discard", str(dead)], env)
    assert (code, out.strip()) == (0, f"dead job {dead} (touch) discarded; it never runs")
    code, out = invoke(["jobs", "dead"], env)
    assert "0 dead job(s)" in out

    async def left() -> list[int]:
        db = SQLiteReadModels(db_path)
        try:
            return await db.run(lambda c: [r.id for r in c.execute(select(jobs.jobs))],
                                write=False)
        finally:
            await db.close()
    assert asyncio.run(left()) == [pending]  # the pending job is untouched


# -- processes on the real servers -------------------------------------------------------------

async def test_relay_run_takes_the_broker_from_the_settings(tmp_path: Path) -> None:
    require_port("NATS", 4222)
    storage = SQLiteStorage(tmp_path / "app.db")
    await storage.setup()
    total = await commit_events(storage, streams=3, per_stream=10)
    await storage.close()
    channel = f"t{uuid.uuid4().hex[:10]}"
    consumer = NatsBroker(NATS_URL, stream=channel.upper())
    await consumer.connect()
    try:
        await consumer.declare("g")
        out = await run_cli("relay", "run", "--seconds", "2", env=clean_env(
            INVARIANT_SQLITE_PATH=str(tmp_path / "app.db"), INVARIANT_BROKER="nats",
            INVARIANT_BROKER_URL=NATS_URL, INVARIANT_BROKER_CHANNEL=channel))
        got = await drain(consumer, "g", total, seconds=10)
    finally:
        await consumer._jetstream().delete_stream(channel.upper())
        await consumer.close()
    assert out.strip() == f"published {total} message(s)"
    assert len({d.message.message_id for d in got}) == total


async def test_consumers_run_on_the_broker_from_the_settings(tmp_path: Path) -> None:
    require_port("Redis", 6379)
    channel = f"t{uuid.uuid4().hex[:10]}"
    publisher = RedisStreamsBroker(REDIS_URL, stream=f"{channel}:messages")
    await publisher.connect()
    try:
        for group in ("effects", "audit"):
            await publisher.declare(group)
        batch = [message(n) for n in range(20)]
        await publisher.publish(batch)
        await publisher.publish(batch[:5])  # republished: dropped
        out = await run_cli(
            "consumers", "run", "--seconds", "3", env=clean_env(
                INVARIANT_SQLITE_PATH=existing_db(tmp_path), INVARIANT_APP=APP,
                INVARIANT_BROKER="redis",
                INVARIANT_BROKER_URL=REDIS_URL, INVARIANT_BROKER_CHANNEL=channel))
    finally:
        client = publisher._client()
        keys = [k async for k in client.scan_iter(f"{channel}:*")]
        if keys:
            await client.delete(*keys)
        await publisher.close()
    assert out.splitlines() == ["audit: handled 20 message(s)",
                                "effects: handled 20 message(s)"]
    db = SQLiteReadModels(tmp_path / "app.db")
    assert await db.run(count_effects, write=False) == (20, 20)
    await db.close()


async def test_jobs_work_runs_jobs_from_the_database(tmp_path: Path) -> None:
    db = SQLiteReadModels(tmp_path / "app.db")
    await db.run(jobs.create)
    lines = tmp_path / "lines.txt"
    await db.run(lambda c: [jobs.enqueue(c, "touch", {"file": str(lines), "line": n})
                            for n in range(5)])
    await db.close()
    out = await run_cli("jobs", "work", "--seconds", "2", env=clean_env(
        INVARIANT_SQLITE_PATH=str(tmp_path / "app.db"), INVARIANT_APP=APP))
    assert out.strip() == "worker stopped (database)"
    assert sorted(lines.read_text().splitlines()) == [f"{n} attempt=1" for n in range(5)]


async def test_jobs_forward_and_work_on_the_nats_job_queue(tmp_path: Path) -> None:
    require_port("NATS", 4222)
    channel = f"t{uuid.uuid4().hex[:10]}"
    db = SQLiteReadModels(tmp_path / "app.db")
    await db.run(jobs.create)
    lines = tmp_path / "lines.txt"
    await db.run(lambda c: [jobs.enqueue(c, "touch", {"file": str(lines), "line": n})
                            for n in range(10)])
    await db.close()
    env = clean_env(INVARIANT_SQLITE_PATH=str(tmp_path / "app.db"), INVARIANT_JOBS="nats",
                    INVARIANT_JOBS_URL=NATS_URL, INVARIANT_BROKER_CHANNEL=channel)
    try:
        forwarded, worked = await asyncio.gather(
            run_cli("jobs", "forward", "--seconds", "2", env=env),
            run_cli("--app", APP, "jobs", "work", "--seconds", "4", env=env))
    finally:
        queue = NatsJobQueue(NATS_URL, stream=f"{channel.upper()}_JOBS")
        await queue.connect()
        await queue.delete()
        await queue.close()
    assert forwarded.strip() == "forwarded 10 job(s)"
    assert "'done': 10" in worked
    assert sorted(lines.read_text().splitlines()) == [f"{n} attempt=1" for n in range(10)]
