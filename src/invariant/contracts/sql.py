"""A contract's table, as SQLAlchemy Core: id, version, the contract's fields, timestamps."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import annotated_types
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.types import TypeEngine

from invariant.contracts.contract import Contract, TableOptions
from invariant.contracts.shapes import FieldShape
from invariant.domain.errors import ConfigurationError, SerializationError

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
_INT32 = 2**31 - 1


class UtcDateTimeType(TypeDecorator[datetime]):
    """An aware date-time stored in UTC (``timestamptz`` on PostgreSQL; on SQLite the UTC
    wall time). Naive values are refused on the way in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """UTC, and without tzinfo for SQLite (which would otherwise drop it silently)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise SerializationError(
                f"naive datetime {value.isoformat()} cannot be stored: use an aware datetime"
            )
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Always aware, in UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def contracts_metadata(contracts: Iterable[type[Contract]] = ()) -> MetaData:
    """A MetaData with invariant's constraint naming convention, holding the contracts' tables."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    for contract in contracts:
        table_for(contract, metadata)
    return metadata


def table_options(contract: type[Contract]) -> TableOptions:
    """The table declared by a contract, or ConfigurationError when it declares none."""
    options = contract.__contract_table__
    if options is None:
        raise ConfigurationError(
            f"{contract.__name__} declares no table: write "
            f"class {contract.__name__}(Contract, table='...') to store it"
        )
    return options


def table_for(contract: type[Contract], metadata: MetaData) -> Table:
    """The contract's table in ``metadata`` (built once; the same Table afterwards)."""
    options = table_options(contract)
    existing = metadata.tables.get(options.name)
    owners: dict[str, type[Contract]] = metadata.info.setdefault("contracts", {})
    if existing is not None:
        if owners.get(options.name) is not contract:
            raise ConfigurationError(
                f"table {options.name!r} is declared by two contracts; give each its own table"
            )
        return existing
    owners[options.name] = contract
    return Table(
        options.name,
        metadata,
        Column("id", String(options.id_length), primary_key=True),
        Column("version", Integer, nullable=False),
        *(column_for(shape) for shape in contract.__contract_shapes__),
        Column("created_at", UtcDateTimeType(), nullable=False),
        Column("updated_at", UtcDateTimeType(), nullable=False),
    )


def shard_key(contract: type[Contract]) -> str | None:
    """The field declared as the shard key, if any."""
    keys = [s.name for s in contract.__contract_shapes__ if s.db.shard_key]
    if len(keys) > 1:
        raise ConfigurationError(f"{contract.__name__} declares several shard keys: {keys}")
    return keys[0] if keys else None


def column_for(shape: FieldShape) -> Column[Any]:
    """The column of one contract field."""
    return Column(
        shape.name,
        column_type(shape),
        nullable=shape.nullable,
        unique=shape.db.unique or None,
        index=shape.db.index or None,
    )


def column_type(shape: FieldShape) -> TypeEngine[Any]:
    """The SQL type of one contract field."""
    if shape.kind in ("choice", "enum"):
        if all(isinstance(c, str) for c in shape.choices):
            return String(shape.db.length or max(len(c) for c in shape.choices))
        return Integer()
    if shape.kind == "str":
        return String(shape.db.length) if shape.db.length else Text()
    if shape.kind == "int":
        return Integer() if _fits_int32(shape) else BigInteger()
    simple: dict[str, TypeEngine[Any]] = {
        "float": Float(), "bool": Boolean(), "decimal": Numeric(asdecimal=True),
        "datetime": UtcDateTimeType(), "date": Date(), "uuid": Uuid(),
    }
    return simple[shape.kind]


def _fits_int32(shape: FieldShape) -> bool:
    """Whether the field's declared range fits a 32-bit INTEGER (else BIGINT)."""
    low: Any = None
    high: Any = None
    for item in shape.info.metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Gt):
            low = item.gt
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif isinstance(item, annotated_types.Lt):
            high = item.lt
    return low is not None and high is not None and low >= -_INT32 and high <= _INT32
