"""NATS JetStream adapter (nats-py): one stream, a subject per message type, durable pull
consumers per group. Each publish carries ``Nats-Msg-Id``, so JetStream drops a message
republished within the stream's duplicate window (default two minutes)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from invariant.backlog import Waiting
from invariant.extras import needs_extra
from invariant.messaging.errors import BrokerError
from invariant.messaging.port import Delivery, Message, read_body

with needs_extra("nats"):
    import nats
    import nats.errors
    import nats.js.errors
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy


ERRORS = (nats.errors.Error, OSError, TimeoutError)
"""What the client raises when the server or the connection fails."""


FIRST_ATTEMPTS = 3
"""Tries of the first connection: a server that is not there at start-up is an error to
report (a wrong URL, a server not started), not something to wait for in silence."""

_log = logging.getLogger("invariant.messaging.nats")


async def connect_jetstream(url: str, request_timeout: float
                            ) -> tuple[Client, JetStreamContext]:
    """A client of ``url`` and its JetStream context. The first connection is tried a few
    times, then fails; once connected, the client reconnects forever after a drop."""
    nc = await nats.connect(url, max_reconnect_attempts=FIRST_ATTEMPTS,
                            reconnect_time_wait=0.2, connect_timeout=5,
                            error_cb=_connection_trouble)
    nc.options["max_reconnect_attempts"] = -1  # read by the client at each reconnection
    return nc, nc.jetstream(timeout=request_timeout)


async def _connection_trouble(error: Exception) -> None:
    # The client's default prints a traceback per failed attempt; one line says enough.
    _log.warning("NATS: %s: %s", type(error).__name__, error)


def abort_socket(nc: Client | None) -> None:
    """Abort ``nc``'s socket, as a network failure would."""
    transport = getattr(nc, "_transport", None)
    writer = getattr(transport, "_io_writer", None)
    if writer is not None:
        writer.transport.abort()


class _NatsDelivery:
    def __init__(self, msg: Msg) -> None:
        self._msg = msg
        self._message = read_body(msg.data, f"nats:{msg.metadata.stream}:"
                                  f"{msg.metadata.sequence.stream}")

    @property
    def message(self) -> Message:
        return self._message

    @property
    def redelivered(self) -> bool:
        return self._msg.metadata.num_delivered > 1

    async def ack(self) -> None:
        try:
            await self._msg.ack()
        except ERRORS as exc:
            raise BrokerError(f"NATS ack failed (the message will be redelivered): {exc}"
                              ) from exc

    async def nack(self) -> None:
        try:
            await self._msg.nak()
        except ERRORS as exc:
            raise BrokerError(f"NATS nak failed: {exc}") from exc


class NatsBroker:
    """JetStream on ``url`` (e.g. ``nats://127.0.0.1:4222``), stream ``stream``."""

    name = "nats"

    def __init__(self, url: str = "nats://127.0.0.1:4222", *, stream: str = "INVARIANT",
                 duplicate_window: float = 120.0, ack_wait: float = 30.0,
                 request_timeout: float = 10.0) -> None:
        self.url = url
        self.stream = stream
        self.subject = stream.lower()
        self.duplicate_window = duplicate_window
        self.ack_wait = ack_wait
        self.request_timeout = request_timeout
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._subs: dict[str, Any] = {}

    async def connect(self) -> None:
        """Connect (reconnecting forever) and create the stream if missing."""
        if self._nc is not None:
            return
        try:
            self._nc, self._js = await connect_jetstream(self.url, self.request_timeout)
            await self._js.add_stream(name=self.stream, subjects=[f"{self.subject}.>"],
                                      duplicate_window=self.duplicate_window)
        except ERRORS as exc:
            raise BrokerError(f"cannot connect to NATS at {self.url}: {exc}") from exc

    async def close(self) -> None:
        """Drain nothing, close the connection."""
        nc, self._nc, self._js = self._nc, None, None
        self._subs.clear()
        if nc is not None:
            await nc.close()

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise BrokerError("NatsBroker is not connected: call connect() first")
        return self._js

    async def declare(self, group: str, *, types: Collection[str] | None = None
                      ) -> None:
        """A durable pull consumer named ``group`` (new messages only). ``types`` is not
        filtered here: every type is delivered (the consumer skips the others)."""
        await self._subscription(group)

    async def _subscription(self, group: str) -> Any:
        if group not in self._subs:
            js = self._jetstream()
            config = ConsumerConfig(durable_name=group, ack_policy=AckPolicy.EXPLICIT,
                                    deliver_policy=DeliverPolicy.NEW, ack_wait=self.ack_wait,
                                    max_ack_pending=-1)
            try:
                self._subs[group] = await js.pull_subscribe(
                    f"{self.subject}.>", durable=group, stream=self.stream, config=config)
            except ERRORS as exc:
                raise BrokerError(f"cannot create NATS consumer {group!r}: {exc}") from exc
        return self._subs[group]

    async def publish(self, batch: Sequence[Message]) -> None:
        """Publish ``batch``, each message acknowledged by the stream (which drops
        duplicates). Messages of different streams go side by side, their acknowledgements
        awaited together: one round trip for all of them instead of one each. A stream's
        next message is sent only once its previous one is acknowledged, so a message lost
        with a dropped connection is never overtaken by a later one of its stream (the
        caller publishes the batch again, and the stream drops what it already has)."""
        js = self._jetstream()
        waves: list[list[Message]] = []  # wave k: the k-th message of each stream
        depth: dict[str, int] = {}
        for message in batch:
            k = depth[message.stream_id] = depth.get(message.stream_id, -1) + 1
            if k == len(waves):
                waves.append([])
            waves[k].append(message)
        for wave in waves:
            await self._publish_together(js, wave)

    async def _publish_together(self, js: JetStreamContext, messages: Sequence[Message]
                                ) -> None:
        acks: list[asyncio.Future[Any]] = []
        try:
            for message in messages:  # sent in order; their acks come back together
                acks.append(await js.publish_async(
                    f"{self.subject}.{message.message_type}", message.encode(),
                    stream=self.stream, headers={"Nats-Msg-Id": message.message_id,
                                                 **message.trace_headers()}))
            async with asyncio.timeout(self.request_timeout):
                await asyncio.gather(*acks)
        except ERRORS as exc:
            raise BrokerError(f"NATS publish failed: {exc}") from exc
        finally:
            for ack in acks:  # those still waiting after a failure: given up
                ack.cancel()

    async def fetch(self, group: str, *, max_messages: int, timeout: float  # noqa: ASYNC109
                    ) -> list[Delivery]:
        """A pull of up to ``max_messages``; BrokerError while the client reconnects (a pull
        would only time out, as if nothing had been published)."""
        sub = await self._subscription(group)
        if self._nc is not None and not self._nc.is_connected:
            raise BrokerError("NATS is not connected: the client is reconnecting")
        try:
            msgs = await sub.fetch(max_messages, timeout=max(timeout, 0.01))
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        except ERRORS as exc:
            raise BrokerError(f"NATS fetch failed: {exc}") from exc
        return [_NatsDelivery(m) for m in msgs]

    async def backlog(self) -> int:
        """Messages the groups declared through this broker have not acknowledged yet
        (pending delivery, or delivered and not acknowledged), asked of the server. NATS
        delivers every type to every group, so the types a group skips count too."""
        waiting = 0
        for group, sub in list(self._subs.items()):
            try:
                info = await sub.consumer_info()
            except ERRORS as exc:
                raise BrokerError(f"cannot read NATS consumer {group!r}: {exc}") from exc
            waiting += int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        return waiting

    async def waiting(self) -> Waiting:
        """:meth:`backlog`, and how long the oldest of those messages has waited since it
        was published: for each group with messages waiting, the first message after its
        acknowledgement floor (every message before it is acknowledged), read from the
        stream for its time."""
        js = self._jetstream()
        waiting, published = 0, []
        for group, sub in list(self._subs.items()):
            try:
                info = await sub.consumer_info()
                count = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
                if count and info.ack_floor is not None:
                    first = await js.get_msg(self.stream, seq=info.ack_floor.stream_seq + 1,
                                             subject=f"{self.subject}.>", next=True)
                    if first.time is not None:
                        published.append(first.time)
            except nats.js.errors.NotFoundError:
                continue  # acknowledged (and the stream trimmed) meanwhile
            except ERRORS as exc:
                raise BrokerError(f"cannot read NATS consumer {group!r}: {exc}") from exc
            waiting += count
        now = datetime.now(UTC)
        return Waiting(waiting, max(((now - t).total_seconds() for t in published),
                                    default=0.0))

    def drop_connection(self) -> None:
        """Abort the client's socket (tests: the client must reconnect, losing nothing)."""
        abort_socket(self._nc)
