"""Schemas are migrated, not created: the revisions make exactly the tables a running shop
would make, on PostgreSQL and SQLite; a schema behind the code is refused, naming the
command that brings it up to date."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, inspect, text

from invariant.config import Settings
from invariant.migrations import FRAMEWORK, SchemaBehindError, upgrade
from invariant.sql.engine import create_engine
from shop.platform.contexts import CONTEXTS
from shop.platform.schemas import (
    check_database,
    context_chain,
    migrate_database,
)
from tests.conftest import POSTGRES_DSN, fresh_pg_schema
from tests.shop.conftest import serve, shop_settings


@contextlib.asynccontextmanager
async def database(kind: str, tmp_path: Path, name: str) -> AsyncIterator[Settings]:
    if kind == "sqlite":
        yield Settings(store="sqlite", sqlite_path=tmp_path / f"{name}.db")
        return
    async with fresh_pg_schema() as schema:
        yield Settings(store="postgres", postgres_dsn=POSTGRES_DSN, postgres_schema=schema)


def shape(conn: Connection) -> dict[str, Any]:
    """Tables, their columns, keys and indexes, and (PostgreSQL) functions; (SQLite)
    triggers and virtual tables: everything but the version tables."""
    inspector = inspect(conn)
    tables: dict[str, Any] = {}
    for table in inspector.get_table_names():
        if table.endswith("_schema_version"):
            continue
        tables[table] = (
            sorted((c["name"], str(c["type"]), c["nullable"])
                   for c in inspector.get_columns(table)),
            sorted(inspector.get_pk_constraint(table)["constrained_columns"]),
            sorted((tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)),
            sorted((i["name"], tuple(map(str, i["column_names"])))
                   for i in inspector.get_indexes(table)))
    if conn.dialect.name == "postgresql":
        extra = conn.execute(text(
            "SELECT proname FROM pg_proc WHERE pronamespace = current_schema()::regnamespace"
            " ORDER BY 1")).scalars().all()
    else:
        extra = conn.execute(text(
            "SELECT type || ' ' || name FROM sqlite_master WHERE type = 'trigger' "
            "ORDER BY 1")).scalars().all()
    return {"tables": tables, "extra": list(extra)}


async def shape_of(settings: Settings) -> dict[str, Any]:
    engine = (create_engine(f"sqlite:///{settings.sqlite_path}") if settings.store == "sqlite"
              else create_engine(POSTGRES_DSN, schema=settings.postgres_schema))
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(shape)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_the_migrations_make_what_a_running_shop_makes(kind: str, tmp_path: Path) -> None:
    async with database(kind, tmp_path, "created") as created, \
            database(kind, tmp_path, "migrated") as migrated:
        async with serve(shop_settings(tmp_path, created)):
            pass
        await migrate_database(migrated, CONTEXTS)
        made, migrated_shape = await shape_of(created), await shape_of(migrated)
        # The NATS job queue's table: migrated for every service, made only when it runs.
        assert migrated_shape["tables"].pop("invariant_job_attempts")
        assert migrated_shape["tables"].keys() == made["tables"].keys()
        assert migrated_shape == made
        async with serve(shop_settings(tmp_path, migrated)) as shop:  # and it runs on it
            assert (await shop.client.get("/catalog/products")).status_code == 200


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_schema_behind_the_code_is_refused_naming_the_command(
        kind: str, tmp_path: Path) -> None:
    async with database(kind, tmp_path, "behind") as settings:
        with pytest.raises(SchemaBehindError, match=r"invariant was never migrated.*"
                                                    r"run `python -m shop migrate ordering`"):
            await check_database(settings, "ordering")
        await migrate_database(settings, ["payments"])  # invariant's tables only
        with pytest.raises(SchemaBehindError, match=r"ordering was never migrated, the code "
                                                    r"needs ordering_0001"):
            await check_database(settings, "ordering")
        assert await migrate_database(settings, ["ordering"]) == [
            "invariant: already at invariant_0001", "ordering: empty -> ordering_0001"]
        await check_database(settings, "ordering")
        assert await migrate_database(settings, ["ordering"]) == [
            "invariant: already at invariant_0001", "ordering: already at ordering_0001"]


@pytest.mark.postgres
async def test_a_schema_made_by_an_older_start_up_is_adopted(tmp_path: Path) -> None:
    async with database("postgres", tmp_path, "old") as settings:
        async with serve(shop_settings(tmp_path, settings)) as shop:
            order = await shop.client.get("/catalog/products")
        await migrate_database(settings, CONTEXTS)  # tables there already: kept, recorded
        await check_database(settings, "catalog")
        assert order.status_code == 200


def test_every_context_s_revisions_are_a_single_chain() -> None:
    assert FRAMEWORK.head() == "invariant_0001"
    for context in CONTEXTS:
        chain = context_chain(context)
        if (chain.directory / "versions").is_dir():
            assert chain.head() == f"{context}_0001"


def test_migrate_on_the_command_line_names_a_wrong_context_or_database(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "SHOP_DATA": str(tmp_path), "INVARIANT_STORE": "postgres",
           "INVARIANT_POSTGRES_DSN": "postgresql://nobody@127.0.0.1:1/none"}
    wrong = subprocess.run([sys.executable, "-m", "shop", "migrate", "orders"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2
    assert "unknown context 'orders'; one of: identity" in wrong.stderr
    down = subprocess.run([sys.executable, "-m", "shop", "migrate", "ordering"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert down.returncode == 1
    assert "the database did not answer" in down.stderr
    assert "INVARIANT_POSTGRES_DSN" in down.stderr
    assert len(down.stderr.strip().splitlines()) == 1


def test_upgrade_runs_the_framework_chain_alone(tmp_path: Path) -> None:
    from sqlalchemy import create_engine as sync_engine

    engine = sync_engine(f"sqlite:///{tmp_path / 'framework.db'}")
    with engine.begin() as conn:
        assert upgrade(conn, FRAMEWORK) == (None, "invariant_0001")
        assert "invariant_events" in inspect(conn).get_table_names()


async def test_make_run_s_sqlite_file_is_made_by_the_migrations() -> None:
    from tests.docs_shop import shop_ran_once

    with shop_ran_once() as (directory, _):
        settings = Settings(store="sqlite", sqlite_path=directory / "var/shop/shop.db")
        for context in CONTEXTS:
            await check_database(settings, context)
