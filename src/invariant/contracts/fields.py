"""Declaring a contract's fields: validation rules and database metadata in one place."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import AfterValidator, Field
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError, PydanticUndefined

from invariant.domain.errors import ConfigurationError

_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

# format name -> (pattern, error code, message)
FORMATS: dict[str, tuple[re.Pattern[str], str, str]] = {
    "email": (_EMAIL, "invalid_email", "is not a valid email address (expected name@domain.tld)"),
    "slug": (_SLUG, "invalid_slug", "is not a slug (lower-case letters, digits and '-')"),
}


@dataclass(frozen=True, slots=True)
class DbColumn:
    """Database metadata of one field: what the generated table column looks like."""

    length: int | None = None
    unique: bool = False
    index: bool = False
    shard_key: bool = False

    def to_json(self) -> dict[str, object]:
        """The non-default settings, for JSON Schema's ``x-db``."""
        data: dict[str, object] = {}
        if self.length is not None:
            data["length"] = self.length
        for name in ("unique", "index", "shard_key"):
            if getattr(self, name):
                data[name] = True
        return data


def field(
    default: Any = PydanticUndefined,
    *,
    description: str | None = None,
    format: str | None = None,
    pattern: str | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    length: int | None = None,
    unique: bool = False,
    index: bool = False,
    shard_key: bool = False,
) -> Any:
    """A contract field: its rules (format, pattern, lengths, ranges) and its column.

    ``length`` is the column length and also the longest value accepted (unless
    ``max_length`` is stricter); ``unique``, ``index`` and ``shard_key`` describe the column.
    Omit ``default`` for a required field; ``None`` makes an ``X | None`` field optional.
    """
    if length is not None and length < 1:
        raise ConfigurationError(f"field length must be at least 1, got {length}")
    if length is not None and (max_length is None or max_length > length):
        max_length = length
    extra: dict[str, Any] = {}
    if format is not None:
        extra["format"] = format
    info: FieldInfo = Field(
        default,
        description=description,
        pattern=pattern,
        min_length=min_length,
        max_length=max_length,
        ge=ge,
        le=le,
        gt=gt,
        lt=lt,
        json_schema_extra=extra or None,
    )
    if format is not None:
        info.metadata.append(AfterValidator(_format_validator(format)))
    info.metadata.append(DbColumn(length, unique, index, shard_key))
    return info


def db_column(info: FieldInfo) -> DbColumn:
    """The database metadata declared for a field (defaults when none was declared)."""
    for item in info.metadata:
        if isinstance(item, DbColumn):
            return item
    return DbColumn()


def _format_validator(name: str) -> Any:
    try:
        pattern, code, message = FORMATS[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown field format {name!r}; use one of {', '.join(sorted(FORMATS))} "
            "or a pattern="
        ) from None

    def check(value: Any) -> Any:
        if isinstance(value, str) and pattern.fullmatch(value) is None:
            raise PydanticCustomError(code, message)
        return value

    return check
