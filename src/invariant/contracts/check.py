"""The drift check: do the database, the migrations and the published JSON Schemas still
say what the contracts say? Returns one human-readable line per difference."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Dialect, MetaData
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeEngine

from invariant.contracts import migrations as mig
from invariant.contracts.contract import Contract
from invariant.contracts.jsonschema import json_schema
from invariant.contracts.sql import contracts_metadata
from invariant.sql.engine import create_engine

FIX_DATABASE = "run `invariant contracts upgrade` (or write the missing migration first)"
FIX_MIGRATIONS = "run `invariant contracts revision -m '...'` to generate the migration"


async def check_database(
    engine: AsyncEngine, contracts: Sequence[type[Contract]], migrations: mig.Migrations | None
) -> list[str]:
    """Differences between a live database and the contracts (and the migrations' head)."""
    metadata = contracts_metadata(contracts)
    found: list[str] = await mig.run_sync(engine, _describe_all, metadata, "database")
    if migrations is not None:
        current = await mig.run_sync(engine, mig.current_revisions)
        heads = migrations.heads()
        if set(current) != set(heads):
            found.append(
                f"database is at revision {_revs(current)}, the migrations' head is "
                f"{_revs(heads)}; {FIX_DATABASE}"
            )
    return found


async def check_migrations(
    contracts: Sequence[type[Contract]], migrations: mig.Migrations
) -> list[str]:
    """Differences between the contracts and what the migrations build (on scratch SQLite)."""
    metadata = contracts_metadata(contracts)
    with tempfile.TemporaryDirectory(prefix="invariant-contracts-") as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        try:
            await mig.run_sync(engine, mig.upgrade, migrations)
            found: list[str] = await mig.run_sync(engine, _describe_all, metadata, "migrations")
        finally:
            await engine.dispose()
    return [f"{line}; {FIX_MIGRATIONS}" for line in found]


def check_schemas(contracts: Sequence[type[Contract]], directory: Path) -> list[str]:
    """Differences between the published JSON Schemas in ``directory`` and the contracts."""
    found: list[str] = []
    for contract in contracts:
        path = directory / schema_file_name(contract)
        fix = f"run `invariant contracts schema --out {directory}` and publish the change"
        if not path.exists():
            found.append(f"JSON Schema of {contract.__name__}: {path} is missing; {fix}")
        elif json.loads(path.read_text()) != json_schema(contract):
            found.append(f"JSON Schema of {contract.__name__}: {path} differs from the contract; "
                         f"{fix}")
    return found


def schema_file_name(contract: type[Contract]) -> str:
    """The file a contract's JSON Schema is published as."""
    return f"{contract.__name__}.schema.json"


def _describe_all(connection: Connection, metadata: MetaData, where: str) -> list[str]:
    lines: list[str] = []
    for diff in mig.differences(connection, metadata):
        for item in diff if isinstance(diff, list) else [diff]:
            lines.append(describe(item, where, connection.dialect))
    return lines


def describe(diff: tuple[Any, ...], where: str, dialect: Dialect) -> str:
    """One Alembic diff tuple as a sentence; ``where`` is "database" or "migrations"."""
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        name = diff[1].name
        if kind == "add_table":
            return f"table {name}: declared by a contract, missing in the {where}"
        return f"table {name}: in the {where}, declared by no contract"
    if kind in ("add_column", "remove_column"):
        table, column = diff[2], diff[3]
        if kind == "add_column":
            return f"table {table}: column {column.name} is declared by the contract, missing in the {where}"  # noqa: E501
        return f"table {table}: column {column.name} is in the {where}, not in the contract"
    if kind.startswith("modify_"):
        return _describe_modify(diff, where, dialect)
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        return _describe_constraint(diff, where)
    return f"{where} differs from the contracts: {diff!r}"


def _describe_modify(diff: tuple[Any, ...], where: str, dialect: Dialect) -> str:
    kind, _schema, table, column = diff[:4]
    existing, wanted = diff[5], diff[6]
    what = kind.removeprefix("modify_")
    if what == "type":
        existing, wanted = _sql(existing, dialect), _sql(wanted, dialect)
    elif what == "nullable":
        existing, wanted = _null(existing), _null(wanted)
    return (f"table {table}: column {column} {what} is {existing} in the {where}, "
            f"the contract says {wanted}")


def _describe_constraint(diff: tuple[Any, ...], where: str) -> str:
    kind, item = diff[0], diff[1]
    label = "unique constraint" if kind.endswith("constraint") else (
        "unique index" if getattr(item, "unique", False) else "index")
    columns = ", ".join(c.name for c in item.columns)
    table = item.table.name
    if kind.startswith("add_"):
        return f"table {table}: {label} {item.name} on ({columns}) is declared by the contract, missing in the {where}"  # noqa: E501
    return f"table {table}: {label} {item.name} on ({columns}) is in the {where}, not in the contract"  # noqa: E501


def _sql(type_: TypeEngine[Any], dialect: Dialect) -> str:
    return str(type_.compile(dialect=dialect))


def _null(nullable: bool) -> str:
    return "NULL" if nullable else "NOT NULL"


def _revs(revisions: Sequence[str]) -> str:
    return ", ".join(revisions) or "none (never migrated)"
