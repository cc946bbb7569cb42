"""shop's HTTP app: every context's routes, problem+json errors, the body cap, health and
documentation pages. What the routes themselves are made of is in
:mod:`shop.platform.routing` (re-exported here)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI

from invariant.http import Backpressure, BodyLimit, install_error_handlers
from invariant.http.correlation import CorrelationIds
from invariant.telemetry.endpoint import metrics_router
from invariant.telemetry.web import instrument
from shop.platform.backpressure import EXEMPT, shop_backlog
from shop.platform.docs import install_docs
from shop.platform.health_api import router as health
from shop.platform.metrics import figures, may_scrape
from shop.platform.routing import (
    ID_PATTERN,
    MAX_OFFSET,
    Body,
    IdPath,
    Integer,
    MoneyOut,
    Page,
    PageParams,
    Paging,
    ShopDep,
    get_shop,
    page_params,
)
from shop.platform.runtime import Shop

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "A body that could not be read (problem+json)"},
    401: {"description": "No valid access token (problem+json)"},
    403: {"description": "Not allowed for this account (problem+json)"},
    404: {"description": "Not found (problem+json)"},
    409: {"description": "Conflict (problem+json)"},
    413: {"description": "The request body is larger than SHOP_MAX_BODY bytes "
                         "(problem+json)"},
    422: {"description": "Invalid input or refused by a business rule (problem+json)"},
    429: {"description": "Too many attempts; see Retry-After (problem+json)"},
    503: {"description": "Busy: for SHOP_BACKLOG_WAIT seconds, more background work waited "
                         "than SHOP_BACKLOG_LIMIT, or its oldest item longer than "
                         "SHOP_BACKLOG_OLDEST, or SHOP_MAX_IN_FLIGHT requests were being "
                         "handled; see Retry-After (problem+json)"},
}


def create_app(shop: Shop, *, manage: bool = True) -> FastAPI:
    """The FastAPI app serving ``shop``; its lifespan starts and stops the shop (unless
    ``manage`` is false: then the caller does, as ``python -m shop`` does to report a
    start-up failure in one line before serving)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not manage:
            yield
            return
        async with shop:
            yield

    app = FastAPI(
        title="shop", version="1.0.0", lifespan=lifespan, responses=PROBLEM_RESPONSES,
        docs_url=None, redoc_url=None,  # served by install_docs, without a CDN
        description="The reference system of invariant: identity, catalog, orders and their "
                    "fulfilment across inventory, payments and shipping. Errors are RFC 9457 "
                    "problem details (application/problem+json). A method a path does not "
                    "support is answered 405, its Allow header listing those it does. "
                    "Request bodies are read strictly as documented here: JSON types are "
                    "never coerced, unknown fields are refused.")
    app.state.shop = shop
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=shop.settings.max_body)
    app.add_middleware(Backpressure, backlog=shop_backlog(shop), exempt=EXEMPT,
                       wait=shop.settings.backlog_wait,
                       max_in_flight=shop.settings.max_in_flight or None)
    app.add_middleware(CorrelationIds)  # outermost: a refusal names its request too
    install_docs(app)

    app.include_router(health())
    app.include_router(metrics_router(lambda: figures(shop), dependencies=[Depends(may_scrape)]))
    instrument(app)
    for router in shop.host.routers:
        app.include_router(router)
    from shop.platform import console  # the operators' web console, at /console

    app.include_router(console.router())
    return app


class ServerNotStarted(RuntimeError):
    """uvicorn stopped before it started serving (its log says why)."""


async def _serving(server: uvicorn.Server) -> None:
    try:
        await server.serve()
    except SystemExit as exc:
        # uvicorn says it could not start (a port taken, a failing lifespan) by sys.exit;
        # left to leave the task, asyncio would raise it out of the whole event loop.
        raise ServerNotStarted(f"the server could not start (status {exc.code}); its log "
                               "says why") from None


@asynccontextmanager
async def served(config: uvicorn.Config) -> AsyncIterator[None]:
    """Serve ``config``'s app on the running event loop while the block runs (entered once
    the server has started)."""
    server = uvicorn.Server(config)
    task = asyncio.create_task(_serving(server))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise ServerNotStarted("the server stopped while starting")
            await asyncio.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        await task


__all__ = [
    "ID_PATTERN", "MAX_OFFSET", "PROBLEM_RESPONSES", "Body", "IdPath", "Integer", "MoneyOut",
    "Page", "PageParams", "Paging", "ServerNotStarted", "ShopDep", "create_app", "get_shop",
    "page_params", "served",
]
