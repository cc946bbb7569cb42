"""The log page: the tail of the global log, refreshed while it is open."""

from __future__ import annotations

from starlette.responses import Response

from invariant.console.desk import Desk

TAIL = 50


async def _tail(desk: Desk) -> dict[str, object]:
    storage = desk.operated.storage
    head = await storage.head_position()
    events = await storage.read_all(after_position=max(0, head - TAIL), limit=TAIL)
    return {"events": list(reversed(events)), "head": head}


async def log_page(desk: Desk) -> Response:
    return desk.render("log.html", **await _tail(desk))


async def log_tail(desk: Desk) -> Response:
    return desk.render("log_rows.html", **await _tail(desk))
