"""Operating messaging: how many messages each consumer's inbox has recorded."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from invariant.messaging.inbox import inbox


def inbox_counts(conn: Connection) -> dict[str, int]:
    """Messages handled (or parked) per consumer, by consumer name."""
    rows = conn.execute(select(inbox.c.consumer, func.count()).group_by(inbox.c.consumer)
                        .order_by(inbox.c.consumer))
    return {str(name): int(count) for name, count in rows}
