"""Shared helpers: committing events, an effects table counted by the tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, func, select

from invariant.messaging.port import Broker, Delivery, Message
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

    async def declare(self, group: str) -> None:
        await self.inner.declare(group)

    async def publish(self, batch: Sequence[Message]) -> None:
        for m in batch:
            self.published[m.message_id] = self.published.get(m.message_id, 0) + 1
        await asyncio.sleep(self.delay)  # a broker round trip, so that relays overlap
        await self.inner.publish(batch)

    async def fetch(self, group: str, *, max_messages: int, timeout: float  # noqa: ASYNC109
                    ) -> list[Delivery]:
        return await self.inner.fetch(group, max_messages=max_messages, timeout=timeout)
