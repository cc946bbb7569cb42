"""shop's HTTP API: every context's routes, problem+json errors, the body cap, health,
documentation pages, pagination."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import uvicorn
from fastapi import Depends, FastAPI, Path, Query, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from invariant.domain import Money
from invariant.http import BodyLimit, install_error_handlers
from invariant.telemetry.endpoint import metrics_router
from invariant.telemetry.web import instrument
from shop.kernel import ID
from shop.platform.docs import install_docs
from shop.platform.metrics import figures, may_scrape
from shop.platform.runtime import Shop

T = TypeVar("T")

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
}


class Body(BaseModel):
    """A request body, read exactly as its JSON Schema says: unknown fields are refused and
    nothing is coerced (``0`` is not ``false``, ``"1"`` is not ``1``, ``1`` is not
    ``"1"``). Every route's body derives from it."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _json_integer(value: object) -> object:
    # JSON Schema counts 1.0 as an integer (a number with no fractional part); pydantic's
    # strict mode would refuse it, and refuses booleans and strings as we want.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Integer = Annotated[int, BeforeValidator(_json_integer)]
"""A JSON integer in a :class:`Body`: ``2`` or ``2.0``; never ``true``, ``"2"`` or ``2.5``."""


class MoneyOut(BaseModel):
    """An amount of money: a decimal string and an ISO 4217 currency."""

    amount: str = Field(examples=["12.50"])
    currency: str = Field(examples=["USD"])

    @classmethod
    def of(cls, money: Money) -> MoneyOut:
        return cls(amount=str(money.amount), currency=money.currency.code)


class Page(BaseModel, Generic[T]):
    """One page of a list: ``items``, and ``next_offset`` to ask for the next (null at the
    end)."""

    items: list[T]
    offset: int
    limit: int
    total: int
    next_offset: int | None


MAX_OFFSET = 2**31 - 1
"""Past any real list, and within every database's integer range (a larger one is a 422)."""


@dataclass(frozen=True, slots=True)
class PageParams:
    """The page a list request asks for (bounded by :func:`page_params`)."""

    offset: int
    limit: int

    def page(self, items: list[T], total: int) -> Page[T]:
        end = self.offset + len(items)
        return Page[T](items=items, offset=self.offset, limit=self.limit, total=total,
                       next_offset=end if end < total else None)


def page_params(offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
                limit: Annotated[int, Query(ge=1, le=100)] = 20) -> PageParams:
    return PageParams(offset=offset, limit=limit)


Paging = Annotated[PageParams, Depends(page_params)]


def get_shop(request: Request) -> Shop:
    shop: Shop = request.app.state.shop
    return shop


ShopDep = Annotated[Shop, Depends(get_shop)]


ID_PATTERN = f"^{ID.pattern}$"
IdPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=64)]
"""A product or order id in a route's path."""


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
    install_docs(app)

    from shop.platform.health_api import router as health  # it needs ShopDep from here

    app.include_router(health())
    app.include_router(metrics_router(lambda: figures(shop), dependencies=[Depends(may_scrape)]))
    instrument(app)
    for module in shop.modules:
        if module.router is not None:
            app.include_router(module.router)
    return app


class ServerNotStarted(RuntimeError):
    """uvicorn stopped before it started serving (its log says why)."""


@asynccontextmanager
async def served(config: uvicorn.Config) -> AsyncIterator[None]:
    """Serve ``config``'s app on the running event loop while the block runs (entered once
    the server has started)."""
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
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
