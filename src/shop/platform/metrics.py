"""What shop's ``/metrics`` reads on each scrape: the health check's own figures (the
projections, what waits for an operator) and the outbox's backlog, so that ``/status``
and ``/metrics`` never disagree about a figure.

``/metrics`` is for admins, like ``/status``: the figures name every command, consumer and
job and show the business's volume (orders per second), which is not for the public. An
admin's access token expires (``SHOP_TOKEN_TTL``), so Prometheus scrapes with
``SHOP_METRICS_TOKEN`` instead: a long-lived secret that opens ``/metrics`` and nothing
else."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from fastapi import Request

from invariant.telemetry.figures import Figures
from shop.platform.auth import BearerToken, admin_user, current_user
from shop.platform.health import check, outbox_lag

if TYPE_CHECKING:
    from shop.platform.runtime import Shop


async def figures(shop: Shop) -> Figures:
    """One reading of the shop's figures (``up`` is false when the database did not
    answer)."""
    health = await check(shop.host, max_lag=shop.settings.ready_max_lag)
    lag = await outbox_lag(shop.host)
    attention = health.attention
    if attention is None:
        return Figures(projections=health.projections, up=False)
    return Figures(
        projections=health.projections,
        outbox_pending=None if lag is None else lag.pending,
        outbox_oldest_seconds=None if lag is None else lag.oldest_age_seconds,
        dead_letters=attention.dead_letters, pending_jobs=attention.pending_jobs,
        dead_jobs=attention.dead_jobs, parked_processes=attention.parked_processes)


async def may_scrape(request: Request, credentials: BearerToken) -> None:
    """The caller of ``/metrics``: the bearer of ``SHOP_METRICS_TOKEN``, or an admin."""
    token: str = request.app.state.shop.settings.metrics_token
    if token and credentials is not None and credentials.scheme.lower() == "bearer" and (
            hmac.compare_digest(credentials.credentials.encode(), token.encode())):
        return
    await admin_user(await current_user(request, credentials))
