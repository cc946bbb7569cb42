"""What shop's ``/metrics`` reads on each scrape: the health check's own figures (the
projections, what waits for an operator) and the outbox's backlog, so that ``/status``
and ``/metrics`` never disagree about a figure.

``/metrics`` is for admins, like ``/status``: the figures name every command, consumer and
job and show the business's volume (orders per second), which is not for the public.
Prometheus scrapes it with an admin's access token (``authorization`` in its scrape
config)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invariant.telemetry.figures import Figures
from shop.platform.health import check, outbox_lag

if TYPE_CHECKING:
    from shop.platform.runtime import Shop


async def figures(shop: Shop) -> Figures:
    """One reading of the shop's figures (``up`` is false when the database did not
    answer)."""
    health = await check(shop, max_lag=shop.settings.ready_max_lag)
    lag = await outbox_lag(shop)
    attention = health.attention
    if attention is None:
        return Figures(projections=health.projections, up=False)
    return Figures(
        projections=health.projections,
        outbox_pending=None if lag is None else lag.pending,
        outbox_oldest_seconds=None if lag is None else lag.oldest_age_seconds,
        dead_letters=attention.dead_letters, pending_jobs=attention.pending_jobs,
        dead_jobs=attention.dead_jobs, parked_processes=attention.parked_processes)
