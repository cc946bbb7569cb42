"""Cross-field rules of a contract ("age is required for active users")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., bool])

_MARK = "__contract_rule__"


@dataclass(frozen=True, slots=True)
class Rule:
    """A predicate over a whole (field-valid) value, and the error reported when it fails."""

    check: Callable[[Any], bool]
    field: str
    code: str
    message: str


def rule(*, code: str, message: str, field: str = "") -> Callable[[F], F]:
    """Declare a method of a contract as a cross-field rule.

    The method receives a value whose fields are each valid and returns ``True`` when the
    rule holds. A failing rule is reported as ``FieldError(field, message, code)``; rules run
    only when every field is valid, and all failing rules are reported together::

        @rule(field="age", code="required_when_active", message="is required for active users")
        def _age_when_active(self) -> bool:
            return self.status != "active" or self.age is not None
    """

    def mark(method: F) -> F:
        setattr(method, _MARK, Rule(method, field, code, message))
        return method

    return mark


def rules_of(cls: type) -> tuple[Rule, ...]:
    """Every rule declared on ``cls`` and its bases, base classes first, each name once."""
    found: dict[str, Rule] = {}
    for klass in reversed(cls.__mro__):
        for name, member in vars(klass).items():
            marked = getattr(member, _MARK, None)
            if isinstance(marked, Rule):
                found[name] = marked
    return tuple(found.values())
