"""Writes each context's first revision from its modules' tables (a development tool):
``python -m shop.platform.schema_revisions``. A context with no tables of its own has no
revisions (its schema holds invariant's tables only)."""

from __future__ import annotations

from sqlalchemy import Table

from invariant.migrations.generate import table_statements, write_revision
from shop.catalog.infrastructure import SEARCH_INDEX
from shop.platform.published_api import unstarted_shop
from shop.platform.schemas import context_chain

EXTRA = {"catalog": SEARCH_INDEX}
"""Statements beside a context's tables that SQLAlchemy does not describe."""


def context_tables() -> dict[str, list[Table]]:
    """Every context's own tables (its module's and its projections'), as the code has
    them (the modules are built, never started)."""
    with unstarted_shop() as shop:
        return {m.name: [*(m.tables.tables.values() if m.tables is not None else ()),
                         *(t for p in m.projections for t in p.metadata.tables.values())]
                for m in shop.modules}


def context_statements(context: str, tables: list[Table]) -> dict[str, list[str]]:
    extra = EXTRA.get(context, {})
    return {dialect: [*table_statements(tables, dialect), *extra.get(dialect, ())]
            for dialect in ("postgresql", "sqlite")}


def main() -> None:
    for context, tables in context_tables().items():
        if tables:
            path = write_revision(context_chain(context), f"{context}_0001",
                                  f"{context}'s tables.", context_statements(context, tables))
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
