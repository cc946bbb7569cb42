"""``invariant contracts``: drift check, migrations and JSON Schemas of the contracts."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from invariant.cli.database import check_database_url
from invariant.cli.progress import progress
from invariant.cli.running import import_from_here
from invariant.contracts import check as checks
from invariant.contracts import migrations as mig
from invariant.contracts.contract import Contract
from invariant.contracts.jsonschema import json_schema
from invariant.contracts.loading import load_contracts, stored
from invariant.contracts.sql import contracts_metadata
from invariant.domain.errors import ConfigurationError
from invariant.sql.engine import create_engine

app = typer.Typer(help="Check and migrate the database against the contracts.",
                  no_args_is_help=True)

ContractsOpt = Annotated[str, typer.Option(
    "--contracts", help="module (or module:ATTR) declaring the contracts")]
DatabaseOpt = Annotated[str | None, typer.Option(
    "--database", help="database URL: sqlite:///path.db or postgresql://user@host/db")]
SchemaOpt = Annotated[str | None, typer.Option(
    "--schema", help="PostgreSQL schema holding the tables (search_path)")]
MigrationsOpt = Annotated[Path | None, typer.Option(
    "--migrations", help="directory of the Alembic migrations")]


def _contracts(spec: str) -> list[type[Contract]]:
    import_from_here()
    return load_contracts(spec)


@app.command()
def check(
    contracts: ContractsOpt,
    database: DatabaseOpt = None,
    schema: SchemaOpt = None,
    migrations: MigrationsOpt = None,
    schemas: Annotated[Path | None, typer.Option(
        "--schemas", help="directory of the published JSON Schemas")] = None,
) -> None:
    """Exit 1, naming each difference, when the database, the migrations or the published
    JSON Schemas disagree with the contracts; exit 0 when all agree."""
    if database is None and migrations is None and schemas is None:
        raise ConfigurationError("give --database, --migrations and/or --schemas")
    declared = _contracts(contracts)
    plan = mig.Migrations(migrations) if migrations else None

    async def work() -> list[str]:
        found: list[str] = []
        if database is not None:
            await check_database_url(database, schema)
            engine = create_engine(database, schema=schema)
            try:
                found += await checks.check_database(engine, stored(declared), plan)
            finally:
                await engine.dispose()
        if plan is not None:
            found += await checks.check_migrations(stored(declared), plan)
        if schemas is not None:
            found += checks.check_schemas(declared, schemas)
        return found

    differences = asyncio.run(work())
    for line in differences:
        typer.echo(f"drift: {line}")
    if differences:
        typer.echo(f"{len(differences)} difference(s) between the contracts and the rest",
                   err=True)
        raise typer.Exit(1)
    typer.echo(f"in sync: {', '.join(c.__name__ for c in declared)}")


@app.command()
def revision(
    contracts: ContractsOpt,
    migrations: Annotated[Path, typer.Option("--migrations", help="migrations directory")],
    message: Annotated[str, typer.Option("-m", "--message", help="what the revision does")],
    database: DatabaseOpt = None,
    schema: SchemaOpt = None,
) -> None:
    """Generate the migration that brings the tables to the contracts (compared with a
    scratch SQLite database upgraded to the head, unless --database is given)."""
    declared = stored(_contracts(contracts))
    plan = mig.Migrations(migrations)

    async def work() -> Path | None:
        with tempfile.TemporaryDirectory(prefix="invariant-revision-") as tmp:
            url = database or f"sqlite:///{Path(tmp) / 'scratch.db'}"
            if database is not None:
                await check_database_url(database, schema)
            engine = create_engine(url, schema=schema)
            try:
                if database is None:
                    await mig.run_sync(engine, mig.upgrade, plan)
                metadata = contracts_metadata(declared)
                created: Path | None = await mig.run_sync(
                    engine, mig.autogenerate, metadata, plan, message)
            finally:
                await engine.dispose()
        return created

    created = asyncio.run(work())
    typer.echo(f"created {created}" if created else "no changes: the migrations match")


@app.command()
def upgrade(
    migrations: Annotated[Path, typer.Option("--migrations", help="migrations directory")],
    database: Annotated[str, typer.Option("--database", help="database URL")],
    schema: SchemaOpt = None,
    to: Annotated[str, typer.Option("--to", help="target revision")] = "head",
    create: Annotated[bool, typer.Option(
        "--create", help="create the SQLite file if it is missing (its folder must exist)")]
    = False,
) -> None:
    """Apply the migrations to an existing database (or, with --create, a new SQLite file)."""
    plan = mig.Migrations(migrations)

    async def work() -> tuple[str, ...]:
        await check_database_url(database, schema, create=create)
        engine = create_engine(database, schema=schema)
        try:
            await mig.run_sync(engine, mig.upgrade, plan, to)
            revisions: tuple[str, ...] = await mig.run_sync(engine, mig.current_revisions)
        finally:
            await engine.dispose()
        return revisions

    typer.echo(f"database at {', '.join(asyncio.run(work())) or 'base'}")


@app.command(name="schema")
def export_schema(
    contracts: ContractsOpt,
    out: Annotated[Path | None, typer.Option(
        "--out", help="directory to write <Contract>.schema.json files to (default: print)")]
    = None,
) -> None:
    """Export the contracts' JSON Schemas."""
    declared = _contracts(contracts)
    if out is None:
        typer.echo(json.dumps({c.__name__: json_schema(c) for c in declared}, indent=2))
        return
    out.mkdir(parents=True, exist_ok=True)
    with progress("exporting JSON Schemas", "schemas") as report:
        for done, contract in enumerate(declared, 1):
            path = out / checks.schema_file_name(contract)
            path.write_text(json.dumps(json_schema(contract), indent=2, sort_keys=True) + "\n")
            typer.echo(f"wrote {path}")
            report(done, len(declared))
