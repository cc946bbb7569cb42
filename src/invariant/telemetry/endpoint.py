"""``GET /metrics``: the counted instruments and one fresh reading of the figures, in
Prometheus' text format."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

from invariant.extras import needs_extra
from invariant.telemetry import metrics
from invariant.telemetry.figures import Figures, families

with needs_extra("http"):
    from fastapi import APIRouter, Response

ReadFigures = Callable[[], Awaitable[Figures]]


class _Reading:
    """One scrape's figures as a collector (made per scrape: concurrent scrapes never share
    a reading)."""

    def __init__(self, figures: Figures) -> None:
        self._figures = figures

    def collect(self) -> Iterator[Any]:
        return families(self._figures)


def exposition(figures: Figures) -> bytes:
    """The text Prometheus scrapes: the instruments (if metrics are on) and ``figures``."""
    from prometheus_client import generate_latest

    counted = generate_latest(metrics.REGISTRY) if metrics.REGISTRY is not None else b""
    return counted + generate_latest(_Reading(figures))


def metrics_router(read_figures: ReadFigures, *, dependencies: Sequence[Any] = ()
                   ) -> APIRouter:
    """A router serving ``/metrics`` from ``read_figures`` (called once per scrape), behind
    ``dependencies`` (e.g. the application's authorization). Without prometheus-client
    installed, it answers 501 saying so (the application runs on without metrics)."""
    router = APIRouter(tags=["operations"])
    if not metrics.INSTALLED:
        @router.get("/metrics", include_in_schema=False, dependencies=list(dependencies))
        async def unavailable() -> Response:
            return Response("metrics need prometheus-client: install it\n", status_code=501,
                            media_type="text/plain")
        return router
    from prometheus_client import CONTENT_TYPE_LATEST

    metrics.enable_metrics()

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response,
                dependencies=list(dependencies),
                responses={200: {"content": {CONTENT_TYPE_LATEST: {}},
                                 "description": "Prometheus' text exposition format"}})
    async def scrape() -> Response:
        return Response(exposition(await read_figures()), media_type=CONTENT_TYPE_LATEST)

    return router
