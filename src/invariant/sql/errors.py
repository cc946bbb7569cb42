"""Reading driver errors: unique violations (which columns) and serialization failures."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError

_SERIALIZATION_FAILURES = ("40001", "40P01")  # serialization_failure, deadlock_detected
_UNIQUE_VIOLATION = "23505"
_SQLITE_UNIQUE = "UNIQUE constraint failed: "


def sqlstate(exc: DBAPIError) -> str | None:
    """The SQLSTATE of a PostgreSQL error (None for other drivers)."""
    code = getattr(exc.orig, "sqlstate", None)
    return code if isinstance(code, str) else None


def is_serialization_failure(exc: DBAPIError) -> bool:
    """Whether the transaction lost a serialization race and may simply be run again."""
    return sqlstate(exc) in _SERIALIZATION_FAILURES


def unique_violation(exc: DBAPIError, table: Table) -> tuple[str, ...] | None:
    """The columns of the unique constraint ``exc`` violated, or None if it is no such error."""
    if sqlstate(exc) == _UNIQUE_VIOLATION:
        name = getattr(getattr(exc.orig, "orig", None), "constraint_name", None)
        return _constraint_columns(table, name) if isinstance(name, str) else ()
    message = str(exc.orig)
    if message.startswith(_SQLITE_UNIQUE):
        columns = message.removeprefix(_SQLITE_UNIQUE).split(", ")
        return tuple(c.split(".")[-1] for c in columns)
    return None


def _constraint_columns(table: Table, name: str) -> tuple[str, ...]:
    # Names per invariant's naming convention, and PostgreSQL's defaults for other tables.
    if name in (f"pk_{table.name}", f"{table.name}_pkey"):
        return tuple(c.name for c in table.primary_key.columns)
    for column in table.columns:
        if name in (f"uq_{table.name}_{column.name}", f"{table.name}_{column.name}_key"):
            return (column.name,)
    return ()
