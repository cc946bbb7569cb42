"""The PostgreSQL adapter's :class:`~invariant.store.catalog.StreamCatalog`."""

from __future__ import annotations

from invariant.store.catalog import CORRELATION_KEY, CategoryCount, StreamSummary, like_pattern
from invariant.store.postgres.reads import EVENT_COLUMNS, PostgresReads, row_to_event
from invariant.store.records import RecordedEvent


class PostgresCatalog(PostgresReads):
    """Categories, stream search and flows, read from ``invariant_events``."""

    async def categories(self) -> list[CategoryCount]:
        rows = await self._fetch(
            "SELECT category, count(DISTINCT stream_id), count(*)"
            f" FROM {self.schema}.invariant_events GROUP BY category ORDER BY category")
        return [CategoryCount(r[0], r[1], r[2]) for r in rows]

    async def find_streams(self, text: str, *, limit: int = 50) -> list[StreamSummary]:
        rows = await self._fetch(
            f"SELECT stream_id, max(version) FROM {self.schema}.invariant_events"
            " WHERE stream_id LIKE $1 ESCAPE '\\' GROUP BY stream_id ORDER BY stream_id"
            " LIMIT $2", like_pattern(text), limit)
        return [StreamSummary(r[0], r[1]) for r in rows]

    async def read_correlated(self, correlation_id: str, *, limit: int = 100
                              ) -> list[RecordedEvent]:
        rows = await self._fetch(
            f"SELECT {EVENT_COLUMNS} FROM {self.schema}.invariant_events"
            f" WHERE metadata->>'{CORRELATION_KEY}' = $1 ORDER BY position LIMIT $2",
            correlation_id, limit)
        return [row_to_event(r) for r in rows]
