"""R1: the outbox relay and end-to-end delivery, per broker.

``python -m benchmarks.r1 [--json PATH] [--events 20000] [--latency-events 1000]
[--brokers inprocess,nats,rabbitmq,redis]``

* ``R1`` (messages/s): ``--events`` events are committed to a SQLite event store first
  (5 per commit, 100 streams); then one relay publishes them all (batches of 500) and marks
  them published. Timed from the first claim to the last mark.
* ``R1-p50`` / ``R1-p99`` (ms): with the relay and a consumer running, events are committed
  one at a time (about 500 per second); latency runs from the commit's return to the end of
  the consumer's effect transaction (inbox row + effect committed) for that event.

Every run checks itself: all events published, every effect applied once. Records are
shaped like ``benchmarks/results/latest.json`` (``backend`` names the broker, ``system`` is
``invariant``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, func, select

from invariant.messaging.consumer import HANDLED, Consumer
from invariant.messaging.port import Broker, Message
from invariant.messaging.relay import OutboxRelay
from invariant.sql.database import SQLiteReadModels
from invariant.store import SQLiteStorage
from invariant.store.records import AppendRequest, Commit, NewEvent, StreamState

BROKERS = ("inprocess", "nats", "rabbitmq", "redis")

effects_metadata = MetaData()
effects = Table("bench_effects", effects_metadata,
                Column("id", Integer, primary_key=True, autoincrement=True),
                Column("message_id", String(64), nullable=False))


def make_broker(name: str, channel: str) -> Broker:
    """A broker on a channel of its own."""
    if name == "inprocess":
        from invariant.messaging.brokers.inprocess import InProcessBroker
        return InProcessBroker()
    if name == "nats":
        from invariant.messaging.brokers.nats import NatsBroker
        return NatsBroker(os.environ.get("INVARIANT_BENCH_NATS_URL", "nats://127.0.0.1:4222"),
                          stream=channel.upper())
    if name == "rabbitmq":
        from invariant.messaging.brokers.rabbitmq import RabbitMQBroker
        return RabbitMQBroker(os.environ.get("INVARIANT_BENCH_RABBITMQ_URL",
                                             "amqp://guest:guest@127.0.0.1:5672/"),
                              exchange=channel)
    from invariant.messaging.brokers.redis_streams import RedisStreamsBroker
    return RedisStreamsBroker(os.environ.get("INVARIANT_BENCH_REDIS_URL",
                                             "redis://127.0.0.1:6379/0"),
                              stream=f"{channel}:messages")


async def cleanup(name: str, broker: Broker, channel: str) -> None:
    """Remove the channel from the server."""
    with contextlib.suppress(Exception):
        if name == "nats":
            await broker._jetstream().delete_stream(channel.upper())  # type: ignore[attr-defined]
        elif name == "rabbitmq":
            channel_ = broker._channel  # type: ignore[attr-defined]
            await channel_.queue_delete(f"{channel}.bench")
            await channel_.exchange_delete(channel)
        elif name == "redis":
            client = broker._client()  # type: ignore[attr-defined]
            await client.delete(f"{channel}:messages")
            keys = [k async for k in client.scan_iter(f"{channel}:messages:seen:*")]
            for i in range(0, len(keys), 1000):
                await client.delete(*keys[i:i + 1000])


def event(n: int) -> NewEvent:
    return NewEvent(uuid.uuid4(), "Deposited", 1, {"n": n, "amount": "10.00"}, {})


async def throughput(name: str, events: int, workdir: Path) -> float:
    """R1: messages/s of one relay moving a full outbox."""
    storage = SQLiteStorage(workdir / f"r1-{name}.db")
    await storage.setup()
    for start in range(0, events, 5):
        stream = f"acc-{(start // 5) % 100}"
        await storage.commit(Commit(appends=(AppendRequest(
            stream, StreamState.ANY, tuple(event(start + i) for i in range(5))),)))
    channel = f"r1{uuid.uuid4().hex[:8]}"
    broker = make_broker(name, channel)
    await broker.connect()
    db = SQLiteReadModels(workdir / f"r1-{name}.db")
    relay = OutboxRelay(db, broker, batch_size=500)
    await relay.setup()
    try:
        started = time.perf_counter()
        while await relay.run_once():
            pass
        elapsed = time.perf_counter() - started
        assert relay.published == events, (relay.published, events)
        assert (await relay.lag()).pending == 0
    finally:
        await cleanup(name, broker, channel)
        await broker.close()
        await db.close()
        await storage.close()
    return events / elapsed


async def latency(name: str, events: int, workdir: Path) -> list[float]:
    """Milliseconds from commit to the consumer's committed effect, per event."""
    storage = SQLiteStorage(workdir / f"r1-lat-{name}.db")
    await storage.setup()
    db = SQLiteReadModels(workdir / f"r1-lat-{name}.db")
    await db.run(effects_metadata.create_all)
    channel = f"r1{uuid.uuid4().hex[:8]}"
    broker = make_broker(name, channel)
    await broker.connect()
    await broker.declare("bench")
    relay = OutboxRelay(db, broker, batch_size=500)
    await relay.setup()

    def apply(conn: Connection, message: Message) -> None:
        conn.execute(effects.insert().values(message_id=message.message_id))

    consumer = Consumer("bench", db, apply)
    await consumer.setup()
    committed: dict[str, float] = {}
    latencies: list[float] = []
    stop = asyncio.Event()

    async def consume() -> None:
        while not stop.is_set():
            for d in await broker.fetch("bench", max_messages=100, timeout=0.05):
                if await consumer.handle(d.message) == HANDLED:
                    latencies.append((time.perf_counter() - committed[d.message.message_id])
                                     * 1000)
                await d.ack()

    tasks = [asyncio.create_task(relay.run(stop=stop, idle=0.002)),
             asyncio.create_task(consume())]
    try:
        for n in range(events):
            e = event(n)
            await storage.commit(Commit(appends=(AppendRequest(
                f"acc-{n % 100}", StreamState.ANY, (e,)),)))
            committed[str(e.event_id)] = time.perf_counter()
            await asyncio.sleep(0.002)
        async with asyncio.timeout(60):
            while len(latencies) < events:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        stop.set()
        await asyncio.gather(*tasks)
        rows = await db.run(lambda c: c.execute(select(func.count()).select_from(effects)
                                                ).scalar_one(), write=False)
        assert rows == events, (rows, events)
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
        await cleanup(name, broker, channel)
        await broker.close()
        await db.close()
        await storage.close()
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="invariant-r1-") as tmp:
        for name in args.brokers:
            rate = await throughput(name, args.events, Path(tmp))
            lat = await latency(name, args.latency_events, Path(tmp))
            p50, p99 = statistics.median(lat), percentile(lat, 0.99)
            print(f"R1 {name:10s} {rate:10.0f} messages/s   p50 {p50:7.2f} ms   "
                  f"p99 {p99:7.2f} ms")
            records += [
                {"workload": "R1", "backend": name, "system": "invariant",
                 "value": round(rate, 1), "unit": "messages/s"},
                {"workload": "R1-p50", "backend": name, "system": "invariant",
                 "value": round(p50, 3), "unit": "ms"},
                {"workload": "R1-p99", "backend": name, "system": "invariant",
                 "value": round(p99, 3), "unit": "ms"},
            ]
    return records


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.r1", description=__doc__)
    p.add_argument("--json", type=Path, help="write the records to this file")
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--latency-events", type=int, default=1_000)
    p.add_argument("--brokers", type=lambda s: [b for b in s.split(",") if b],
                   default=list(BROKERS))
    args = p.parse_args(argv)
    unknown = [b for b in args.brokers if b not in BROKERS]
    if unknown:
        p.error(f"unknown broker(s) {unknown}; choose from {', '.join(BROKERS)}")
    records = asyncio.run(run(args))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
