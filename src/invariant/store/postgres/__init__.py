"""PostgreSQL event storage (asyncpg): see :class:`PostgresStorage`."""

from invariant.extras import needs_extra

with needs_extra("postgres"):
    from invariant.store.postgres.storage import PostgresStorage, lock_key_for

__all__ = ["PostgresStorage", "lock_key_for"]
