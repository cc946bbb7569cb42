"""Schemas migrated, not created: Alembic revisions for invariant's own tables (this
package's ``versions/``) and for an application's, each chain with its own version table,
so that several chains (the framework's, each bounded context's) live in one schema.

A revision is generated once from the code's table definitions as literal SQL for
PostgreSQL and SQLite (:mod:`invariant.migrations.generate`) and never edited: a changed
table is a new revision. :func:`require_current` is how a service refuses to start against
a schema that is behind.
"""

from invariant.migrations.chain import (
    FRAMEWORK,
    Chain,
    SchemaBehindError,
    current_revision,
    require_current,
    upgrade,
)

__all__ = ["FRAMEWORK", "Chain", "SchemaBehindError", "current_revision", "require_current",
           "upgrade"]
