"""What each contract field is, resolved once from its annotation: the basis of its
serialization and of its column. Types outside this list are refused when the contract is
declared, not when the first value is stored."""

from __future__ import annotations

import enum
import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime
from pydantic.fields import FieldInfo

from invariant.contracts.fields import DbColumn, db_column
from invariant.domain.errors import ConfigurationError

Kind = Literal["str", "int", "float", "bool", "decimal", "datetime", "date", "uuid", "enum",
               "choice"]

_SCALARS: dict[Any, Kind] = {
    str: "str", int: "int", float: "float", bool: "bool", Decimal: "decimal",
    AwareDatetime: "datetime", date: "date", UUID: "uuid",
}
SUPPORTED = "str, int, float, bool, Decimal, UtcDateTime, date, UUID, an Enum or a Literal"


@dataclass(frozen=True, slots=True)
class FieldShape:
    """One contract field: its name, kind, whether it may be None, its choices and column."""

    name: str
    kind: Kind
    nullable: bool
    info: FieldInfo
    db: DbColumn
    choices: tuple[Any, ...] = ()
    enum_type: type[enum.Enum] | None = None


def shape_of(contract: str, name: str, info: FieldInfo) -> FieldShape:
    """Resolve one field, or raise ConfigurationError naming the unsupported type."""
    where = f"{contract}.{name}"
    annotation, nullable = _strip_optional(_strip_annotated(info.annotation), where)
    annotation = _strip_annotated(annotation)
    db = db_column(info)
    if annotation is datetime:
        raise ConfigurationError(
            f"{where} is a plain datetime: declare it as invariant.contracts.UtcDateTime so "
            "that naive date-times are refused and values are stored in UTC"
        )
    if typing.get_origin(annotation) is Literal:
        return FieldShape(name, "choice", nullable, info, db, typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        choices = tuple(member.value for member in annotation)
        return FieldShape(name, "enum", nullable, info, db, choices, annotation)
    kind = _SCALARS.get(annotation)
    if kind is None:
        raise ConfigurationError(f"{where}: cannot map {annotation!r}; use {SUPPORTED}")
    return FieldShape(name, kind, nullable, info, db)


def _strip_annotated(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _strip_optional(tp: Any, where: str) -> tuple[Any, bool]:
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return tp, False
    inner = [arg for arg in typing.get_args(tp) if arg is not type(None)]
    if len(inner) != 1:
        raise ConfigurationError(f"{where}: only 'X | None' unions are supported; use {SUPPORTED}")
    return inner[0], True
