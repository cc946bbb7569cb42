"""Shared helpers: committing events, an effects table counted by the tests."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from pathlib import Path

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, func, select, text

from invariant.messaging.consumer import Consumer
from invariant.messaging.port import Broker, Delivery, Message
from invariant.messaging.relay import OutboxRelay
from invariant.sql.database import ReadModelDatabase
from invariant.store.port import EventStorage
from invariant.store.records import AppendRequest, Commit, NewEvent, StreamState

effects_metadata = MetaData()
effects = Table(
    "test_effects", effects_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False),  # not unique: duplicates would count
    Column("stream_id", String(100), nullable=False),
    Column("position", Integer),
)


def record_effect(conn: Connection, message: Message) -> None:
    """The handler under test: one row per application."""
    conn.execute(effects.insert().values(message_id=message.message_id,
                                         stream_id=message.stream_id,
                                         position=message.position))


def slow_effect(conn: Connection, message: Message) -> None:
    """:func:`record_effect`, slowly: a consumer killed mid-batch holds unfinished work."""
    record_effect(conn, message)
    time.sleep(0.003)


def count_effects(conn: Connection) -> tuple[int, int]:
    """(rows, distinct message ids)."""
    row = conn.execute(select(func.count(), func.count(effects.c.message_id.distinct()))).one()
    return int(row[0]), int(row[1])


async def commit_events(storage: EventStorage, streams: int, per_stream: int,
                        per_commit: int = 5) -> int:
    """Append ``per_stream`` events to each of ``streams`` streams; the total."""
    for s in range(streams):
        for start in range(0, per_stream, per_commit):
            events = tuple(NewEvent(uuid.uuid4(), "Happened", 1, {"n": start + i}, {})
                           for i in range(min(per_commit, per_stream - start)))
            await storage.commit(Commit(appends=(
                AppendRequest(f"acc-{s}", StreamState.ANY, events),)))
    return streams * per_stream


ROOT = Path(__file__).resolve().parents[2]


async def spawn(module: str, *args: str) -> asyncio.subprocess.Process:
    """``python -m module args`` from the repository root, its stdout piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})


async def run_worker(mode: str, db: ReadModelDatabase, broker: Broker) -> None:
    """The body of a crash test's worker process, until it is killed: ``relay`` relays
    ``db``'s outbox to ``broker`` in small batches; ``consume`` applies the messages
    slowly (:func:`slow_effect`), after printing ``ready``."""
    stop = asyncio.Event()
    if mode == "relay":
        await OutboxRelay(db, broker, batch_size=20, lease=1.0).run(stop=stop, idle=0.02)
    else:
        await db.run(effects_metadata.create_all)
        consumer = Consumer("effects", db, slow_effect)
        await consumer.setup()
        print("ready", flush=True)
        await consumer.consume(broker, stop=stop, batch=50, poll=0.2)


class Crashes:
    """The crash tests' worker processes (``python -m module``), killed with SIGKILL
    mid-batch; :meth:`close` kills any still running."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.procs: list[asyncio.subprocess.Process] = []

    async def kill_relay_mid_stream(self, relay: OutboxRelay, total: int, *args: str) -> int:
        """A relay process dies mid-stream, some rows published, the rest not: how many
        are left (more than none)."""
        proc = await self._spawn("relay", *args)
        await wait_until(lambda: pending_below(relay, total - 60), 30)
        await _kill(proc)
        pending = (await relay.lag()).pending
        assert pending > 0
        return pending

    async def kill_consumer_mid_batch(self, effects: ReadModelDatabase, total: int,
                                      *args: str) -> None:
        """A consumer process dies mid-batch, some effects applied (not all)."""
        proc = await self._spawn("consume", *args)
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
        await wait_until(lambda: effects_at_least(effects, 40), 30)
        await _kill(proc)
        applied, _ = await effects.run(count_effects, write=False)
        assert 0 < applied < total

    async def close(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    async def _spawn(self, *args: str) -> asyncio.subprocess.Process:
        self.procs.append(await spawn(self.module, *args))
        return self.procs[-1]


async def _kill(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def recover(relay: OutboxRelay, broker: Broker, effects: ReadModelDatabase, total: int,
                  *, settle: float) -> None:
    """Restarted in this process, a relay (taking over the dead one's claims) and a consumer
    deliver everything: each effect applied once, nothing left in the outbox, one inbox row
    per message; ``settle`` seconds are left for a late redelivery to add an effect."""
    stop = asyncio.Event()
    consumer = Consumer("effects", effects, record_effect)
    await consumer.setup()
    tasks = [asyncio.create_task(relay.run(stop=stop, idle=0.02)),
             asyncio.create_task(consumer.consume(broker, stop=stop, batch=100, poll=0.2))]
    try:
        await wait_until(lambda: effects_at_least(effects, total), 45)
        await asyncio.sleep(settle)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    rows, distinct = await effects.run(count_effects, write=False)
    print(f"restarted consumer: {consumer.outcomes}")  # duplicates the inbox dropped
    assert (rows, distinct) == (total, total)
    assert (await relay.lag()).pending == 0
    inbox_rows = await effects.run(
        lambda c: c.execute(text("SELECT count(*) FROM invariant_inbox")).scalar_one(),
        write=False)
    assert inbox_rows == total


async def wait_until(predicate: Callable[[], Awaitable[bool]], seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while not await predicate():  # noqa: ASYNC110 (polls a db)
            await asyncio.sleep(0.02)


async def pending_below(relay: OutboxRelay, n: int) -> bool:
    return (await relay.lag()).pending < n


async def effects_at_least(db: ReadModelDatabase, n: int) -> bool:
    try:
        rows, _ = await db.run(count_effects, write=False)
    except Exception:  # the table is not there yet
        return False
    return rows >= n


class CountingBroker:
    """Wraps a broker, counting how often each message id was handed to publish."""

    def __init__(self, inner: Broker, *, delay: float = 0.0) -> None:
        self.inner = inner
        self.delay = delay
        self.name = inner.name
        self.published: dict[str, int] = {}

    async def connect(self) -> None:
        await self.inner.connect()

    async def close(self) -> None:
        await self.inner.close()

    async def declare(self, group: str, *, types: Collection[str] | None = None) -> None:
        await self.inner.declare(group, types=types)

    async def publish(self, batch: Sequence[Message]) -> None:
        for m in batch:
            self.published[m.message_id] = self.published.get(m.message_id, 0) + 1
        await asyncio.sleep(self.delay)  # a broker round trip, so that relays overlap
        await self.inner.publish(batch)

    async def fetch(self, group: str, *, max_messages: int, timeout: float  # noqa: ASYNC109
                    ) -> list[Delivery]:
        return await self.inner.fetch(group, max_messages=max_messages, timeout=timeout)
