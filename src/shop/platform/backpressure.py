"""shop's backlog: what its background workers have waiting, the bound intake respects.

Every order placed brings work for the outbox relay, fulfilment's process runner, the
consumers and the job worker. When more than ``SHOP_BACKLOG_LIMIT`` items wait among
them, or the oldest of them has waited longer than ``SHOP_BACKLOG_OLDEST`` seconds (0.5),
requests that bring work are held, then answered 503 with ``Retry-After`` (see
:mod:`invariant.http.backpressure`) until the workers have caught up; the admin API is
exempt, and so is the console (an operator must be able to act on a busy shop).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from invariant.backlog import Backlog, Measure
from invariant.messaging.port import CountsBacklog

if TYPE_CHECKING:
    from shop.platform.runtime import Shop

EXEMPT = ("/admin/", "/console")
"""Paths never refused for a backlog."""


def shop_backlog(shop: Shop) -> Backlog:
    """The backlog of ``shop``'s workers, bounded by ``SHOP_BACKLOG_LIMIT`` items and, when
    set, by ``SHOP_BACKLOG_OLDEST`` seconds of the oldest item's wait."""

    host = shop.host
    measures: dict[str, Measure] = {}
    if host.relay is not None:  # only the workers this process runs count
        measures["outbox"] = host.relay.waiting
    if host.processes is not None:
        measures["processes"] = host.processes.waiting
    if host.jobs is not None:
        measures["jobs"] = host.jobs.waiting
    if isinstance(host.broker, CountsBacklog) and host.consumers:
        measures["consumers"] = host.broker.waiting
    settings = shop.settings
    return Backlog(measures, limit=settings.backlog_limit,
                   oldest=settings.backlog_oldest or None)
