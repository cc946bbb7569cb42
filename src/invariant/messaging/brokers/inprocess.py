"""The in-process broker of the embedded mode: no server, the same port and guarantees
within one process (confirmed publish, de-duplication by message id, redelivery of
unacknowledged messages)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from invariant.messaging.port import Delivery, Message
from invariant.tasks import wait_briefly


@dataclass
class _Group:
    offset: int = 0
    types: frozenset[str] | None = None
    redeliver: list[int] = field(default_factory=list)
    in_flight: set[int] = field(default_factory=set)


class _InProcessDelivery:
    def __init__(self, broker: InProcessBroker, group: _Group, index: int,
                 redelivered: bool) -> None:
        self._broker, self._group, self._index = broker, group, index
        self._redelivered = redelivered

    @property
    def message(self) -> Message:
        return self._broker._log[self._index]

    @property
    def redelivered(self) -> bool:
        return self._redelivered

    async def ack(self) -> None:
        self._group.in_flight.discard(self._index)

    async def nack(self) -> None:
        if self._index in self._group.in_flight:
            self._group.in_flight.discard(self._index)
            self._group.redeliver.append(self._index)
            self._broker._wake()


class InProcessBroker:
    """A broker living in this process's memory (the embedded mode's bus)."""

    name = "inprocess"

    def __init__(self) -> None:
        self._log: list[Message] = []
        self._seen: set[str] = set()
        self._groups: dict[str, _Group] = {}
        self._event = asyncio.Event()

    def _wake(self) -> None:
        self._event.set()

    async def connect(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to close."""

    async def declare(self, group: str, *, types: Collection[str] | None = None) -> None:
        """A group starting after the messages published so far, reading ``types`` (None:
        every type)."""
        g = self._groups.setdefault(group, _Group(offset=len(self._log)))
        g.types = None if types is None else frozenset(types)

    async def publish(self, batch: Sequence[Message]) -> None:
        """Append the batch; a message id already published is dropped."""
        for message in batch:
            if message.message_id not in self._seen:
                self._seen.add(message.message_id)
                self._log.append(message)
        self._wake()

    async def fetch(self, group: str, *, max_messages: int, timeout: float  # noqa: ASYNC109
                    ) -> list[Delivery]:
        """The group's next deliveries (redeliveries first)."""
        g = self._groups.setdefault(group, _Group(offset=len(self._log)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            out: list[Delivery] = []
            while g.redeliver and len(out) < max_messages:
                index = g.redeliver.pop(0)
                g.in_flight.add(index)
                out.append(_InProcessDelivery(self, g, index, True))
            while g.offset < len(self._log) and len(out) < max_messages:
                if g.types is None or self._log[g.offset].message_type in g.types:
                    g.in_flight.add(g.offset)
                    out.append(_InProcessDelivery(self, g, g.offset, False))
                g.offset += 1
            remaining = deadline - loop.time()
            if out or remaining <= 0:
                return out
            self._event.clear()
            if not await wait_briefly(self._event.wait(), remaining):
                return []
