"""Which event class a stored event type name stands for."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from invariant.domain.errors import ConfigurationError, SerializationError
from invariant.domain.events import DomainEvent
from invariant.store.codec import Codec, _ClassCodec


class EventRegistry:
    """Maps event type names to classes and holds their codecs.

    Register every event class an application stores; a stored type that is not registered
    is an error on read (never silently dropped).
    """

    def __init__(self, classes: Iterable[type[DomainEvent]] = (), *, codec: Codec | None = None
                 ) -> None:
        self.codec = codec or Codec()
        self._by_type: dict[str, tuple[type[DomainEvent], _ClassCodec, int]] = {}
        self.register(*classes)

    def register(self, *classes: type[DomainEvent]) -> None:
        for cls in classes:
            if not (isinstance(cls, type) and issubclass(cls, DomainEvent)):
                raise ConfigurationError(f"{cls!r} is not a DomainEvent subclass")
            known = self._by_type.get(cls.event_type)
            if known is not None and known[0] is not cls:
                raise ConfigurationError(
                    f"event type {cls.event_type!r} is claimed by {known[0].__qualname__} and "
                    f"{cls.__qualname__}: set a distinct event_type on one of them"
                )
            self._by_type[cls.event_type] = (cls, self.codec.for_class(cls), cls.schema_version)

    def __contains__(self, event_type: str) -> bool:
        return event_type in self._by_type

    def class_for(self, event_type: str) -> type[DomainEvent]:
        return self._entry(event_type)[0]

    def encode(self, event: DomainEvent) -> dict[str, Any]:
        entry = self._by_type.get(event.event_type)
        if entry is None or entry[0] is not type(event):
            raise ConfigurationError(
                f"{type(event).__qualname__} is not registered: add it to the EventRegistry"
            )
        return entry[1].encode(event)

    def decode(self, event_type: str, schema_version: int, data: dict[str, Any]) -> DomainEvent:
        cls, codec, version = self._entry(event_type)
        if schema_version != version:
            newer = schema_version > version
            raise SerializationError(
                f"stored {event_type} has schema v{schema_version} but {cls.__qualname__} is "
                f"v{version}: "
                + ("it was written by newer code; deploy that code to read it" if newer
                   else f"register an upcaster for {event_type} v{schema_version}")
            )
        event: DomainEvent = codec.decode(data)
        return event

    def decoder_for(self, event_type: str, schema_version: int
                    ) -> Callable[[dict[str, Any]], DomainEvent]:
        """The raw decoder for stored data of this type and (current) schema version.

        Raises what :meth:`decode` raises for an unknown type or a schema mismatch; the
        returned function may raise plain KeyError/TypeError/ValueError on malformed data,
        so callers fall back to :meth:`decode` to report those precisely.
        """
        _, codec, version = self._entry(event_type)
        if schema_version != version:
            self.decode(event_type, schema_version, {})  # raises the explanatory error
        decoder: Callable[[dict[str, Any]], DomainEvent] = codec.decode_hot
        return decoder

    def text_decoder_for(self, event_type: str, schema_version: int
                         ) -> Callable[[str | bytes], DomainEvent]:
        """As :meth:`decoder_for`, for the stored JSON text: parses and decodes in one step.

        It may raise any exception on malformed text or data (msgspec's among them), so
        callers fall back to ``orjson.loads`` and :meth:`decode` to report those precisely.
        """
        _, codec, version = self._entry(event_type)
        if schema_version != version:
            self.decode(event_type, schema_version, {})  # raises the explanatory error
        decoder: Callable[[str | bytes], DomainEvent] = codec.decode_text
        return decoder

    def _entry(self, event_type: str) -> tuple[type[DomainEvent], _ClassCodec, int]:
        entry = self._by_type.get(event_type)
        if entry is None:
            raise SerializationError(
                f"unknown event type {event_type!r}: register its class in the EventRegistry "
                "(or an upcaster that renames it)"
            )
        return entry
