"""Domain events: immutable facts, named in the past tense."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from invariant.domain.errors import ConfigurationError


@dataclass(frozen=True)
class DomainEvent:
    """Base for domain events, declared as frozen dataclasses::

        @dataclass(frozen=True)
        class MoneyDeposited(DomainEvent):
            amount: Money

    ``event_type`` is the stored name (the class name unless set); ``schema_version`` is the
    version of the event's shape, separate from its position in a stream. Bump it when the
    fields change and register an upcaster for the old shape.
    """

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "event_type" not in cls.__dict__:
            cls.event_type = cls.__name__
        if not isinstance(cls.schema_version, int) or cls.schema_version < 1:
            raise ConfigurationError(
                f"{cls.__name__}.schema_version must be an int >= 1, got {cls.schema_version!r}"
            )
