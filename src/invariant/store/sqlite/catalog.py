"""The SQLite adapter's :class:`~invariant.store.catalog.StreamCatalog`."""

from __future__ import annotations

from invariant.store.catalog import CORRELATION_KEY, CategoryCount, StreamSummary, like_pattern
from invariant.store.records import RecordedEvent
from invariant.store.sqlite.reads import EVENT_COLUMNS, SQLiteReads, row_to_event

_CATEGORIES = ("SELECT category, count(DISTINCT stream_id), count(*) FROM invariant_events"
               " GROUP BY category ORDER BY category")
_FIND = ("SELECT stream_id, max(version) FROM invariant_events WHERE stream_id LIKE ?"
         " ESCAPE '\\' GROUP BY stream_id ORDER BY stream_id LIMIT ?")
_CORRELATED = (f"SELECT {EVENT_COLUMNS} FROM invariant_events"
               f" WHERE json_extract(metadata, '$.{CORRELATION_KEY}') = ?"
               " ORDER BY position LIMIT ?")


class SQLiteCatalog(SQLiteReads):
    """Categories, stream search and flows, read from ``invariant_events``."""

    async def categories(self) -> list[CategoryCount]:
        return [CategoryCount(*row) for row in self._query(_CATEGORIES)]

    async def find_streams(self, text: str, *, limit: int = 50) -> list[StreamSummary]:
        return [StreamSummary(*row) for row in self._query(_FIND, (like_pattern(text), limit))]

    async def read_correlated(self, correlation_id: str, *, limit: int = 100
                              ) -> list[RecordedEvent]:
        return [row_to_event(r) for r in self._query(_CORRELATED, (correlation_id, limit))]
