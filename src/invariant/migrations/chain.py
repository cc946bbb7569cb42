"""A chain of revisions, its version table, and applying or checking it on a connection."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from invariant.domain.errors import ConfigurationError


@dataclass(frozen=True)
class Chain:
    """Revisions in ``directory`` (``versions/`` inside), recorded in ``version_table``."""

    name: str
    directory: Path
    version_table: str

    def scripts(self) -> ScriptDirectory:
        return ScriptDirectory(str(self.directory), messaging_opts={"quiet": True})

    def head(self) -> str | None:
        """The latest revision (None: the chain has none)."""
        heads = self.scripts().get_heads()
        if len(heads) > 1:
            raise ConfigurationError(f"the {self.name} migrations have several heads "
                                     f"{sorted(heads)}; merge them into one")
        return heads[0] if heads else None


FRAMEWORK = Chain("invariant", Path(__file__).parent, "invariant_schema_version")
"""invariant's own tables: event store, outbox, checkpoints, processes, jobs, inbox..."""


class SchemaBehindError(ConfigurationError):
    """The schema is not at the revision the code needs; the message names the command."""


def current_revision(connection: Connection, chain: Chain) -> str | None:
    """The revision ``chain`` is at on ``connection`` (None: never migrated)."""
    context = MigrationContext.configure(connection, opts={"version_table": chain.version_table})
    heads = context.get_current_heads()
    return heads[0] if heads else None


def upgrade(connection: Connection, chain: Chain) -> tuple[str | None, str | None]:
    """Apply ``chain`` up to its head in one transaction (committed by the caller's
    connection block); returns (revision before, revision after)."""
    scripts = chain.scripts()
    before = current_revision(connection, chain)

    def steps(revision: Any, context: MigrationContext) -> Any:
        return scripts._upgrade_revs("head", revision)

    config = Config()
    config.set_main_option("script_location", str(chain.directory))
    with EnvironmentContext(config, scripts, fn=steps, destination_rev="head") as env:
        env.configure(connection=connection, transactional_ddl=True,
                      version_table=chain.version_table)
        with env.begin_transaction():
            env.run_migrations()
    return before, current_revision(connection, chain)


def require_current(connection: Connection, chains: list[Chain], command: str) -> None:
    """Raise :class:`SchemaBehindError` unless every chain is at its head: a service that
    started against an older schema would fail later, on the first missing column."""
    for chain in chains:
        at, head = current_revision(connection, chain), chain.head()
        if at != head:
            where = "was never migrated" if at is None else f"is at revision {at}"
            raise SchemaBehindError(
                f"the database schema for {chain.name} {where}, the code needs {head}; "
                f"run `{command}` first")
