"""Explicit serialization of contract values: to JSON, to a table row, and back.

Each field converts by its declared kind, resolved once per contract. Nothing relies on a
default object dump: a value becomes JSON only through ``to_json()`` and a row only through
``to_row()``; date-times are always UTC ISO 8601 in JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from invariant.contracts.shapes import FieldShape, Kind

Convert = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _utc_iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _aware(value: datetime) -> datetime:
    # Drivers that keep no zone (SQLite) hand back the UTC value we stored, without tzinfo.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _value_of(value: Any) -> Any:
    return value.value


_TO_JSON: dict[Kind, Convert] = {
    "decimal": str, "datetime": _utc_iso, "date": date.isoformat, "uuid": str, "enum": _value_of,
}
_TO_ROW: dict[Kind, Convert] = {"enum": _value_of}
_FROM_ROW: dict[Kind, Convert] = {"datetime": _aware}


def _nullable(convert: Convert) -> Convert:
    if convert is _same:
        return convert
    return lambda value: None if value is None else convert(value)


@dataclass(frozen=True, slots=True)
class FieldCodec:
    """How one field converts: to JSON, to a column value, and from a column value."""

    name: str
    to_json: Convert
    to_row: Convert
    from_row: Convert

    @classmethod
    def of(cls, shape: FieldShape) -> FieldCodec:
        """The converters of a resolved field."""
        convs = [table.get(shape.kind, _same) for table in (_TO_JSON, _TO_ROW, _FROM_ROW)]
        if shape.nullable:
            convs = [_nullable(conv) for conv in convs]
        return cls(shape.name, *convs)


@dataclass(frozen=True, slots=True)
class ValueCodec:
    """All the field converters of one contract."""

    fields: tuple[FieldCodec, ...]

    def to_json(self, value: Any) -> dict[str, Any]:
        """JSON-compatible data (str, int, float, bool, None) of a contract value."""
        return {f.name: f.to_json(getattr(value, f.name)) for f in self.fields}

    def to_row(self, value: Any) -> dict[str, Any]:
        """Column values of a contract value."""
        return {f.name: f.to_row(getattr(value, f.name)) for f in self.fields}

    def row_input(self, row: Any) -> dict[str, Any]:
        """Input for validation, taken from a row (a mapping of column values)."""
        return {f.name: f.from_row(row[f.name]) for f in self.fields if f.name in row}
