"""State-stored aggregates on SQLAlchemy (SQLite, PostgreSQL): rows with a version column,
optimistic locking, and domain events written to the outbox in the same transaction."""

from invariant.contracts.engine import create_engine
from invariant.state.outbox import outbox_table
from invariant.state.repository import Isolation, StateStoredRepository

__all__ = ["Isolation", "StateStoredRepository", "create_engine", "outbox_table"]
