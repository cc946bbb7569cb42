"""What a context's routes are made of: strict request bodies, JSON integers, money, pages
of lists, ids in paths, and the shop serving the request (:data:`ShopDep`). Contexts import
this, never the HTTP app that composes their routes (:mod:`shop.platform.http`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from invariant.domain import Money
from shop.kernel import ID
from shop.platform.context import ShopContext

T = TypeVar("T")


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


async def page_params(offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
                limit: Annotated[int, Query(ge=1, le=100)] = 20) -> PageParams:
    return PageParams(offset=offset, limit=limit)


Paging = Annotated[PageParams, Depends(page_params)]


async def get_shop(request: Request) -> ShopContext:
    # async, as every dependency here: FastAPI runs a plain ``def`` dependency in a worker
    # thread, a hand-off to a thread and back on every request.
    shop: ShopContext = request.app.state.shop
    return shop


ShopDep = Annotated[ShopContext, Depends(get_shop)]
"""The shop serving the request, as a context's route sees it."""


ID_PATTERN = f"^{ID.pattern}$"
IdPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=64)]
"""A product or order id in a route's path."""
