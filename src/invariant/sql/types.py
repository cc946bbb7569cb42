"""Column types that store a value the way invariant's own tables do, on either dialect:
what the event store's adapters write with their drivers, SQLAlchemy reads and writes alike.

SQLite stores message ids as 16-byte BLOBs, times as integer microseconds since the epoch
and JSON as text; PostgreSQL uses uuid, timestamptz and jsonb.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import BigInteger, Dialect, LargeBinary, Text, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.types import TypeEngine

from invariant.clock import from_micros, to_micros


class MessageId(TypeDecorator[UUID]):
    """uuid on PostgreSQL, a 16-byte BLOB on SQLite."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """The column type per dialect."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(PG_UUID(as_uuid=True))
        return dialect.type_descriptor(LargeBinary(16))

    def process_bind_param(self, value: UUID | None, dialect: Dialect) -> Any:
        """A UUID for PostgreSQL, its bytes for SQLite."""
        if value is None or dialect.name == "postgresql":
            return value
        return value.bytes


class Moment(TypeDecorator[datetime]):
    """timestamptz on PostgreSQL, integer microseconds since the epoch on SQLite."""

    impl = BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """The column type per dialect."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TIMESTAMP(timezone=True))
        return dialect.type_descriptor(BigInteger())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        """The aware datetime, or its microseconds for SQLite."""
        if value is None or dialect.name == "postgresql":
            return value
        return to_micros(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Always an aware UTC datetime."""
        if value is None or dialect.name == "postgresql":
            return value  # type: ignore[no-any-return]
        return from_micros(value)


class JsonDocument(TypeDecorator[Any]):
    """jsonb on PostgreSQL, JSON text (as the event store writes it) on SQLite."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """The column type per dialect."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Text for SQLite; PostgreSQL's jsonb type encodes the value itself."""
        if value is None or dialect.name == "postgresql":
            return value
        return orjson.dumps(value).decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        """The decoded JSON value."""
        if value is None or dialect.name == "postgresql":
            return value
        return orjson.loads(value)
