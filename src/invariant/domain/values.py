"""Value objects: immutable, equal by value, valid from the moment they exist."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self

from invariant.domain.errors import ConfigurationError


class ValueObject:
    """Base for value objects, declared as frozen dataclasses::

        @dataclass(frozen=True)
        class Address(ValueObject):
            street: str
            city: str

            def validate(self) -> None:
                if not self.street:
                    raise ValidationError.single("street", "is required", "required")

    ``validate`` runs once at creation; :meth:`replace` builds a new, re-validated value.
    """

    __slots__ = ()
    _checked_frozen: ClassVar[set[type]] = set()

    def __post_init__(self) -> None:
        cls = type(self)
        if cls not in ValueObject._checked_frozen:
            params = getattr(cls, "__dataclass_params__", None)
            if params is None or not params.frozen:
                raise ConfigurationError(
                    f"{cls.__name__} must be declared with @dataclass(frozen=True) "
                    "so that its values cannot change after validation"
                )
            ValueObject._checked_frozen.add(cls)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`~invariant.domain.errors.ValidationError` when the value is invalid."""

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied, validated again."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
