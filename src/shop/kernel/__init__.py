"""The shared kernel of ordering and billing (and every context that names them): typed
identities, the ids commands and routes accept, and Money. Changing anything here is a
decision for every context that uses it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from invariant.domain import Currency, FieldError, Identity, Money, ValidationError

ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
"""Product and order ids that commands and routes accept (catalog slugs, UUIDs)."""

_SPACES = " \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Real characters, not escapes, so that Python's re, pydantic's Rust regex and a client's
# ECMAScript regex read the class alike. With the control characters, they are exactly the
# characters str.isspace() counts: "blank" means one thing here and in str.strip().
TEXT_LINE = re.compile(rf"^[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f{_SPACES}][^\x00-\x1f\x7f]*$")
"""One line of text that is not blank: no control characters (PostgreSQL refuses NUL in
text), and at least one character that is not a space."""


@dataclass(frozen=True, slots=True)
class CustomerId(Identity):
    """A registered customer: the identity context's user id."""


@dataclass(frozen=True, slots=True)
class OrderId(Identity):
    """An order, from its draft to its fulfilment."""


@dataclass(frozen=True, slots=True)
class ProductId(Identity):
    """A product of the catalog (also the stock-keeping unit of inventory)."""


def id_problems(ids: Mapping[str, object]) -> list[FieldError]:
    """A problem for each field of ``ids`` whose value is not an :data:`ID`."""
    return [FieldError(name, "must be an id of 1-64 letters, digits, '.', '_', ':' or '-'",
                       "invalid_id")
            for name, value in ids.items()
            if not isinstance(value, str) or ID.fullmatch(value) is None]


def check_ids(subject: str, **ids: object) -> None:
    """Refuse ``subject`` (a :class:`ValidationError`) naming every one of ``ids`` that is
    not an :data:`ID`."""
    problems = id_problems(ids)
    if problems:
        raise ValidationError(problems, subject=subject)


__all__ = ["ID", "TEXT_LINE", "Currency", "CustomerId", "Money", "OrderId", "ProductId",
           "check_ids", "id_problems"]
