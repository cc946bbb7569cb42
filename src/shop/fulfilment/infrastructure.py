"""Fulfilment's read side: an order's fulfilment status, straight from its process."""

from __future__ import annotations

from sqlalchemy import Connection

from invariant.processes import NEEDS_ATTENTION
from invariant.processes import persistence as processes
from invariant.projections import ReadModelDatabase
from shop.fulfilment.application import OrderFulfilment
from shop.ordering.messages import FulfilmentStatus, GetFulfilmentStatus

PENDING = "pending"
"""Placed, and fulfilment has not picked the order up yet."""


class FulfilmentQueries:
    """Answers ordering's :class:`GetFulfilmentStatus` from the processes' table."""

    def __init__(self, database: ReadModelDatabase) -> None:
        self.database = database

    async def status(self, query: GetFulfilmentStatus) -> FulfilmentStatus:
        def read(conn: Connection) -> FulfilmentStatus:
            record = processes.find(conn, OrderFulfilment.kind, query.order_id)
            if record is None:
                return FulfilmentStatus(PENDING, 0, None, None)
            s = record.state
            phase = "needs-attention" if record.status == NEEDS_ATTENTION else s["phase"]
            return FulfilmentStatus(phase, int(s.get("attempt", 0)), s.get("tracking_number"),
                                    s.get("reason") or record.error)

        return await self.database.run(read, write=False)
