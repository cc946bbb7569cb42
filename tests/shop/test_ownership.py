"""Each service owns its data: its own PostgreSQL role and schema, and nothing else."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from invariant.config import Settings
from shop.ordering import wiring as ordering
from shop.platform.ownership import Ownership, provision, service_dsn, unprovision
from shop.platform.schemas import migrate_database
from tests.conftest import POSTGRES_DSN, require_server
from tests.shop.conftest import serve, shop_settings

pytestmark = pytest.mark.postgres


@pytest.fixture
async def owners() -> AsyncIterator[dict[str, Ownership]]:
    """catalog and ordering, each with its role and schema (unique names per test)."""
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    try:
        made = await provision(POSTGRES_DSN, ["catalog", "ordering"], prefix=prefix)
    except (OSError, asyncpg.PostgresError) as exc:
        require_server("PostgreSQL", exc)
        raise
    try:
        for owner in made:
            await migrate_database(settings_for(owner), [owner.context])
        yield {owner.context: owner for owner in made}
    finally:
        await unprovision(POSTGRES_DSN, made)


def settings_for(owner: Ownership) -> Settings:
    return Settings(store="postgres", postgres_dsn=service_dsn(POSTGRES_DSN, owner),
                    postgres_schema=owner.schema, postgres_pool=5)


async def test_a_service_cannot_read_another_context_s_tables(
        owners: dict[str, Ownership]) -> None:
    catalog, mine = owners["catalog"], owners["ordering"]
    conn = await asyncpg.connect(service_dsn(POSTGRES_DSN, mine))
    try:
        assert await conn.fetchval(
            f"SELECT count(*) FROM {mine.schema}.ordering_orders_orders_v1") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError,
                           match=f"permission denied for schema {catalog.schema}"):
            await conn.fetch(f"SELECT * FROM {catalog.schema}.catalog_products")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f"CREATE TABLE {catalog.schema}.planted (x int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.planted (x int)")
    finally:
        await conn.close()


async def test_the_owner_of_a_schema_runs_its_context_on_it(
        owners: dict[str, Ownership], tmp_path: Path) -> None:
    settings = shop_settings(tmp_path, settings_for(owners["ordering"]))
    async with serve(settings, modules=[ordering.module]) as running:
        assert (await running.client.get("/health")).status_code == 200


async def test_provisioning_again_changes_nothing(owners: dict[str, Ownership]) -> None:
    again = await provision(POSTGRES_DSN, ["ordering"],
                            prefix=owners["ordering"].role.removesuffix("ordering"))
    assert again == [owners["ordering"]]
    conn = await asyncpg.connect(service_dsn(POSTGRES_DSN, owners["ordering"]))
    try:
        assert await conn.fetchval(
            f"SELECT count(*) FROM {owners['ordering'].schema}.ordering_orders_orders_v1") == 0
    finally:
        await conn.close()


def test_provision_on_the_command_line_prints_each_service_s_settings() -> None:
    import asyncio
    import subprocess
    import sys

    prefix = f"t{uuid.uuid4().hex[:10]}_"
    env = {"PATH": "/usr/bin:/bin", "INVARIANT_POSTGRES_DSN": POSTGRES_DSN}
    try:
        done = subprocess.run([sys.executable, "-m", "shop", "provision", "billing",
                               "--prefix", prefix], env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        owner = Ownership("billing", f"{prefix}billing")
        assert done.stdout.strip() == (
            f"billing: INVARIANT_POSTGRES_DSN={service_dsn(POSTGRES_DSN, owner)} "
            f"INVARIANT_POSTGRES_SCHEMA={prefix}billing")
    finally:
        asyncio.run(unprovision(POSTGRES_DSN, [Ownership("billing", f"{prefix}billing")]))
    unset = subprocess.run([sys.executable, "-m", "shop", "provision", "billing"],
                           env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                           timeout=60)
    assert unset.returncode == 2
    assert "INVARIANT_POSTGRES_DSN is not set" in unset.stderr
