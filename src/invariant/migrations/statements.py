"""What a generated revision runs: its literal statements for the connection's dialect, the
schema's name and lock key put in where the generator left placeholders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from alembic import op
from sqlalchemy import text

from invariant.domain.errors import ConfigurationError
from invariant.store.postgres.connection import lock_key_for

SCHEMA = "__invariant_schema__"
"""Stands for the schema's name in generated PostgreSQL statements."""
LOCK_KEY = "-7199254740993"
"""Stands for the schema's advisory lock key (it is derived from the schema's name)."""


def run_statements(statements: Mapping[str, Sequence[str]]) -> None:
    """Run the statements for the migrated database's dialect (inside a revision)."""
    bind = op.get_bind()
    dialect = bind.dialect.name
    if dialect not in statements:
        raise ConfigurationError(f"these migrations support {', '.join(statements)}, not "
                                 f"{dialect}")
    schema = bind.execute(text("SELECT current_schema()")).scalar_one() if (
        dialect == "postgresql") else ""
    for statement in statements[dialect]:
        sql = statement.replace(SCHEMA, schema).replace(LOCK_KEY, str(lock_key_for(schema)))
        # Literal SQL: the driver must not read colons or percents in it as parameters.
        bind.exec_driver_sql(sql.replace("%", "%%") if dialect == "postgresql" else sql)
