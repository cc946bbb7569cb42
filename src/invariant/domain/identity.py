"""Typed identities: an ``OrderId`` is never equal to a ``CustomerId`` with the same text."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Self

from invariant.domain.errors import ValidationError


@dataclass(frozen=True, slots=True)
class Identity:
    """Base for typed identities. Subclass it once per aggregate or entity kind::

        @dataclass(frozen=True, slots=True)
        class AccountId(Identity): ...
    """

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or not self.value.strip():
            raise ValidationError.single(
                "id",
                f"{type(self).__name__} needs a non-empty string, got {self.value!r}",
                "invalid_id",
                subject=type(self).__name__,
            )

    @classmethod
    def new(cls) -> Self:
        """A fresh random identity (UUID4)."""
        return cls(str(uuid.uuid4()))

    def __str__(self) -> str:
        return self.value
