"""The broker port: what the outbox relay publishes to and consumers read from.

A :class:`Broker` carries :class:`Message` envelopes on one durable channel. Publishing is
confirmed (``publish`` returns once the broker has them) and carries each message's id so
that brokers with de-duplication drop a republished message. Consumers belong to a named
*group*: each group sees every message published after it was declared
(:meth:`Broker.declare`), and a message is redelivered until a member acknowledges it.
Delivery is at least once; the inbox (:mod:`invariant.messaging.inbox`) makes effects
exactly once.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import orjson

from invariant.backlog import Waiting
from invariant.clock import from_micros, to_micros
from invariant.telemetry.tracing import trace_context

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    """One message on the wire: an event from the outbox or an integration event.

    ``stream_id`` is the ordering key (messages of one stream arrive in publish order);
    ``message_id`` is the de-duplication key.
    """

    message_id: str
    message_type: str
    stream_id: str
    schema_version: int
    data: JsonObject
    metadata: JsonObject = field(default_factory=dict)
    position: int | None = None
    created_at: datetime | None = None

    def trace_headers(self) -> dict[str, str]:
        """The W3C trace context of the message (``traceparent``, ``tracestate``), for the
        native headers of the brokers that have them, so tools that read headers follow the
        trace too (invariant's consumers read it from ``metadata``, which every broker
        carries in the body)."""
        if "traceparent" not in self.metadata:
            return {}
        fields = trace_context(self.metadata)
        return fields if "traceparent" in fields else {}

    def encode(self) -> bytes:
        """The JSON body carried by every adapter."""
        return orjson.dumps({
            "id": self.message_id, "type": self.message_type, "stream": self.stream_id,
            "schema": self.schema_version, "data": self.data, "metadata": self.metadata,
            "position": self.position,
            "created_at": None if self.created_at is None else to_micros(self.created_at),
        })

    @staticmethod
    def decode(body: bytes) -> Message:
        """The message :meth:`encode` wrote."""
        return Message._of(orjson.loads(body))

    @staticmethod
    def _of(d: Any) -> Message:
        created = d.get("created_at")
        return Message(d["id"], d["type"], d["stream"], d["schema"], d["data"],
                       d.get("metadata") or {}, d.get("position"),
                       None if created is None else from_micros(created))


MESSAGE_ID_LENGTH = 64
"""The longest message id the inbox and the dead letters store."""

UNREADABLE = "invariant.unreadable"
"""The type given to a delivery whose body is not a message this library wrote (bytes that
another program published on the channel, a truncated or corrupted body): see
:func:`read_body`."""


def read_body(body: bytes, broker_id: str) -> Message:
    """The message ``body`` encodes, or, when it encodes none, a message of type
    :data:`UNREADABLE` holding the bytes (base64, under ``data["body"]``) and why they could
    not be read (``data["error"]``), with id ``unreadable:<broker_id>`` (``broker_id``: the
    broker's own lasting id of the delivery, such as a stream sequence; a digest of it when
    that would be longer than :data:`MESSAGE_ID_LENGTH`). Adapters read
    every body through this, so a foreign body is parked by the consumer with its bytes
    instead of failing every fetch of its group (each fetch would meet it again)."""
    problem: str | None
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        problem = f"not JSON: {exc}"
    else:
        missing = ([k for k in ("id", "type", "stream", "schema", "data") if k not in fields]
                   if isinstance(fields, dict) else None)
        if missing is None:
            problem = f"a JSON {type(fields).__name__}, not an object"
        elif missing:
            problem = f"no {', '.join(missing)}"
        else:
            try:
                message = Message._of(fields)
            except (TypeError, ValueError, OverflowError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                problem = _not_a_message(message)
                if problem is None:
                    return message
    message_id = f"unreadable:{broker_id}"
    if len(message_id) > MESSAGE_ID_LENGTH:  # the inbox's and dead letters' column
        message_id = f"unreadable:{hashlib.sha256(broker_id.encode()).hexdigest()[:40]}"
    return Message(message_id, UNREADABLE, "", 1, {
        "body": base64.b64encode(body).decode("ascii"),
        "error": f"the body is not an invariant message ({problem})",
        "broker_id": broker_id,
    })


def _not_a_message(m: Message) -> str | None:
    """What is wrong with the fields of a decoded envelope (None: nothing)."""
    for name in ("message_id", "message_type", "stream_id"):
        value = getattr(m, name)
        if not isinstance(value, str) or not value:
            return f"{name} {value!r} is not a non-empty string"
    if not isinstance(m.schema_version, int) or isinstance(m.schema_version, bool):
        return f"schema_version {m.schema_version!r} is not a whole number"
    if not isinstance(m.data, dict) or not isinstance(m.metadata, dict):
        return "data and metadata must be JSON objects"
    return None


class Delivery(Protocol):
    """A received message, to be acknowledged once its effects are committed."""

    @property
    def message(self) -> Message:
        """The message."""

    @property
    def redelivered(self) -> bool:
        """True when the broker may have delivered this message before."""

    async def ack(self) -> None:
        """Done with it: the group will not see it again."""

    async def nack(self) -> None:
        """Not handled: deliver it again (to this or another member of the group)."""


class Broker(Protocol):
    """A message broker adapter (in-process, NATS JetStream, RabbitMQ, Redis, Kafka)."""

    name: str

    async def connect(self) -> None:
        """Open connections and declare the channel (idempotent)."""

    async def close(self) -> None:
        """Close connections."""

    async def declare(self, group: str, *, types: Collection[str] | None = None) -> None:
        """Create the durable consumer group ``group`` (idempotent). ``types``: the message
        types the group reads (None: all). Brokers that can filter (SQL, in-process,
        RabbitMQ) deliver only those from then on; the others deliver every type and the
        :class:`~invariant.messaging.consumer.Consumer` acknowledges the rest unread."""

    async def publish(self, batch: Sequence[Message]) -> None:
        """Publish ``batch`` in order and return once the broker has confirmed all of it;
        raises :class:`BrokerError` otherwise (the caller publishes the batch again)."""

    async def fetch(self, group: str, *, max_messages: int, timeout: float  # noqa: ASYNC109
                    ) -> list[Delivery]:
        """Up to ``max_messages`` deliveries for ``group``, waiting at most ``timeout``
        seconds for the first; an empty list when none came."""


@runtime_checkable
class PublishesInTransaction(Protocol):
    """A broker whose messages live in a database of the application's (the SQL broker): it
    can store a batch inside a transaction of that database, so the outbox relay moves a
    batch from the outbox into it in one transaction (see :mod:`invariant.messaging.relay`)."""

    def stores_in(self, database: Any) -> bool:
        """Whether this broker's messages live in ``database`` (the same handle)."""

    async def ensure_ready(self) -> None:
        """Create the broker's tables if it has not yet; BrokerError once it is closed."""

    def publish_in(self, conn: Any, batch: Sequence[Message]) -> int:
        """Store ``batch`` in ``conn``'s transaction (on that database); how many were
        new. Waiting fetches are woken once the transaction commits."""


@runtime_checkable
class CountsBacklog(Protocol):
    """A broker that can say how many messages wait for the consumer groups it serves (the
    SQL broker, NATS JetStream): :class:`~invariant.backlog.Backlog` counts them with the
    other workers' work, so intake is held while consumers fall behind."""

    async def backlog(self) -> int:
        """Messages not yet acknowledged by the groups this broker serves."""

    async def waiting(self) -> Waiting:
        """Those messages, and how long the oldest has waited since it was published."""
