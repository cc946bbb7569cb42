"""Whether the broker answers, as the relay and the consumers find it.

The broker port has no health probe, and asking a broker something just to learn whether
it answers would add traffic of its own; the consumers already ask it every fraction of a
second. :class:`BrokerWatch` passes every call on and remembers how the last ones went.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from typing import Any, TypeVar

from invariant.clock import Clock, utc_now
from invariant.messaging.errors import BrokerError
from invariant.messaging.port import Broker, Delivery, Message, PublishesInTransaction
from invariant.telemetry import metrics

T = TypeVar("T")


class BrokerWatch:
    """A :class:`~invariant.messaging.port.Broker` that forwards to ``broker`` and tells
    whether its calls fail (:attr:`failing`, :attr:`last_error`)."""

    def __init__(self, broker: Broker, *, clock: Clock = utc_now) -> None:
        self.broker = broker
        self.name = broker.name
        self.clock = clock
        self.failing_since: datetime | None = None
        """When the calls started failing; None while the last call succeeded."""
        self.last_error: str | None = None
        """The last failure's error (kept after the broker answers again)."""

    @property
    def failing(self) -> bool:
        """True when the last call failed."""
        return self.failing_since is not None

    async def connect(self) -> None:
        await self._watch(self.broker.connect)

    async def close(self) -> None:
        await self.broker.close()

    async def declare(self, group: str, *, types: Collection[str] | None = None) -> None:
        await self._watch(lambda: self.broker.declare(group, types=types))

    async def publish(self, batch: Sequence[Message]) -> None:
        await self._watch(lambda: self.broker.publish(batch))

    def stores_in(self, database: Any) -> bool:
        """Whether the broker watched stores its messages in ``database`` (a
        :class:`~invariant.messaging.port.PublishesInTransaction`): the relay then moves
        its batches into it through :meth:`publish_in`."""
        return isinstance(self.broker, PublishesInTransaction) and self.broker.stores_in(
            database)

    async def ensure_ready(self) -> None:
        if isinstance(self.broker, PublishesInTransaction):
            await self._watch(self.broker.ensure_ready)

    def publish_in(self, conn: Any, batch: Sequence[Message]) -> int:
        if not isinstance(self.broker, PublishesInTransaction):
            raise BrokerError(f"the {self.name} broker cannot publish in a transaction of "
                              "the application's database")
        return self.broker.publish_in(conn, batch)

    async def fetch(self, group: str, *, max_messages: int, timeout: float  # noqa: ASYNC109
                    ) -> list[Delivery]:
        return await self._watch(lambda: self.broker.fetch(
            group, max_messages=max_messages, timeout=timeout))

    async def _watch(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            result = await call()
        except BrokerError as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.failing_since = self.failing_since or self.clock()
            raise
        if self.failing_since is not None:
            metrics.broker_reconnected(self.name)
        self.failing_since = None
        return result
