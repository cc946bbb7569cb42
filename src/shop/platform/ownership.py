"""Each service owns its data: on PostgreSQL a context gets a role of its own and a schema
that role owns, and nothing else. Another context's schema grants it nothing, so reading
another context's tables fails with "permission denied" (a service can only ask another
one through its published API or hear its events).

Run once by an operator with a role allowed to create roles
(``python -m shop provision CONTEXT|all``); each service then connects with its own role
(:func:`service_dsn`) and migrates its own schema.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url

from invariant.domain.errors import ConfigurationError
from shop.platform.schemas import context_chain

PREFIX = "shop_"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Ownership:
    """A context's role and the schema it owns (the same name)."""

    context: str
    role: str

    @property
    def schema(self) -> str:
        return self.role


def ownership(context: str, prefix: str = PREFIX) -> Ownership:
    context_chain(context)  # refuses an unknown context
    role = f"{prefix}{context}"
    if not _NAME.match(role):
        raise ConfigurationError(f"{role!r} cannot name a PostgreSQL role: use lower-case "
                                 "letters, digits and underscores, at most 63")
    return Ownership(context, role)


def service_dsn(admin_dsn: str, owner: Ownership, password: str | None = None) -> str:
    """``admin_dsn`` with the context's role as its user."""
    url = make_url(admin_dsn).set(username=owner.role, password=password)
    return url.render_as_string(hide_password=False)


async def provision(admin_dsn: str, contexts: Sequence[str], *, prefix: str = PREFIX,
                    password: str | None = None) -> list[Ownership]:
    """Create (if missing) each context's role and its schema, owned by it; the role may
    log in and gets no other privilege. Idempotent."""
    owners = [ownership(context, prefix) for context in contexts]
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        for owner in owners:
            async with conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('shop-provision'))")
                exists = await conn.fetchval(
                    "SELECT 1 FROM pg_roles WHERE rolname = $1", owner.role)
                if not exists:
                    await conn.execute(f'CREATE ROLE "{owner.role}" LOGIN NOSUPERUSER '
                                       "NOCREATEDB NOCREATEROLE")
                if password is not None:
                    await conn.execute(f'ALTER ROLE "{owner.role}" PASSWORD '
                                       f"{_literal(password)}")
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{owner.schema}" '
                                   f'AUTHORIZATION "{owner.role}"')
    finally:
        await conn.close()
    return owners


async def unprovision(admin_dsn: str, owners: Sequence[Ownership]) -> None:
    """Drop the schemas (with everything in them) and the roles: for tests and teardown."""
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        for owner in owners:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{owner.schema}" CASCADE')
            await conn.execute(f'DROP ROLE IF EXISTS "{owner.role}"')
    finally:
        await conn.close()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
