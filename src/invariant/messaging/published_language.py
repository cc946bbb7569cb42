"""The published language: integration events, the types a context shows the outside world.

They are separate from domain events: named (``order.placed``) and versioned for consumers
that know nothing of our model, with money as a decimal string plus an ISO 4217 code, times
in ISO 8601 UTC, and an envelope carrying the version and the source (seed example 79)::

    class OrderPlaced(IntegrationEvent):
        event_name: ClassVar[str] = "order.placed"
        event_version: ClassVar[int] = 1
        order_id: str
        total: Amount
        placed_at: UtcTime

Each event has a JSON Schema generated from its definition (:func:`json_schema`);
:class:`IntegrationEvents` turns messages back into events and refuses (with
:class:`~invariant.messaging.errors.UnsupportedVersionError`, which parks the message) a
type or version it does not know.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, TypeVar

import pydantic
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from invariant.domain.money import Money
from invariant.messaging.errors import PermanentMessageError, UnsupportedVersionError
from invariant.messaging.port import Message
from invariant.store.records import OutboxMessage

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

E = TypeVar("E", bound="IntegrationEvent")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


UtcTime = Annotated[
    AwareDatetime, AfterValidator(_utc),
    PlainSerializer(lambda m: m.isoformat().replace("+00:00", "Z"), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An aware time, published as ISO 8601 in UTC (``2026-01-31T12:00:00Z``)."""

DecimalText = Annotated[
    Decimal, PlainSerializer(lambda d: str(d), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}),
]
"""An exact decimal, published as text (no binary floating point on the wire)."""


class Amount(BaseModel):
    """Money in the published language: a decimal ``value`` and an ISO 4217 ``currency``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: DecimalText
    currency: str = Field(pattern=r"^[A-Z]{3}$")

    @classmethod
    def of(cls, money: Money) -> Amount:
        """``money`` in the published language (exact: the Decimal as it is)."""
        return cls(value=money.amount, currency=money.currency.code)


class IntegrationEvent(BaseModel):
    """Base of integration events; subclasses set ``event_name`` and ``event_version``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_name: ClassVar[str]
    event_version: ClassVar[int]

    def to_outbox(self, *, source: str, stream_id: str = "",
                  message_id: uuid.UUID | None = None,
                  occurred_at: datetime | None = None) -> OutboxMessage:
        """The outbox message publishing this event (``UnitOfWork.emit`` it).

        ``occurred_at`` (the metadata's time) defaults to the event's own ``occurred_at``
        field when it declares one, else to now."""
        own = getattr(self, "occurred_at", None)
        when = _utc(occurred_at or (own if isinstance(own, datetime) else datetime.now(UTC)))
        return OutboxMessage(
            message_id or uuid.uuid4(), self.event_name, self.event_version,
            self.model_dump(mode="json"),
            {"version": self.event_version, "source": source,
             "occurred_at": when.isoformat().replace("+00:00", "Z")},
            stream_id)


def schema_key(event: type[IntegrationEvent]) -> str:
    """``order.placed.v1``: the file stem of the event's published schema."""
    return f"{event.event_name}.v{event.event_version}"


def json_schema(event: type[IntegrationEvent]) -> dict[str, Any]:
    """The JSON Schema of the message carrying ``event`` (envelope and data)."""
    data = event.model_json_schema(mode="serialization")
    defs = data.pop("$defs", {})
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": f"urn:invariant:integration-event:{schema_key(event)}",
        "title": f"{event.event_name} v{event.event_version}",
        "description": (event.__doc__ or "").strip(),
        "type": "object",
        "properties": {
            "type": {"const": event.event_name},
            "id": {"type": "string", "format": "uuid"},
            "stream": {"type": "string"},
            "schema": {"const": event.event_version},
            "data": data,
            "metadata": {
                "type": "object",
                "properties": {
                    "version": {"const": event.event_version},
                    "source": {"type": "string"},
                    "occurred_at": {"type": "string", "format": "date-time"},
                },
                "required": ["version", "source", "occurred_at"],
            },
        },
        "required": ["type", "id", "schema", "data", "metadata"],
    }
    if defs:
        schema["$defs"] = defs
    return schema


class IntegrationEvents:
    """The integration events a consumer understands, by name and version."""

    def __init__(self, *events: type[IntegrationEvent]) -> None:
        self._by_key: dict[tuple[str, int], type[IntegrationEvent]] = {}
        for event in events:
            self.register(event)

    def register(self, event: type[IntegrationEvent]) -> None:
        """Understand ``event`` (its name and version)."""
        self._by_key[(event.event_name, event.event_version)] = event

    def decode(self, message: Message) -> IntegrationEvent:
        """The event a message carries; :class:`UnsupportedVersionError` for a type or
        version not registered, :class:`PermanentMessageError` for invalid data."""
        version = message.metadata.get("version", message.schema_version)
        event = self._by_key.get((message.message_type, int(version)))
        if event is None:
            known = sorted(v for n, v in self._by_key if n == message.message_type)
            supported = ", ".join(f"v{v}" for v in known) or "none"
            raise UnsupportedVersionError(
                f"{message.message_type} v{version} is not supported by this consumer "
                f"(supported versions: {supported}); upgrade the consumer, or replay the "
                "parked message once it is")
        try:
            return event.model_validate(message.data)
        except pydantic.ValidationError as exc:
            raise PermanentMessageError(
                f"{message.message_type} v{version} does not match its schema: {exc}"
            ) from exc
