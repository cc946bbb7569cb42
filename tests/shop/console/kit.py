"""What the console's tests share: a shop with a module that can be made to fail (a
projection stopped by a poison event, a consumer that parks messages), and a client that
logs in to the console and sends its forms as a browser does."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, select

from invariant.domain import DomainEvent
from invariant.messaging.jobs import Job
from invariant.messaging.port import Message
from invariant.projections import Projection
from invariant.store import EventEnvelope
from shop.platform.module import Module
from shop.platform.runtime import Shop

PROBE = "console-probe"
"""The consumer group of the troubles module."""
PROBED = "probe.poked"
"""The type of the messages the probe handles (and fails on while broken)."""
PROBE_JOB = "console-probe-job"
"""The job of the troubles module (fails while the probe is broken)."""
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


@dataclass(frozen=True)
class Poked(DomainEvent):
    """An event the poke projection counts; ``poison`` ones fail while it is broken."""

    poison: bool = False


class Pokes(Projection):
    """Counts pokes; while ``broken``, a poison poke raises (a bug, until it is fixed)."""

    name = "console_pokes"
    event_types = ("Poked",)

    def __init__(self, version: int = 1) -> None:
        super().__init__(version)
        self.broken = version == 1

    def define(self, metadata: MetaData) -> None:
        self.pokes = Table(self.table_name("pokes"), metadata,
                           Column("position", Integer, primary_key=True),
                           Column("stream_id", String(100), nullable=False))

    def apply(self, envelope: EventEnvelope, conn: Connection) -> None:
        if self.broken and getattr(envelope.event, "poison", False):
            raise ValueError(f"cannot count poison poke at {envelope.position}")
        conn.execute(self.pokes.insert().values(position=envelope.position,
                                                stream_id=envelope.stream_id))

    def reset(self, conn: Connection, after: int) -> None:
        conn.execute(self.pokes.delete().where(self.pokes.c.position > after))

    def positions(self, conn: Connection) -> list[int]:
        return [r[0] for r in conn.execute(select(self.pokes.c.position))]


class Probe:
    """A consumer that fails while ``broken`` and records what it handled."""

    def __init__(self) -> None:
        self.broken = True
        self.handled: list[str] = []

    def __call__(self, conn: Connection, message: Message) -> None:
        if message.message_type != PROBED:
            return  # the shop's own messages reach every consumer; the probe ignores them
        if self.broken:
            raise RuntimeError(f"probe cannot handle {message.message_id} yet")
        self.handled.append(message.message_id)


@dataclass
class Troubles:
    """The module's parts, for the test to break and fix."""

    pokes: Pokes
    probe: Probe
    pokes_v2: Pokes
    """The next version of the poke count, built beside the first (it counts poison too)."""

    jobs_run: list[int]

    def module(self, shop: Shop) -> Module:
        async def job(job: Job) -> None:
            if self.probe.broken:
                raise RuntimeError(f"job {job.id} cannot run yet")
            self.jobs_run.append(job.id)

        return Module(name="troubles", events=[Poked], projections=[self.pokes, self.pokes_v2],
                      consumers={PROBE: self.probe}, jobs={PROBE_JOB: job})

    @staticmethod
    def make() -> Troubles:
        return Troubles(Pokes(), Probe(), Pokes(version=2), [])


def probe_message() -> Message:
    return Message(message_id=str(uuid.uuid4()), message_type=PROBED,
                   stream_id="probe-1", schema_version=1, data={"n": 1})


async def park_probe_message(shop: Shop) -> Message:
    """A message the probe consumer fails on until parked (its retries included)."""
    consumer = next(c for c in shop.consumers if c.name == PROBE)
    message = probe_message()
    assert await consumer.handle(message) == "parked"
    return message


class ConsoleClient:
    """The console over HTTP, as a browser uses it: cookies kept, forms with their token."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.http = client
        self.csrf = ""

    async def page(self, path: str, **params: Any) -> httpx.Response:
        response = await self.http.get(f"/console{path}", params=params or None)
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    async def post(self, path: str, **form: str) -> httpx.Response:
        return await self.http.post(f"/console{path}", data={"csrf": self.csrf, **form})

    async def log_in(self, email: str, password: str) -> httpx.Response:
        await self.page("/login")
        return await self.post("/login", email=email, password=password)
