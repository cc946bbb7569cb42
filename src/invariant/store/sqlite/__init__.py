"""SQLite event storage: the embedded default (see :class:`SQLiteStorage`)."""

from invariant.store.sqlite.storage import SQLiteStorage

__all__ = ["SQLiteStorage"]
