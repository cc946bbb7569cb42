"""State-stored aggregates on SQLAlchemy (SQLite, PostgreSQL): rows with a version column,
optimistic locking, and domain events written to the outbox in the same transaction.

Run the repository on the application's ReadModelDatabase (``app.read_models``, or
``invariant.bootstrap.open_read_models``) whenever invariant's event store writes the same
SQLite file; see :class:`StateStoredRepository`."""

from invariant.sql.engine import create_engine
from invariant.sql.outbox_table import outbox_table
from invariant.state.repository import Database, Isolation, StateStoredRepository

__all__ = ["Database", "Isolation", "StateStoredRepository", "create_engine", "outbox_table"]
