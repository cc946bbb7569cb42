"""Each context's schema, migrated: invariant's own tables (one chain) and the context's
(its ``migrations/`` folder, a chain of its own), each recorded in its own version table.

``python -m shop migrate CONTEXT`` (or ``all``) applies them; a service checks them with
:func:`require_migrated` before it starts. Revisions are generated from the code by
:mod:`shop.platform.schema_revisions`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, text

from invariant.config import Settings
from invariant.domain.errors import ConfigurationError
from invariant.files import private_file
from invariant.migrations import FRAMEWORK, Chain, require_current, upgrade
from invariant.sql.engine import create_engine
from shop.platform.contexts import known

T = TypeVar("T")

_ROOT = Path(__file__).resolve().parent.parent


def context_chain(context: str) -> Chain:
    """The revisions of ``context``'s own tables (``shop/<context>/migrations``)."""
    known(context)
    return Chain(context, _ROOT / context / "migrations", f"{context}_schema_version")


def chains(context: str) -> list[Chain]:
    """What ``context``'s schema holds: invariant's tables, then the context's own."""
    own = context_chain(context)
    return [FRAMEWORK, own] if (own.directory / "versions").is_dir() else [FRAMEWORK]


def migrate(connection: Connection, contexts: Sequence[str]) -> list[str]:
    """Bring the schema of ``connection`` up to date for ``contexts``: one line per chain
    saying what was done."""
    done: list[str] = []
    for chain in dict.fromkeys(c for context in contexts for c in chains(context)):
        before, after = upgrade(connection, chain)
        done.append(f"{chain.name}: {before or 'empty'} -> {after}" if before != after
                    else f"{chain.name}: already at {after}")
    return done


def require_migrated(connection: Connection, context: str) -> None:
    """Refuse (SchemaBehindError, naming the command) a schema behind the code."""
    require_current(connection, chains(context), f"python -m shop migrate {context}")


async def migrate_database(settings: Settings, contexts: Sequence[str]) -> list[str]:
    """Migrate the database ``settings`` name (INVARIANT_STORE sqlite or postgres; on
    PostgreSQL its schema, made if missing) for ``contexts``."""
    for context in contexts:
        context_chain(context)  # an unknown one is refused before anything is touched
    if settings.store == "sqlite" and not settings.sqlite_path.exists():
        private_file(settings.sqlite_path)  # as the store makes it: it may hold secrets
    return await _on_connection(settings, lambda conn: migrate(conn, contexts),
                                create_schema=True)


async def check_database(settings: Settings, context: str) -> None:
    """:func:`require_migrated` on the database ``settings`` name."""
    await _on_connection(settings, lambda conn: require_migrated(conn, context),
                         create_schema=False)


async def _on_connection(settings: Settings, work: Callable[[Connection], T], *,
                         create_schema: bool) -> T:
    if settings.store == "sqlite":
        engine = create_engine(f"sqlite:///{settings.sqlite_path}")
    elif settings.store == "postgres" and settings.postgres_dsn:
        engine = create_engine(settings.postgres_dsn, schema=settings.postgres_schema)
    else:
        raise ConfigurationError(
            f"INVARIANT_STORE={settings.store} keeps no tables to migrate; set "
            "INVARIANT_STORE to sqlite or postgres (with INVARIANT_POSTGRES_DSN)")
    try:
        async with engine.connect() as conn:
            if create_schema and settings.store == "postgres":
                await conn.run_sync(_create_schema, settings.postgres_schema)
            result = await conn.run_sync(work)
            await conn.commit()
            return result
    finally:
        await engine.dispose()


def _create_schema(conn: Connection, schema: str) -> None:
    # Only when missing: a service's role owns its schema but may not create schemas.
    if conn.execute(text("SELECT to_regnamespace(:s)"), {"s": schema}).scalar() is None:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
